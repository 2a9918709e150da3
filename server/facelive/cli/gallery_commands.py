"""Gallery subcommands of `facelive`: enroll, identify, people, gallery export/import, reembed.

Wired into the CLI by `add_gallery_commands(subparsers)`. Commands that only edit
the gallery (people, gallery) open the gallery (the SQLite file, or PostgreSQL with
FACELIVE_DATABASE_URL) and never load TensorFlow; a running
server notices their changes within a second (see Recognizer.refresh).
"""

from __future__ import annotations

import argparse
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
    import_tensorflow_quietly,
    settings_from_args,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Images per recognizer call. 4, not 8 (issue 17, bench/clip_rate.py): batches of 8 feed the
# detector and embedder many more distinct shapes, each a one-off kernel build, which a CLI
# run pays in full: on 101 pedestrian frames 59.5 -> 38.1 ms a frame, warm 32.5 -> 31.3.
IDENTIFY_BATCH = 4


def _recognizer(args: argparse.Namespace) -> Any:
    settings = settings_from_args(args)
    import_tensorflow_quietly(settings)
    from facelive.recognition.recognizer import Recognizer

    return Recognizer.from_settings(settings)


def _gallery(args: argparse.Namespace, create: bool = True) -> Any:
    """The data dir's SQLite file, or PostgreSQL with FACELIVE_DATABASE_URL (recognition/
    gallery_open.py): export from one and import into the other to move a gallery."""
    from facelive.recognition.gallery_open import open_gallery

    return open_gallery(settings_from_args(args), create=create)


def _gallery_exists(args: argparse.Namespace) -> bool:
    from facelive.recognition.gallery_open import gallery_exists

    return gallery_exists(settings_from_args(args))


# ---------------------------------------------------------------- enroll
def _person_dirs(root: Path) -> list[tuple[str, list[Path]]]:
    """DIR/<Name>/<images>: one folder per person; underscores in folder names read as spaces
    (LFW's "Aaron_Eckhart")."""
    if not root.is_dir():
        raise CommandError(f"{root}: not a directory")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if images:
            out.append((folder.name.replace("_", " "), images))
    return out


def _read_bytes(path: Path, limit: int) -> bytes | str:
    """The file's bytes, or the reason it cannot be read."""
    try:
        if path.stat().st_size > limit:
            return f"file too large (limit {limit} bytes)"
        return path.read_bytes()
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"


def cmd_enroll(args: argparse.Namespace) -> int:
    from facelive.recognition.names import InvalidName

    if args.from_dir:
        if args.name or args.images:
            raise CommandError("give either NAME IMAGE... or --from-dir DIR, not both")
        jobs = _person_dirs(Path(args.from_dir))
        if not jobs:
            raise CommandError(f"{args.from_dir}: no sub-folders with images")
        source = args.source or "import"
    else:
        if not args.name or not args.images:
            raise CommandError("enroll needs NAME and at least one IMAGE, or --from-dir DIR")
        jobs = [(args.name, [Path(p) for p in args.images])]
        source = args.source or "upload"
    settings = settings_from_args(args)
    failed = False
    results = []
    with _recognizer(args) as recognizer:
        for name, paths in jobs:
            data = [_read_bytes(p, settings.max_image_bytes) for p in paths]
            unreadable = {i: d for i, d in enumerate(data) if isinstance(d, str)}
            readable = [i for i, d in enumerate(data) if not isinstance(d, str)]
            try:
                report = recognizer.enroll(name, [data[i] for i in readable], source=source)
            except InvalidName as exc:
                if not args.from_dir:
                    raise
                print(f"{name}: {exc}; folder skipped", file=sys.stderr)
                failed = True
                continue
            skipped = [(i, reason) for i, reason in unreadable.items()]
            skipped += [(readable[s.index], s.reason) for s in report.skipped]
            skipped.sort()
            failed = failed or bool(skipped) or not report.example_ids
            for i, reason in skipped:
                print(f"{paths[i]}: {reason}", file=sys.stderr)
            for pick in report.picked:
                print(f"{paths[readable[pick.index]]}: {pick.message}", file=sys.stderr)
            for warning in report.warnings:
                print(f"{report.name}: warning: {warning}", file=sys.stderr)
            results.append(
                {
                    "name": report.name,
                    "added": len(report.example_ids),
                    "example_ids": report.example_ids,
                    "skipped": [{"image": str(paths[i]), "reason": r} for i, r in skipped],
                    "picked": [{"image": str(paths[readable[p.index]]), "faces": p.faces,
                                "box": wire.box_json(p.box)} for p in report.picked],
                    "warnings": report.warnings,
                }
            )
            if not args.json:
                print(f"{report.name}: {len(report.example_ids)} added, {len(skipped)} skipped")
        embedder = recognizer.embedder_name
    if args.json:
        emit_json({"embedder": embedder, "people": results})
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------- identify
def identify_files(
    recognizer: Any, paths: list[str], max_pixels: int, max_bytes: int
) -> tuple[list[dict[str, Any]], int]:
    """`identify`'s work on image files: per file {image, faces: [{box, name, distance,
    confidence}]} (and `error` for one that cannot be read), and how many failed."""
    from facelive.vision.image import ImageError, read_image

    results: list[dict[str, Any]] = []
    failed = 0
    pending: list[tuple[int, Any]] = []

    def flush() -> None:
        if not pending:
            return
        faces = recognizer.recognize_batch([image for _, image in pending])
        for (slot, _), found in zip(pending, faces, strict=True):
            results[slot]["faces"] = [
                {k: v for k, v in face.to_dict().items()
                 if k in ("box", "name", "distance", "confidence")}
                for face in found
            ]
        pending.clear()

    for path in paths:
        results.append({"image": path, "faces": []})
        try:
            image = read_image(path, max_pixels, max_bytes)
        except ImageError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            results[-1]["error"] = str(exc)
            failed += 1
            continue
        pending.append((len(results) - 1, image))
        if len(pending) == IDENTIFY_BATCH:
            flush()
    flush()
    return results, failed


