"""`facelive calibrate`: pick the active embedder's match threshold for a target false-accept
rate on LFW pairs, and store it in the data dir (see recognition/calibration.py).

Genuine pairs are the pairs file's same-person pairs. Impostor pairs are either the file's
different-person pairs ("listed", 3,000 on full LFW, so FAR moves in steps of 1/3000 and
nothing below ~3e-4 can be told apart) or every different-person pair among the images the
pairs file names ("all", ~29.6 million on full LFW), which resolves the small rates a gallery
of many people needs: a stranger is compared with every enrolled person, so the rate at which
strangers get a name grows with the gallery (see docs/calibration.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition.calibration import (
    IMPOSTOR_CHOICES,
    Calibration,
    Impostors,
    threshold_at_far,
)
from facelive.recognition.openset import measure_far_table
from facelive.recognition.pipeline import FaceEngine
from facelive.recognition.verification import ten_fold, val_far
from facelive.recognition.verification import threshold_at_far as listed_threshold_at_far
from facelive.tools.embedding import embed_files, pipeline_tag
from facelive.tools.evaluate_lfw import read_pairs
from facelive.vision.fused_distance import FusedDistance, paired, pairwise
from facelive.vision.image import ImageError

# Keep impostor distances up to this only: every useful FAR target (<= 1e-2) sits far below
# it, and it spares holding all ~30 million in memory.
_KEEP_BELOW = 0.9
_BLOCK = 2048
FAR_TABLE_SIZES = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000)
FAR_TABLE_THRESHOLDS = tuple(round(0.2 + 0.005 * i, 3) for i in range(61))  # 0.20 .. 0.50
# The grid above is dlib-resnet's (verification threshold 0.4172); other embedders' distances
# live on other scales (FaceNet ~1.1; fused's sum is on dlib-resnet's, 0.42), so their grid
# and the impostor cut-off are stretched by the ratio of verification thresholds.
_GRID_EMBEDDER_THRESHOLD = 0.4172


def grid_scale(verify_threshold: float) -> float:
    """How much wider than dlib-resnet's this embedder's distances are (1 when unknown)."""
    return verify_threshold / _GRID_EMBEDDER_THRESHOLD if verify_threshold > 0 else 1.0


def impostor_distances(
    vectors: np.ndarray, identities: Sequence[str], keep_below: float = _KEEP_BELOW,
    metric: FusedDistance | None = None,
) -> tuple[np.ndarray, int]:
    """Distances of every pair of rows with different identities: (those < keep_below,
    sorted ascending; how many pairs there are in all). vectors: (N, D) unit rows; metric:
    the embedder's distance (None: Euclidean)."""
    _, ids = np.unique(np.asarray(identities), return_inverse=True)
    matrix = np.asarray(vectors, np.float64)
    kept: list[np.ndarray] = []
    total = 0
    for start in range(0, len(matrix), _BLOCK):
        rows = matrix[start : start + _BLOCK]
        # Only pairs (i, j) with j > i, each pair once.
        cols = matrix[start:]
        distance = pairwise(metric, rows, cols)
        upper = np.arange(len(rows))[:, None] < np.arange(len(cols))[None, :]
        different = upper & (ids[start : start + _BLOCK, None] != ids[None, start:])
        total += int(different.sum())
        near = different & (distance < keep_below)
        kept.append(distance[near])
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0), total


