"""Measurement subcommands of `facelive`: evaluate-lfw, calibrate and evaluate-openset.

Wired into the CLI by `add_eval_commands(subparsers)`. Both embed LFW images through
the real engine, with embeddings cached in the data dir (`cache/`), so a rerun costs seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from facelive.cli.common import (
    EXIT_OK,
    CommandError,
    add_common_flags,
    cache_dir,
    emit_json,
    load_engine,
    positive_int,
    settings_from_args,
)


def _lfw_dir(raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise CommandError(f"{path}: not a directory")
    return path


# ---------------------------------------------------------------- evaluate-lfw
def cmd_evaluate_lfw(args: argparse.Namespace) -> int:
    from facelive.tools.evaluate_lfw import evaluate_lfw

    settings = settings_from_args(args)
    engine = load_engine(settings)
    lfw_dir, pairs = Path(args.lfw_dir), Path(args.pairs)
    if not lfw_dir.is_dir():
        raise CommandError(f"{lfw_dir}: not a directory")
    if not pairs.is_file():
        raise CommandError(f"{pairs}: no such pairs file")
    try:
        result = evaluate_lfw(engine, lfw_dir, pairs, cache_dir(args, settings),
                              per_fold=args.per_fold)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    for key in ("embedder", "accuracy", "accuracy_std", "val_at_far_1e-3", "threshold",
                "pairs", "no_face", "seconds"):
        print(f"{key}: {result[key]}")
    if args.json:
        emit_json(result, args.json)
    return EXIT_OK


# ---------------------------------------------------------------- calibrate
def cmd_calibrate(args: argparse.Namespace) -> int:
    from facelive.recognition.calibration import save_calibration
    from facelive.tools.calibrate import calibrate

    settings = settings_from_args(args)
    lfw_dir, pairs = _lfw_dir(args.lfw_dir), Path(args.pairs)
    if not pairs.is_file():
        raise CommandError(f"{pairs}: no such pairs file")
    engine = load_engine(settings)
    try:
        calibration, report = calibrate(
            engine, lfw_dir, pairs, far=args.far, impostors=args.impostors,
            cache_dir=cache_dir(args, settings), per_fold=args.per_fold,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if not args.no_store:
        report["stored"] = str(save_calibration(settings.data_dir, calibration))
    if args.json:
        emit_json(report, args.json)
        if args.json == "-":
            return EXIT_OK
    print(f"{report['embedder']}: threshold {report['threshold']} at FAR <= {args.far} "
          f"({report['impostors']} impostor pairs: {report['impostor_pairs']}, measured FAR "
          f"{report['measured_far']:.2e}); VAL {report['val']}, accuracy {report['accuracy']}")
    ref = report["listed_far_1e-3"]
    print(f"LFW pairs at FAR 1e-3: threshold {ref['threshold']}, VAL {ref['val']}, "
          f"accuracy {ref['accuracy']}; 10-fold accuracy {report['ten_fold']['accuracy']}")
    print(f"stored in {report['stored']}" if "stored" in report else "not stored (--no-store)")
    return EXIT_OK


# ---------------------------------------------------------------- evaluate-openset
def cmd_evaluate_openset(args: argparse.Namespace) -> int:
    from facelive.recognition.calibration import active_threshold
    from facelive.tools.evaluate_openset import evaluate_openset

    settings = settings_from_args(args)
    lfw_dir = _lfw_dir(args.lfw_dir)
    engine = load_engine(settings)
    embedder = engine.embedder
    source: str
    threshold, source = active_threshold(
        settings.data_dir, embedder.name, embedder.threshold, settings.match_threshold,
        getattr(embedder, "recipe", None),
    )
    if args.threshold is not None:
        threshold, source = args.threshold, "--threshold"
    margin = args.margin if args.margin is not None else float(getattr(embedder, "margin", 0.0))
    try:
        result = evaluate_openset(
            engine, lfw_dir, threshold, threshold_source=source,
            k=args.k or settings.knn_k, margin=margin, people=args.people,
            examples=args.examples, strangers=args.strangers, seed=args.seed,
            max_probes=args.max_probes, cache_dir=cache_dir(args, settings),
            variants=args.variants, step=args.step,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        emit_json(result, args.json)
        if args.json == "-":
            return EXIT_OK
    print(f"{result['embedder']}: {result['people']} people x {result['examples']} enrolled, "
          f"{result['probes']} probes, {result['strangers']} strangers (seed {result['seed']})")
    print(f"threshold {result['threshold']} ({source}), K {result['k']}, margin "
          f"{result['margin']}: top-1 {result['top1']}, strangers' false accepts "
          f"{result['far']}")
    for budget, best in result["best"].items():
        if best:
            print(f"best top-1 at {budget.replace('far', 'FAR ')}: {best['top1']} "
                  f"(threshold {best['threshold']}, FAR {best['far']})")
    for name, variant in result.get("variants", {}).items():
        cells = ", ".join(
            f"{budget}: {best['top1'] if best else '-'}" for budget, best in variant["best"].items()
        )
        print(f"  {name:16s} top-1 {cells}")
    return EXIT_OK


# ---------------------------------------------------------------- parser
def add_eval_commands(subparsers: Any) -> None:
    """Add evaluate-lfw, calibrate and evaluate-openset to `facelive`'s subparsers."""
    from facelive.recognition.calibration import IMPOSTOR_CHOICES

    lfw = subparsers.add_parser("evaluate-lfw", help="LFW 10-fold verification accuracy")
    add_common_flags(lfw)
    lfw.add_argument("lfw_dir", metavar="LFW_DIR")
    lfw.add_argument("pairs", metavar="PAIRS")
    lfw.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    lfw.add_argument("--per-fold", type=int, help="only N pairs of each fold (a quick subset)")
    lfw.add_argument("--no-cache", action="store_true", help="ignore cached embeddings")
    lfw.set_defaults(func=cmd_evaluate_lfw)

    cal = subparsers.add_parser(
        "calibrate", help="measure the match threshold on LFW pairs and store it"
    )
    add_common_flags(cal)
    cal.add_argument("lfw_dir", metavar="LFW_DIR")
    cal.add_argument("pairs", metavar="PAIRS")
    cal.add_argument("--far", type=float, default=1e-4,
                     help="target false-accept rate per impostor pair (default 1e-4: about "
                          "1-2%% of strangers named with 100 people enrolled)")
    cal.add_argument("--impostors", choices=IMPOSTOR_CHOICES, default="all",
                     help="all: every different-person pair among the pairs' images (default);"
                          " listed: only the pairs file's different pairs")
    cal.add_argument("--per-fold", type=positive_int,
                     help="only N pairs of each fold (a quick subset)")
    cal.add_argument("--json", nargs="?", const="-", metavar="OUT",
                     help="print the report as JSON, or write it to OUT")
    cal.add_argument("--no-store", action="store_true", help="measure only; store nothing")
    cal.add_argument("--no-cache", action="store_true", help="ignore cached embeddings")
    cal.set_defaults(func=cmd_calibrate)

    ev = subparsers.add_parser(
        "evaluate-openset", help="open-set recognition on LFW: enrolled people and strangers"
    )
    add_common_flags(ev)
    ev.add_argument("lfw_dir", metavar="LFW_DIR")
    ev.add_argument("--people", type=positive_int, default=100, help="people enrolled")
    ev.add_argument("--examples", type=positive_int, default=5, help="photos per person")
    ev.add_argument("--strangers", type=positive_int, default=1000,
                    help="photos of people never enrolled (one per person)")
    ev.add_argument("--max-probes", type=positive_int,
                    help="at most N probe photos per enrolled person (default: all others)")
    ev.add_argument("--seed", type=int, default=0, help="fixes the choice of people and photos")
    ev.add_argument("--threshold", type=float,
                    help="default: FACELIVE_THRESHOLD, the stored calibration or the shipped one")
    ev.add_argument("--margin", type=float, help="default: the embedder's")
    ev.add_argument("--k", type=positive_int, help="neighbours (default: FACELIVE_KNN_K)")
    ev.add_argument("--step", type=float,
                    help="threshold step of the curve (default: 1/70 of the threshold)")
    ev.add_argument("--variants", action="store_true",
                    help="also measure the decision-rule variants (K, margin)")
    ev.add_argument("--json", nargs="?", const="-", metavar="OUT",
                    help="print the result as JSON, or write it to OUT")
    ev.add_argument("--no-cache", action="store_true", help="ignore cached embeddings")
    ev.set_defaults(func=cmd_evaluate_openset)

