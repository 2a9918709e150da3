"""`facelive evaluate-openset`: recognition as the live app does it, on LFW.

Enrol P people (each with more than E photos; E photos each) in the real in-graph KNN, then
ask it about their other photos ("probes": the right name is the only right answer) and about
one photo each of S people never enrolled ("strangers": any name is a false accept). The
choice of people and photos is fixed by the seed. Reported: top-1 accuracy of the probes and
the strangers' false-accept rate at the active threshold, and both along a sweep of
thresholds (the trade-off curve), for the active decision rule and optionally for variants of
it (K, margin). Every decision comes from KnnIndex.query, the code the Recognizer runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition.knn import UNKNOWN_LABEL, KnnIndex
from facelive.recognition.pipeline import FaceEngine
from facelive.tools.embedding import embed_files, pipeline_tag
from facelive.vision.fused_distance import FusedDistance
from facelive.vision.image import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# False-accept budgets at which the best top-1 is reported.
FAR_BUDGETS = (0.01, 0.02)
# Decision-rule variants measured by --variants: (name, K, margin).
VARIANTS: tuple[tuple[str, int, float], ...] = (
    ("k1", 1, 0.0),
    ("k3", 3, 0.0),
    ("k5", 5, 0.0),
    ("k10", 10, 0.0),
    ("k5-margin0.02", 5, 0.02),
    ("k5-margin0.03", 5, 0.03),
    ("k5-margin0.04", 5, 0.04),
    ("k10-margin0.03", 10, 0.03),
)


@dataclass(frozen=True)
class OpenSetSplit:
    """Who is enrolled with which photos, and what is asked. Labels index `people`."""

    people: list[str]
    gallery: list[tuple[Path, int]]
    probes: list[tuple[Path, int]]
    strangers: list[Path]


def people_photos(lfw_dir: Path) -> dict[str, list[Path]]:
    """LFW layout: one folder per person -> {folder name: sorted image paths}."""
    out = {}
    for folder in sorted(p for p in Path(lfw_dir).iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            out[folder.name] = images
    return out


def split_openset(
    photos: dict[str, list[Path]],
    people: int = 100,
    examples: int = 5,
    strangers: int = 1000,
    seed: int = 0,
    max_probes: int | None = None,
) -> OpenSetSplit:
    """Deterministic (by seed) choice of enrolled people, their enrolment photos, probes (all
    their other photos, or max_probes of them) and strangers (one photo each of distinct
    people not enrolled)."""
    rng = np.random.default_rng(seed)
    names = sorted(photos)
    eligible = [n for n in names if len(photos[n]) > examples]
    if len(eligible) < people:
        raise ValueError(
            f"only {len(eligible)} people have more than {examples} photos; asked for {people}"
        )
    chosen = sorted(rng.choice(eligible, people, replace=False).tolist())
    gallery: list[tuple[Path, int]] = []
    probes: list[tuple[Path, int]] = []
    for label, name in enumerate(chosen):
        files = photos[name]
        order = rng.permutation(len(files))
        enrol = sorted(order[:examples].tolist())
        rest = sorted(order[examples:].tolist())
        if max_probes is not None:
            rest = rest[:max_probes]
        gallery += [(files[i], label) for i in enrol]
        probes += [(files[i], label) for i in rest]
    others = sorted(set(names) - set(chosen))
    if len(others) < strangers:
        raise ValueError(f"only {len(others)} people are left as strangers; asked {strangers}")
    picked = rng.choice(others, strangers, replace=False).tolist()
    stranger_files = [photos[n][int(rng.integers(len(photos[n])))] for n in picked]
    return OpenSetSplit(chosen, gallery, probes, stranger_files)


def _thresholds(centre: float, step: float, span: float = 0.5) -> np.ndarray:
    """A sweep from (1 - span) to (1 + span) times `centre` on a grid of `step`, including
    `centre` itself."""
    low = np.floor(centre * (1 - span) / step) * step
    high = np.ceil(centre * (1 + span) / step) * step
    grid = np.round(np.arange(low, high + step / 2, step), 6)
    return np.unique(np.append(grid, round(centre, 6)))


def _point(
    index: KnnIndex, probes: np.ndarray, truth: np.ndarray, strangers: np.ndarray, threshold: float
) -> dict[str, Any]:
    result = index.query(np.concatenate([probes, strangers]), threshold)
    label, candidate = result.label[: len(probes)], result.candidate[: len(probes)]
    correct = label == truth
    per_person = [float(correct[truth == p].mean()) for p in np.unique(truth)]
    return {
        "threshold": round(float(threshold), 6),
        "top1": round(float(correct.mean()), 5),
        "far": round(float(np.mean(result.label[len(probes) :] != UNKNOWN_LABEL)), 5),
        # Closed-set rank-1 (the candidate, threshold aside); enrolled probes left unknown;
        # enrolled probes given someone else's name; top-1 averaged per person (LFW has a
        # few people with hundreds of photos, who would otherwise dominate).
        "rank1": round(float(np.mean(candidate == truth)), 5),
        "unknown": round(float(np.mean(label == UNKNOWN_LABEL)), 5),
        "wrong": round(float(np.mean((label != UNKNOWN_LABEL) & ~correct)), 5),
        "top1_per_person": round(float(np.mean(per_person)), 5),
    }


def best_at_far(curve: Sequence[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The curve point with the best top-1 whose false-accept rate is within budget."""
    within = [p for p in curve if p["far"] <= budget]
    if not within:
        return None
    best = max(within, key=lambda p: (p["top1"], -p["far"]))
    return {k: best[k] for k in ("threshold", "top1", "far")}


