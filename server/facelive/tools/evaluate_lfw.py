"""`facelive evaluate-lfw`: verification accuracy on LFW by the standard 10-fold protocol.

Each image is read, its main face detected and aligned by our MTCNN, and embedded; embeddings
are cached by file content so a rerun (or another command on the same files) costs nothing
(tools/embedding.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition.pipeline import FaceEngine
from facelive.recognition.verification import ten_fold
from facelive.tools.embedding import embed_files
from facelive.vision.fused_distance import paired
from facelive.vision.image import ImageError


@dataclass(frozen=True)
class Pair:
    file_x: Path
    file_y: Path
    same: bool
    fold: int


def read_pairs(lfw_dir: Path, pairs_file: Path, per_fold: int | None = None) -> list[Pair]:
    """Parse LFW's pairs.txt (header `folds n`, then per fold n matched and n mismatched).

    per_fold: keep only the first per_fold/2 matched and mismatched pairs of every fold (a
    subset that keeps the 10-fold structure).
    """
    lines = pairs_file.read_text().split("\n")
    try:
        n_folds, n = (int(v) for v in lines[0].split())
    except ValueError:
        raise ValueError(f"{pairs_file}: first line must be '<folds> <pairs per half>'") from None

    def image(name: str, number: str) -> Path:
        return lfw_dir / name / f"{name}_{int(number):04d}.jpg"

    pairs: list[Pair] = []
    rows = [line.split() for line in lines[1:] if line.strip()]
    if len(rows) != 2 * n * n_folds:
        raise ValueError(f"{pairs_file}: expected {2 * n * n_folds} pairs, found {len(rows)}")
    keep = n if per_fold is None else max(per_fold // 2, 1)
    for fold in range(n_folds):
        block = rows[2 * n * fold : 2 * n * (fold + 1)]
        for row in block[:keep]:
            pairs.append(Pair(image(row[0], row[1]), image(row[0], row[2]), True, fold))
        for row in block[n : n + keep]:
            pairs.append(Pair(image(row[0], row[1]), image(row[2], row[3]), False, fold))
    return pairs


def evaluate_lfw(
    engine: FaceEngine,
    lfw_dir: Path,
    pairs_file: Path,
    cache_dir: Path | None = None,
    per_fold: int | None = None,
) -> dict[str, Any]:
    """Run the protocol; returns the JSON-ready result."""
    started = time.monotonic()
    pairs = read_pairs(lfw_dir, pairs_file, per_fold)
    missing = sorted({str(p) for pair in pairs for p in (pair.file_x, pair.file_y)
                      if not p.is_file()})
    if missing:
        raise FileNotFoundError(f"{len(missing)} pair images are missing, e.g. {missing[0]}")
    files = sorted({p for pair in pairs for p in (pair.file_x, pair.file_y)})
    vectors, stats = embed_files(engine, files, cache_dir, label="lfw")
    if stats["unreadable"]:
        raise ImageError(f"unreadable LFW images: {stats['unreadable'][:3]}")
    metric = getattr(engine.embedder, "metric", None)
    distances = paired(metric, np.stack([vectors[p.file_x] for p in pairs]),
                       np.stack([vectors[p.file_y] for p in pairs]))
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    report = ten_fold(distances, same, folds)
    extra: dict[str, Any] = {}
    from facelive.vision.facenet_embedders import FusedEmbedder

    if isinstance(engine.embedder, FusedEmbedder):
        # The fused embedder: its weight is refitted on each split's training folds.
        from facelive.tools.fusion import fused_ten_fold

        x = np.stack([vectors[p.file_x] for p in pairs])
        y = np.stack([vectors[p.file_y] for p in pairs])
        (ax, bx), (ay, by) = engine.embedder.parts(x), engine.embedder.parts(y)
        fusion = fused_ten_fold(np.linalg.norm(ax - ay, axis=1), np.linalg.norm(bx - by, axis=1),
                                same, folds, engine.embedder.metric.scale)
        extra = {"shipped_weight": engine.embedder.metric.weight,
                 "shipped_weight_accuracy": round(report.accuracy, 5),
                 "fold_weights": list(fusion.weights)}
        report = fusion.report
    return {
        "embedder": engine.embedder_name,
        "accuracy": round(report.accuracy, 5),
        "accuracy_std": round(report.accuracy_std, 5),
        "val_at_far_1e-3": round(report.val_at_far_1e3, 5),
        "val_std": round(report.val_std, 5),
        "threshold": round(report.threshold, 4),
        "pairs": len(pairs),
        "images": len(files),
        "no_face": len(stats["no_face"]),
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }
