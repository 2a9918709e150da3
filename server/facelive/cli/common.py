"""What every `facelive` subcommand shares: exit codes, the one-line error, the common flags,
Settings from the flags, JSON output, and the one place where errors become an exit status
(`run_command`). Command modules import only these public names."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facelive.settings import EMBEDDER_CHOICES, Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some inputs failed (e.g. unreadable images)
EXIT_USAGE = 2  # the command could not run: bad settings, missing models, bad arguments
EXIT_INTERRUPTED = 130

log = logging.getLogger("facelive")


class CommandError(Exception):
    """An error to show as one line, without a traceback."""


def quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury our one-line messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_common_flags(parser: argparse.ArgumentParser, embedder: bool = True) -> None:
    """--data-dir and --models-dir; with embedder, also --embedder and --min-face."""
    parser.add_argument("--data-dir", help="gallery and state (default: $FACELIVE_DATA)")
    parser.add_argument("--models-dir", help="model weights (default: $FACELIVE_MODELS)")
    if embedder:
        parser.add_argument("--embedder", choices=EMBEDDER_CHOICES,
                            help="default: $FACELIVE_EMBEDDER or auto")
        parser.add_argument("--min-face", type=int, help="smallest face in pixels (default 40)")


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, with the common flags (and `overrides`) on top."""
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        models_dir=getattr(args, "models_dir", None),
        embedder=getattr(args, "embedder", None),
        min_face_size=getattr(args, "min_face", None),
        **overrides,
    )


def emit_json(payload: dict[str, Any], target: str | None = None) -> None:
    """JSON to stdout, or to the file `target` (written whole or not at all)."""
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    if target and target != "-":
        from facelive.tools.files import write_text_atomic

        write_text_atomic(Path(target), text + "\n")
    else:
        print(text)


def cache_dir(args: argparse.Namespace, settings: Settings) -> Path | None:
    """Where embeddings of image files are cached (None with --no-cache)."""
    return None if args.no_cache else settings.data_dir / "cache"


def positive_int(raw: str) -> int:
    """argparse type: an int >= 1."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def load_engine(settings: Settings) -> Any:
    """The FaceEngine (lazy import keeps TensorFlow out of --help)."""
    from facelive.models.store import check_ready

    # Before TensorFlow loads: a missing model is then one line, not one line among TF's.
    check_ready(settings.models_dir, settings.embedder)
    from facelive.recognition.pipeline import FaceEngine

    return FaceEngine(settings)


@contextmanager
def friendly() -> Iterator[None]:
    """The rooms' one-line errors (tools, gallery, names) become CommandError."""
    from facelive.recognition.gallery import GalleryError
    from facelive.recognition.names import InvalidName
    from facelive.tools.files import ToolError

    try:
        yield
    except (ToolError, GalleryError, InvalidName) as exc:
        raise CommandError(str(exc)) from None


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: the CLI's one error boundary. Errors meant for the user become
    one line on stderr and exit status 2; Ctrl+C is 130."""
    from facelive.models.store import ModelMissingError

    try:
        return int(args.func(args))
    except (CommandError, SettingsError, ModelMissingError) as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("facelive: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
