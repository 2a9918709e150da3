"""`facelive detect` and `facelive compare`: faces in image files, and same person or not."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from facelive import wire
from facelive.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    add_common_flags,
    emit_json,
    load_engine,
    log,
    settings_from_args,
)


def cmd_detect(args: argparse.Namespace) -> int:
    from facelive.models.store import check_ready, choose_embedder

    settings = settings_from_args(args)
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
        faces = [wire.face_json(d.box, d.score, d.landmarks)
                 for d in detector.detect(image)]
        results.append({"image": path, "faces": faces})
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for face in faces:
                print(f"  box {face['box']} score {face['score']}")
    if args.json:
        emit_json({"embedder": embedder, "images": results})
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
    settings = settings_from_args(args)
    engine = load_engine(settings)
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
            from facelive.vision.fused_distance import paired

            metric = getattr(engine.embedder, "metric", None)
            distance = float(paired(metric, vectors[x][None], vectors[y][None])[0])
            row.update(distance=round(distance, 4), same=distance <= threshold)
        out.append(row)
    for name, reason in errors.items():
        print(f"{name}: {reason}", file=sys.stderr)
    if args.json:
        emit_json({"embedder": engine.embedder_name, "threshold": threshold, "pairs": out})
    else:
        for row in out:
            if row["distance"] is None:
                continue
            verdict = "same" if row["same"] else "different"
            print(f"{row['file_x']}  {row['file_y']}  distance {row['distance']:.4f}  {verdict}")
        print(f"(embedder {engine.embedder_name}, threshold {threshold})")
    return EXIT_FAILED if errors else EXIT_OK


def add_image_commands(subparsers: Any) -> None:
    """Add `detect` and `compare` to `facelive`'s subparsers."""
    detect = subparsers.add_parser("detect", help="find faces in images")
    add_common_flags(detect)
    detect.add_argument("images", nargs="+", metavar="IMAGE")
    detect.add_argument("--json", action="store_true")
    detect.set_defaults(func=cmd_detect)

    compare = subparsers.add_parser("compare", help="same person or not, for image pairs")
    add_common_flags(compare)
    compare.add_argument("images", nargs="*", metavar="IMAGE")
    compare.add_argument("--pairs", metavar="FILE.csv", help="CSV with columns file_x,file_y")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(func=cmd_compare)
