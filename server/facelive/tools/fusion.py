"""The fused embedder's weight, fitted the way LFW fits a threshold: on the nine training
folds of each split, then judged on the tenth, so the reported accuracy never saw its own
test pairs.

The fused distance of two faces is w da + (1 - w) c db, da and db the distances of their
dlib-resnet and FaceNet unit vectors, c the ratio of the two networks' LFW thresholds
(facelive.vision.fused_distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelive.recognition.verification import (
    VerificationReport,
    best_threshold,
    summarize,
    ten_fold,
    threshold_at_far,
    val_far,
)
from facelive.vision.fused_distance import combine

WEIGHTS = np.round(np.arange(0.05, 0.951, 0.05), 2)


@dataclass(frozen=True)
class FusionReport:
    report: VerificationReport
    weights: tuple[float, ...]  # the weight fitted for each test fold


def fused_distances(da: np.ndarray, db: np.ndarray, weight: float, scale: float) -> np.ndarray:
    """The fused distances of pairs whose networks' distances are da and db."""
    return np.asarray(combine(da, db, weight, scale))


def _train_score(d: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(accuracy at the best threshold, VAL at FAR 1e-3) on training pairs: accuracy first,
    VAL breaks ties (the low false-accept end is where open-set recognition lives)."""
    t = best_threshold(d, same)
    accuracy = float(np.mean((d <= t) == same))
    val, _ = val_far(d, same, threshold_at_far(d, same, 1e-3))
    return accuracy, val


def fit_weight(da: np.ndarray, db: np.ndarray, same: np.ndarray, scale: float) -> float:
    """The weight in WEIGHTS that scores best on these (training) pairs."""
    scores = [_train_score(fused_distances(da, db, w, scale), same) for w in WEIGHTS]
    return float(WEIGHTS[max(range(len(WEIGHTS)), key=lambda i: scores[i])])


def fused_ten_fold(
    da: np.ndarray, db: np.ndarray, same: np.ndarray, folds: np.ndarray, scale: float
) -> FusionReport:
    """LFW's 10-fold protocol with the weight refitted on each split's training folds."""
    same = np.asarray(same, bool)
    folds = np.asarray(folds)
    results, weights = [], []
    for index, fold in enumerate(np.unique(folds)):
        train = folds != fold
        weight = fit_weight(da[train], db[train], same[train], scale)
        weights.append(weight)
        # ten_fold on the distances made with this split's weight: its fold `fold` result is
        # exactly this split (threshold chosen on the training folds, applied to the test).
        results.append(
            ten_fold(fused_distances(da, db, weight, scale), same, folds).folds[index])
    return FusionReport(summarize(results), tuple(weights))
