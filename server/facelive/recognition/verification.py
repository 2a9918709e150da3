"""Face verification metrics: the LFW 10-fold protocol on pair distances.

Distances are Euclidean between unit embeddings (0..2). Within each of the ten folds the
threshold is chosen on the other nine and applied to the held-out one, so the accuracy is not
tuned on the pairs it is measured on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = np.arange(0.0, 2.0, 0.0025)


@dataclass(frozen=True)
class FoldResult:
    threshold: float
    accuracy: float
    val: float
    far: float


@dataclass(frozen=True)
class VerificationReport:
    accuracy: float
    accuracy_std: float
    val_at_far_1e3: float
    val_std: float
    far: float
    threshold: float
    folds: tuple[FoldResult, ...]


def _accuracy(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((distances <= threshold) == same))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The threshold from THRESHOLDS with the highest accuracy (the middle one of ties)."""
    predicted = distances[None, :] <= THRESHOLDS[:, None]
    accuracies = (predicted == same[None, :]).mean(axis=1)
    best = np.flatnonzero(accuracies == accuracies.max())
    return float(THRESHOLDS[best[len(best) // 2]])


def val_far(distances: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float, float]:
    """(VAL, FAR) at a threshold: the share of same pairs accepted, of different pairs
    accepted."""
    accepted = distances <= threshold
    n_same = max(int(same.sum()), 1)
    n_diff = max(int((~same).sum()), 1)
    return float((accepted & same).sum() / n_same), float((accepted & ~same).sum() / n_diff)


def threshold_at_far(distances: np.ndarray, same: np.ndarray, target_far: float) -> float:
    """The largest threshold whose FAR on these pairs does not exceed target_far.

    With few different pairs (e.g. 2,700 in nine LFW folds) FAR moves in steps of 1/2700, so
    this is the last different-pair distance below which at most target_far of them fall.
    """
    diff = np.sort(distances[~same])
    if len(diff) == 0:
        return float(distances.max(initial=0.0))
    allowed = int(np.floor(target_far * len(diff)))
    if allowed >= len(diff):
        return float(diff[-1])
    # Accept strictly fewer than allowed+1 different pairs: stop just below the next one.
    return float(np.nextafter(diff[allowed], -np.inf))


def ten_fold(
    distances: np.ndarray, same: np.ndarray, folds: np.ndarray, target_far: float = 1e-3
) -> VerificationReport:
    """distances (P,), same (P,) bool, folds (P,) int fold index -> the LFW report."""
    distances = np.asarray(distances, np.float64)
    same = np.asarray(same, bool)
    folds = np.asarray(folds)
    results = []
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        threshold = best_threshold(distances[train], same[train])
        far_threshold = threshold_at_far(distances[train], same[train], target_far)
        val, far = val_far(distances[test], same[test], far_threshold)
        results.append(
            FoldResult(threshold, _accuracy(distances[test], same[test], threshold), val, far)
        )
    return summarize(results)


def summarize(results: list[FoldResult]) -> VerificationReport:
    """The folds' mean and spread of accuracy and VAL, mean FAR and threshold."""
    accuracies = np.array([r.accuracy for r in results])
    vals = np.array([r.val for r in results])
    return VerificationReport(
        accuracy=float(accuracies.mean()),
        accuracy_std=float(accuracies.std()),
        val_at_far_1e3=float(vals.mean()),
        val_std=float(vals.std()),
        far=float(np.mean([r.far for r in results])),
        threshold=float(np.mean([r.threshold for r in results])),
        folds=tuple(results),
    )
