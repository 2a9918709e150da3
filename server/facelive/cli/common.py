"""What every `facelive` subcommand shares: exit codes, the one-line error, the common flags,
Settings from the flags, JSON output, and the one place where errors become an exit status
(`run_command`). Command modules import only these public names."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from facelive.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, FaceLiveError
from facelive.settings import EMBEDDER_CHOICES, Settings

__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "CommandError",
    "add_common_flags", "cache_dir", "emit_json", "load_engine", "log", "positive_int",
    "import_tensorflow_quietly", "quiet_tensorflow", "run_command", "settings_from_args",
]

log = logging.getLogger("facelive")


class CommandError(FaceLiveError):
    """A command's own refusal (bad arguments, a missing input): one line, exit 2."""


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
        from facelive.atomic import atomic_write
        from facelive.tools.errors import ToolError

        atomic_write(Path(target), text + "\n", cannot_create=ToolError)
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


def import_tensorflow_quietly(settings: Settings) -> None:
    """Import TensorFlow without its start-up notices (they are not FaceLive's), unless
    FACELIVE_TF_LOG asks for them; call it before anything that imports TensorFlow."""
    from facelive.tf_quiet import import_tensorflow

    import_tensorflow(show_notices=settings.tf_log)


def load_engine(settings: Settings) -> Any:
    """The FaceEngine (lazy import keeps TensorFlow out of --help)."""
    from facelive.models.store import check_ready

    # Before TensorFlow loads: a missing model is then one line, not one line among TF's.
    check_ready(settings.models_dir, settings.embedder)
    import_tensorflow_quietly(settings)
    from facelive.recognition.pipeline import FaceEngine

    return FaceEngine(settings)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: the CLI's one error boundary. A FaceLiveError becomes one line
    on stderr and its kind's exit status (2); Ctrl+C is 130."""
    try:
        return int(args.func(args))
    except FaceLiveError as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("facelive: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
