"""The gallery-size rule (recognition/openset.py) on the built-in LFW table, and the CLI's view
of it without models: the threshold tightens as the gallery grows, and the expected stranger
false-accept rate at the chosen threshold is the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.gallery_rule import describe_rule
from facelive.recognition.openset import FarTable, effective_people

TABLE = BUILT_IN["dlib-resnet"]


@pytest.mark.parametrize("embedder", sorted(BUILT_IN))
def test_threshold_tightens_with_size_and_meets_the_target(embedder: str) -> None:
    table = BUILT_IN[embedder]
    sizes = [1, 3, 10, 30, 100, 300, 1000, 3000]
    thresholds = [table.threshold_for(n, 0.01) for n in sizes]
    assert all(a > b for a, b in zip(thresholds, thresholds[1:], strict=False)), thresholds
    for n, t in zip(sizes, thresholds, strict=True):
        assert table.expected_far(t, n) == pytest.approx(0.01, rel=0.02)
    # A stricter target is a stricter threshold at every size.
    assert all(table.threshold_for(n, 0.001) < table.threshold_for(n, 0.01) for n in sizes)


def test_effective_people_counts_photos_less_than_people() -> None:
    assert effective_people(0, 0) == 0.0
    assert effective_people(100, 100) == 100.0
    assert 100 < effective_people(100, 500) < 500


def test_table_round_trips_and_refuses_a_bad_shape() -> None:
    assert FarTable.from_json(TABLE.to_json()) == TABLE
    with pytest.raises(ValueError):
        FarTable((1, 2), (0.3, 0.4), ((0.1, 0.2),))
    with pytest.raises(ValueError):
        FarTable((2, 1), (0.3, 0.4), ((0.1, 0.2), (0.1, 0.2)))


def test_cli_view_override_and_table(tmp_path: Path) -> None:
    rule = describe_rule(tmp_path, "dlib-resnet", 0.3376, None, 0.01, 100, 500)
    assert rule["threshold_source"] == "built-in table"
    assert rule["threshold"] == pytest.approx(TABLE.threshold_for(effective_people(100, 500),
                                                                  0.01), abs=1e-4)
    assert rule["expected_far"] == pytest.approx(0.01, rel=0.02)
    fixed = describe_rule(tmp_path, "dlib-resnet", 0.3376, 0.45, 0.01, 100, 500)
    assert fixed["threshold"] == 0.45 and fixed["threshold_source"] == "FACELIVE_THRESHOLD"
    assert fixed["expected_far"] > 0.05  # a loose fixed threshold is reported as such
    unknown = describe_rule(tmp_path, "facenet", 1.05, None, 0.01, 3, 3)
    assert unknown["threshold"] == 1.05 and unknown["expected_far"] is None


def test_measure_far_table_on_separable_vectors() -> None:
    from facelive.recognition.openset import measure_far_table

    rng = np.random.default_rng(0)
    # 50 people, 2 photos each, far apart: nobody is within 0.5 of anyone else.
    centres = np.linalg.qr(rng.normal(size=(128, 128)))[0][:50]
    vectors = np.repeat(centres, 2, axis=0) + rng.normal(scale=0.01, size=(100, 128))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [str(i) for i in np.repeat(np.arange(50), 2)]
    table = measure_far_table(vectors, ids, [1, 10], [0.5, 1.5], margin=0.0, strangers=20)
    assert table.far[0][0] == 0.0 and table.far[1][0] == 0.0
    assert table.far[1][1] == 1.0  # orthogonal unit vectors are sqrt(2) = 1.41 apart
