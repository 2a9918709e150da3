"""The fused embedder's weight is fitted on each LFW split's training folds only."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.tools.fusion import fused_ten_fold

# With TensorFlow's start-up, each file takes 40-50 s on the busy 2-core machine.
pytestmark = pytest.mark.slow


def _pairs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    same = np.tile(np.repeat([True, False], 300), 10)
    folds = np.repeat(np.arange(10), 600)
    # Distances: a separates the pairs well, b barely: the weight on a must come out high.
    da = np.where(same, rng.normal(0.6, 0.1, same.size), rng.normal(1.2, 0.1, same.size))
    db = np.where(same, rng.normal(0.9, 0.4, same.size), rng.normal(1.1, 0.4, same.size))
    return np.clip(da, 0, 2), np.clip(db, 0, 2), same, folds


def test_weight_follows_the_informative_part() -> None:
    da2, db2, same, folds = _pairs(0)
    fusion = fused_ten_fold(da2, db2, same, folds, 1.0)
    assert len(fusion.weights) == 10 and min(fusion.weights) >= 0.7
    assert fusion.report.accuracy > 0.98


def test_a_fold_never_sees_its_own_test_pairs() -> None:
    da2, db2, same, folds = _pairs(1)
    before = fused_ten_fold(da2, db2, same, folds, 1.0)
    # Scramble fold 3's pairs: its own weight (fitted on the other nine) cannot change.
    rng = np.random.default_rng(2)
    test = folds == 3
    da2[test], db2[test] = rng.uniform(0, 2, test.sum()), rng.uniform(0, 2, test.sum())
    after = fused_ten_fold(da2, db2, same, folds, 1.0)
    assert after.weights[3] == before.weights[3]
    assert after.report.folds[3].accuracy < 0.7
