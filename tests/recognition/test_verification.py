"""The 10-fold metric arithmetic, on distances whose answers are known by construction."""

from __future__ import annotations

import numpy as np

from facelive.recognition.verification import (
    best_threshold,
    ten_fold,
    threshold_at_far,
    val_far,
)


def test_separable_pairs_score_perfectly() -> None:
    same = np.array([True] * 50 + [False] * 50)
    distances = np.where(same, 0.3, 1.2) + np.linspace(0, 0.1, 100)
    folds = np.tile(np.arange(10), 10)
    report = ten_fold(distances, same, folds)
    assert report.accuracy == 1.0 and report.accuracy_std == 0.0
    assert 0.4 <= report.threshold < 1.2
    assert report.val_at_far_1e3 == 1.0


def test_overlap_costs_exactly_the_misplaced_pairs() -> None:
    rng = np.random.default_rng(0)
    same = np.array([True] * 300 + [False] * 300)
    distances = np.where(same, rng.uniform(0.0, 0.5, 600), rng.uniform(0.6, 1.5, 600))
    distances[:6] = 1.0  # six same pairs look different: at best 594/600 right
    assert best_threshold(distances, same) < 0.6
    report = ten_fold(distances, same, np.repeat(np.arange(10), 60))
    assert abs(report.accuracy - 594 / 600) < 1e-9


def test_threshold_at_far_never_exceeds_target() -> None:
    rng = np.random.default_rng(1)
    same = np.array([True] * 1000 + [False] * 3000)
    distances = np.where(same, rng.normal(0.5, 0.1, 4000), rng.normal(1.1, 0.1, 4000))
    t = threshold_at_far(distances, same, 1e-3)
    val, far = val_far(distances, same, t)
    assert far <= 1e-3 and far >= 2 / 3000  # 3 accepted different pairs is the cap
    assert val > 0.99
