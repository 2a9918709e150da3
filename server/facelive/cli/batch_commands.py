"""Batch subcommands of `facelive`: align, embed, train, classify, video.

Wired into the CLI by `add_tool_commands(subparsers)`. Each command parses its flags and calls
one function of facelive.tools; a ToolError (a FaceLiveError) becomes the CLI's one-line error
at run_command. Outputs are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from facelive.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    add_common_flags,
    cache_dir,
    emit_json,
    import_tensorflow_quietly,
    load_engine,
    positive_int,
    settings_from_args,
)


# ---------------------------------------------------------------- align
def cmd_align(args: argparse.Namespace) -> int:
    from facelive.tools.align_dataset import REPORT, align_dataset

    settings = settings_from_args(args)
    # Checked before the models load: a wrong path should cost nothing.
    from facelive.tools.dataset import list_dataset

    list_dataset(Path(args.raw_dir))
    summary = align_dataset(settings, Path(args.raw_dir), Path(args.out_dir),
                            args.image_size, args.margin, args.workers,
                            engine=load_engine(settings))
    failed = summary["failed"]
    print(f"{summary['images']} images: {summary['aligned']} aligned now, "
          f"{summary['already_done']} already done, {len(failed)} left out "
          f"(see {Path(args.out_dir) / REPORT}); {summary['images_per_s']} images/s")
    if args.json:
        emit_json(summary, args.json)
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------- embed
def cmd_embed(args: argparse.Namespace) -> int:
    from facelive.tools.dataset import expand_inputs
    from facelive.tools.embed import save_embeddings
    from facelive.tools.embedding import embed_images

    files = expand_inputs(Path(p) for p in args.inputs)
    settings = settings_from_args(args)
    engine = load_engine(settings)
    embedded = embed_images(engine, files, cache_dir(args, settings), args.workers,
                            crops=args.aligned)
    for path, reason in embedded.failed.items():
        print(f"{path}: {reason}", file=sys.stderr)
    if not embedded.files:
        raise CommandError("no face could be embedded from the given images")
    save_embeddings(Path(args.out), embedded, engine.embedder_name)
    print(f"{len(embedded.files)} embeddings ({engine.embedder_name}, {embedded.vectors.shape[1]}"
          f"-D) written to {args.out}; {len(embedded.failed)} image(s) left out")
    return EXIT_FAILED if embedded.failed else EXIT_OK


# ---------------------------------------------------------------- train / classify
def _protocol(args: argparse.Namespace) -> Any:
    from facelive.tools.classify import Protocol

    return Protocol(args.use_split, args.min_images_per_class, args.train_images_per_class)


def cmd_train(args: argparse.Namespace) -> int:
    from facelive.tools.classify import train

    settings = settings_from_args(args)
    protocol = _protocol(args)
    protocol.select(Path(args.dataset), "train")  # fail fast, before the models load
    train(load_engine(settings), Path(args.dataset), Path(args.model), args.classifier,
          protocol, cache_dir(args, settings), args.aligned, args.workers,
          k=args.k or settings.knn_k)
    return EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    from facelive.tools.classifier import ClassifierModel
    from facelive.tools.classify import classify

    settings = settings_from_args(args)
    protocol = _protocol(args)
    protocol.select(Path(args.dataset), "test")
    ClassifierModel.load(Path(args.model))  # a bad model file fails before the models load
    result = classify(load_engine(settings), Path(args.dataset), Path(args.model), protocol,
                      cache_dir(args, settings), args.aligned, args.workers)
    if args.json:
        keys = ("accuracy", "errors", "images", "left_out", "kind", "seconds")
        payload = {k: result[k] for k in keys}
        payload["predictions"] = [
            {"file": f, "predicted": p, "probability": round(q, 4), "true": t}
            for f, p, q, t in result["predictions"]
        ]
        emit_json(payload, args.json)
    return EXIT_OK


# ---------------------------------------------------------------- video
def cmd_video(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    import_tensorflow_quietly(settings)
    from facelive.recognition.recognizer import Recognizer
    from facelive.tools.video import annotate_video, open_source

    if args.threshold is not None:
        settings = settings.replace(match_threshold=args.threshold)
    # Open it once before the models load, so a bad input fails fast.
    open_source(args.input).capture.release()
    with Recognizer.from_settings(settings) as recognizer:
        summary = annotate_video(recognizer, args.input,
                                 Path(args.out) if args.out else None,
                                 Path(args.json) if args.json else None,
                                 every=args.every, max_frames=args.max_frames)
    names = ", ".join(f"{n}: {c}" for n, c in summary["frames_per_name"].items()) or "none"
    print(f"{summary['frames']} frames ({summary['width']}x{summary['height']} at "
          f"{summary['fps']} fps) in {summary['seconds']} s; faces shown per name: {names}")
    return EXIT_OK


# ---------------------------------------------------------------- parser
def _embedding_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aligned", action="store_true",
                        help="inputs are face crops (made by another aligner): where no face "
                             "is found, use the others' face placement instead of leaving the "
                             "image out (crops of `facelive align` are recognised by their "
                             "aligned.json without this flag)")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="images decoded and searched in parallel (default 2)")
    parser.add_argument("--no-cache", action="store_true",
                        help="ignore the embedding cache (DATA_DIR/cache)")


def _protocol_flags(parser: argparse.ArgumentParser) -> None:
    # dest differs from --data-dir's (the gallery and cache), which every command also has.
    parser.add_argument("dataset", metavar="DATA_DIR", help="one folder of images per person")
    parser.add_argument("model", metavar="MODEL_FILE", help="the classifier model (.npz)")
    parser.add_argument("--use-split", action="store_true",
                        help="train on the first M images (sorted) of each class, classify the "
                             "rest; classes with fewer than N images are dropped")
    parser.add_argument("--min-images-per-class", type=positive_int, default=20, metavar="N",
                        help="with --use-split (default 20)")
    parser.add_argument("--train-images-per-class", type=positive_int, default=10, metavar="M",
                        help="with --use-split (default 10)")
    _embedding_flags(parser)


def add_tool_commands(subparsers: Any) -> None:
    """Add align, embed, train, classify and video to `facelive`'s subparsers."""
    align = subparsers.add_parser("align", help="crop the main face of every image of a data "
                                                "set (one folder per person)")
    add_common_flags(align)
    align.add_argument("raw_dir", metavar="RAW_DIR")
    align.add_argument("out_dir", metavar="OUT_DIR")
    align.add_argument("--image-size", type=int, default=160, help="crop side in pixels")
    align.add_argument("--margin", type=int, default=32,
                       help="pixels added around the detected box, in all (default 32)")
    align.add_argument("--workers", type=positive_int, default=2,
                       help="batches of images searched in parallel (default 2)")
    align.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    align.set_defaults(func=cmd_align)

    embed = subparsers.add_parser("embed", help="embeddings of images to an .npz")
    add_common_flags(embed)
    embed.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    embed.add_argument("--out", required=True, metavar="FILE.npz")
    _embedding_flags(embed)
    embed.set_defaults(func=cmd_embed)

    train = subparsers.add_parser("train", help="train a classifier on a folder per person")
    add_common_flags(train)
    _protocol_flags(train)
    train.add_argument("--classifier", choices=("knn", "svm"), default="svm",
                       help="default svm (facenet's)")
    train.add_argument("--k", type=positive_int, help="KNN neighbours (default: $FACELIVE_KNN_K "
                                                   "or 5)")
    train.set_defaults(func=cmd_train)

    classify = subparsers.add_parser("classify", help="classify a folder per person with a "
                                                      "trained model; prints the accuracy")
    add_common_flags(classify)
    _protocol_flags(classify)
    classify.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    classify.set_defaults(func=cmd_classify)

    video = subparsers.add_parser("video", help="recognise faces in a video against the "
                                                "gallery; draw them or write them as JSON")
    add_common_flags(video)
    video.add_argument("input", metavar="INPUT", help="video file, camera index or stream URL")
    video.add_argument("--out", metavar="OUT.mp4", help="annotated video (mp4v)")
    video.add_argument("--json", metavar="FILE", help="faces per frame as JSON")
    video.add_argument("--every", type=positive_int, default=1,
                       help="detect every N frames, track in between (default 1)")
    video.add_argument("--max-frames", type=positive_int, help="stop after N frames")
    video.add_argument("--threshold", type=float,
                       help="largest distance still called a match (default: "
                            "$FACELIVE_THRESHOLD or the embedder's calibrated one)")
    video.set_defaults(func=cmd_video)