def calibrate(
    engine: FaceEngine,
    lfw_dir: Path,
    pairs_file: Path,
    far: float = 1e-4,
    impostors: Impostors = "all",
    cache_dir: Path | None = None,
    per_fold: int | None = None,
) -> tuple[Calibration, dict[str, Any]]:
    """Embed the pairs' images (cached), choose the threshold, and measure it.

    Returns (the Calibration to store, a JSON-ready report with the figures around it: VAL
    and accuracy at the threshold, the listed pairs' threshold at FAR 1e-3 for reference, and
    the 10-fold accuracy)."""
    if not 0.0 < far < 1.0:
        raise ValueError(f"--far must be in (0, 1), got {far}")
    if impostors not in IMPOSTOR_CHOICES:
        raise ValueError(f"impostors must be one of {IMPOSTOR_CHOICES}, got {impostors!r}")
    started = time.monotonic()
    pairs = read_pairs(lfw_dir, pairs_file, per_fold)
    files = sorted({p for pair in pairs for p in (pair.file_x, pair.file_y)})
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} pair images are missing, e.g. {missing[0]}")
    tag = pipeline_tag(engine)
    vectors, stats = embed_files(engine, files, cache_dir, label="calibrate")
    if stats["unreadable"]:
        raise ImageError(f"unreadable LFW images: {stats['unreadable'][:3]}")

    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    metric = getattr(engine.embedder, "metric", None)
    distances = paired(metric, np.stack([vectors[p.file_x] for p in pairs]),
                       np.stack([vectors[p.file_y] for p in pairs]))
    scale = grid_scale(float(getattr(engine.embedder, "verify_threshold", 0.0)))
    if impostors == "listed":
        smallest, total = np.sort(distances[~same]), int((~same).sum())
    else:
        smallest, total = impostor_distances(
            np.stack([vectors[f] for f in files]), [f.parent.name for f in files],
            keep_below=min(_KEEP_BELOW * scale, 2.0), metric=metric,
        )
    threshold = threshold_at_far(smallest, total, far)
    # Stranger FAR against threshold and gallery size (recognition/openset.py): what lets the
    # app's threshold follow the number of people enrolled. Sizes that leave at least as many
    # people again to be strangers.
    identities = [f.parent.name for f in files]
    people = len(set(identities))
    sizes = [n for n in FAR_TABLE_SIZES if 2 * n <= people] or [1]
    far_table = measure_far_table(
        np.stack([vectors[f] for f in files]), identities, sizes,
        [round(t * scale, 4) for t in FAR_TABLE_THRESHOLDS],
        margin=float(getattr(engine.embedder, "margin", 0.0)), metric=metric,
    )
    measured_far = float(np.searchsorted(smallest, threshold, side="right") / total)
    val, _ = val_far(distances, same, threshold)
    accuracy = float(np.mean((distances <= threshold) == same))

    # The LFW-protocol figures, for comparison with published ones.
    listed_1e3 = listed_threshold_at_far(distances, same, 1e-3)
    val_1e3, far_1e3 = val_far(distances, same, listed_1e3)
    folds_report = ten_fold(distances, same, folds)
    calibration = Calibration(
        embedder=engine.embedder_name,
        threshold=threshold,
        far=far,
        impostors=impostors,
        measured_far=measured_far,
        impostor_pairs=total,
        val=round(val, 5),
        accuracy=round(accuracy, 5),
        same_pairs=int(same.sum()),
        recipe=str(getattr(engine.embedder, "recipe", "")),
        pipeline=tag,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        far_table={**far_table.to_json(), "source": f"facelive calibrate on {people} people"},
    )
    report = {
        "embedder": engine.embedder_name,
        "threshold": threshold,
        "far": far,
        "impostors": impostors,
        "impostor_pairs": total,
        "measured_far": measured_far,
        "val": round(val, 5),
        "accuracy": round(accuracy, 5),
        "listed_far_1e-3": {
            "threshold": round(listed_1e3, 4),
            "val": round(val_1e3, 5),
            "far": round(far_1e3, 6),
            "accuracy": round(float(np.mean((distances <= listed_1e3) == same)), 5),
        },
        "ten_fold": {
            "accuracy": round(folds_report.accuracy, 5),
            "accuracy_std": round(folds_report.accuracy_std, 5),
            "threshold": round(folds_report.threshold, 4),
            "val_at_far_1e-3": round(folds_report.val_at_far_1e3, 5),
        },
        "far_table_sizes": list(far_table.sizes),
        "pairs": len(pairs),
        "same_pairs": int(same.sum()),
        "images": len(files),
        "no_face": len(stats["no_face"]),
        "pipeline": tag,
        "seconds": round(time.monotonic() - started, 1),
    }
    return calibration, report