def cmd_identify(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with _recognizer(args) as recognizer:
        results, failed = identify_files(recognizer, args.images, settings.max_image_pixels,
                                         settings.max_image_bytes)
        embedder = recognizer.embedder_name
    if args.json:
        emit_json({"embedder": embedder, "images": results})
    else:
        for entry in results:
            if "error" in entry:
                continue
            print(f"{entry['image']}: {len(entry['faces'])} face(s)")
            for face in entry["faces"]:
                distance = "-" if face["distance"] is None else f"{face['distance']:.3f}"
                print(f"  {face['name']}  distance {distance}  confidence "
                      f"{face['confidence']:.2f}  box {face['box']}")
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------- people
def _open_set(args: argparse.Namespace, people: list[Any]) -> dict[str, Any]:
    """The rule a server would decide with at this gallery's size (no model is loaded)."""
    from facelive.models import store
    from facelive.recognition.gallery_rule import describe_rule

    settings = settings_from_args(args)
    embedder = store.choose_embedder(settings.embedder, settings.models_dir)
    with_examples = [p for p in people if p.examples]
    return describe_rule(
        settings.data_dir, embedder, None, settings.match_threshold, settings.target_far,
        len(with_examples), sum(p.examples for p in with_examples),
    )


def cmd_people_list(args: argparse.Namespace) -> int:
    people = []
    if _gallery_exists(args):
        with _gallery(args) as gallery:
            people = gallery.people()
    rule = _open_set(args, people)
    if args.json:
        emit_json({"people": [{"name": p.name, "examples": p.examples, "created": p.created,
                               "thumbnail": p.thumbnail} for p in people], "open_set": rule})
        return EXIT_OK
    if not people:
        print("no people in the gallery yet (add some with `facelive enroll`)")
    else:
        for p in people:
            print(f"{p.name}\t{p.examples} example(s)")
    if rule["threshold"] is not None:
        far = rule["expected_far"]
        expected = "" if far is None else f"; expected strangers named: {100 * far:.2f}%"
        print(f"match threshold {rule['threshold']:.4f} for {rule['people']} people "
              f"({rule['threshold_source']}){expected}")
    return EXIT_OK


def cmd_people_rename(args: argparse.Namespace) -> int:
    with _gallery(args) as gallery:
        stored = gallery.rename(args.old, args.new)
    print(f"renamed {args.old} -> {stored}")
    return EXIT_OK


def cmd_people_delete(args: argparse.Namespace) -> int:
    with _gallery(args) as gallery:
        count = gallery.delete(args.name)
    print(f"deleted {args.name} ({count} example(s))")
    return EXIT_OK


def cmd_people_clear(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandError("this deletes everyone in the gallery; add --yes to confirm")
    with _gallery(args) as gallery:
        count = gallery.clear()
    print(f"deleted {count} people")
    return EXIT_OK


# ---------------------------------------------------------------- gallery export / import
def cmd_gallery_export(args: argparse.Namespace) -> int:
    from facelive.recognition.archive import export_gallery

    if not _gallery_exists(args):
        raise CommandError("there is no gallery to export yet")
    with _gallery(args) as gallery:
        try:
            count = export_gallery(gallery, args.file)
        except OSError as exc:
            raise CommandError(f"{args.file}: {exc.strerror or exc}") from None
    print(f"exported {count} example(s) to {args.file}")
    return EXIT_OK


def cmd_gallery_import(args: argparse.Namespace) -> int:
    from facelive.recognition.archive import import_archive

    with _gallery(args) as gallery:
        report = import_archive(gallery, args.file)
    print(
        f"imported {args.file}: {report.people_added} new people, {report.people_merged} "
        f"merged, {report.examples_added} example(s) added, {report.examples_skipped} "
        "already present"
    )
    return EXIT_OK


def cmd_reembed(args: argparse.Namespace) -> int:
    with _recognizer(args) as recognizer:
        # Loading already embedded what was missing; --all redoes every stored face.
        count = recognizer.reembed(only_missing=not args.all)
        print(f"{recognizer.embedder_name}: {count} face(s) re-embedded, "
              f"{recognizer.gallery_size} in the gallery")
    return EXIT_OK


# ---------------------------------------------------------------- parser
def add_gallery_commands(subparsers: Any) -> None:
    """Add enroll, identify, people, gallery and reembed to `facelive`'s subparsers."""
    from facelive.recognition.gallery import SOURCES

    enroll = subparsers.add_parser("enroll", help="add example faces of a person")
    add_common_flags(enroll)
    enroll.add_argument("name", nargs="?", metavar="NAME")
    enroll.add_argument("images", nargs="*", metavar="IMAGE",
                        help="photos of the person: one face, or theirs clearly the largest")
    enroll.add_argument("--from-dir", metavar="DIR",
                        help="one folder per person, named after them (_ reads as a space)")
    enroll.add_argument("--source", choices=SOURCES,
                        help="recorded with each example (default: upload, or import for "
                             "--from-dir)")
    enroll.add_argument("--json", action="store_true")
    enroll.set_defaults(func=cmd_enroll)

    identify = subparsers.add_parser("identify", help="name the faces in images")
    add_common_flags(identify)
    identify.add_argument("images", nargs="+", metavar="IMAGE")
    identify.add_argument("--json", action="store_true")
    identify.set_defaults(func=cmd_identify)

    people = subparsers.add_parser("people", help="list, rename or delete people")
    people_sub = people.add_subparsers(dest="people_command", required=True, metavar="ACTION")
    listing = people_sub.add_parser("list", help="everyone in the gallery")
    add_common_flags(listing, embedder=False)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_people_list)
    rename = people_sub.add_parser("rename", help="rename a person")
    add_common_flags(rename, embedder=False)
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    rename.set_defaults(func=cmd_people_rename)
    delete = people_sub.add_parser("delete", help="delete a person and their faces")
    add_common_flags(delete, embedder=False)
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(func=cmd_people_delete)
    clear = people_sub.add_parser("clear", help="delete everyone")
    add_common_flags(clear, embedder=False)
    clear.add_argument("--yes", action="store_true", help="confirm")
    clear.set_defaults(func=cmd_people_clear)

    gallery = subparsers.add_parser("gallery", help="export or import the gallery")
    gallery_sub = gallery.add_subparsers(dest="gallery_command", required=True, metavar="ACTION")
    export = gallery_sub.add_parser("export", help="write everything to one portable file")
    add_common_flags(export, embedder=False)
    export.add_argument("file", metavar="FILE")
    export.set_defaults(func=cmd_gallery_export)
    imp = gallery_sub.add_parser("import", help="merge an exported file into the gallery")
    add_common_flags(imp, embedder=False)
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(func=cmd_gallery_import)

    reembed = subparsers.add_parser(
        "reembed", help="compute the current embedder's vectors of the stored faces"
    )
    add_common_flags(reembed)
    reembed.add_argument("--all", action="store_true",
                         help="redo every face, not only those without a vector")
    reembed.set_defaults(func=cmd_reembed)