def sweep(
    gallery: np.ndarray,
    labels: np.ndarray,
    probes: np.ndarray,
    truth: np.ndarray,
    strangers: np.ndarray,
    thresholds: np.ndarray,
    k: int,
    margin: float,
    metric: FusedDistance | None = None,
) -> list[dict[str, Any]]:
    """One curve point per threshold, each decided by a real KnnIndex query (deciding with
    the embedder's `metric`)."""
    index = KnnIndex(gallery.shape[1], k=k, margin=margin, metric=metric)
    index.add(gallery, labels)
    return [_point(index, probes, truth, strangers, float(t)) for t in thresholds]


def evaluate_openset(
    engine: FaceEngine,
    lfw_dir: Path,
    threshold: float,
    *,
    threshold_source: str = "",
    k: int = 5,
    margin: float = 0.0,
    people: int = 100,
    examples: int = 5,
    strangers: int = 1000,
    seed: int = 0,
    max_probes: int | None = None,
    cache_dir: Path | None = None,
    variants: bool = False,
    step: float | None = None,
) -> dict[str, Any]:
    """Run the evaluation; returns the JSON-ready result (see the module docstring)."""
    started = time.monotonic()
    split = split_openset(people_photos(lfw_dir), people, examples, strangers, seed, max_probes)
    files = sorted({p for p, _ in split.gallery} | {p for p, _ in split.probes}
                   | set(split.strangers))
    vectors, stats = embed_files(engine, files, cache_dir, label="open-set")
    if stats["unreadable"]:
        raise ImageError(f"unreadable images: {stats['unreadable'][:3]}")
    gallery = np.stack([vectors[p] for p, _ in split.gallery])
    labels = np.array([label for _, label in split.gallery])
    probes = np.stack([vectors[p] for p, _ in split.probes])
    truth = np.array([label for _, label in split.probes])
    others = np.stack([vectors[p] for p in split.strangers])
    step = step or round(threshold / 70, 3) or 0.001
    grid = _thresholds(threshold, step)

    def measured(k_: int, margin_: float) -> dict[str, Any]:
        curve = sweep(gallery, labels, probes, truth, others, grid, k_, margin_,
                      getattr(engine.embedder, "metric", None))
        return {
            "k": k_,
            "margin": margin_,
            "best": {f"far<={b}": best_at_far(curve, b) for b in FAR_BUDGETS},
            "curve": curve,
        }

    main = measured(k, margin)
    at = next(p for p in main["curve"] if p["threshold"] == round(threshold, 6))
    result: dict[str, Any] = {
        "embedder": engine.embedder_name,
        "pipeline": pipeline_tag(engine),
        "seed": seed,
        "people": people,
        "examples": examples,
        "strangers": len(split.strangers),
        "probes": len(split.probes),
        "images": len(files),
        "no_face": len(stats["no_face"]),
        "threshold": round(threshold, 6),
        "threshold_source": threshold_source,
        "k": k,
        "margin": margin,
        "top1": at["top1"],
        "far": at["far"],
        "at_threshold": at,
        "best": main["best"],
        "curve": main["curve"],
    }
    if variants:
        result["variants"] = {
            name: measured(k_, margin_) for name, k_, margin_ in VARIANTS
        }
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
