"""The readable confidence: P(the name is right) from the distance, on real LFW pairs."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.recognition.confidence import FITTED, probability_right


def test_the_curve_falls_with_distance_and_stays_in_bounds() -> None:
    values = [probability_right(d, "dlib-resnet", 0.3376) for d in np.linspace(0, 2, 41)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 0.99 and values[-1] == 0.01
    assert probability_right(None, "dlib-resnet", 0.3376) == 0.0
    a, b = FITTED["dlib-resnet"]
    assert probability_right(-a / b, "dlib-resnet", 0.3376) == pytest.approx(0.5)


def test_an_unfitted_embedder_reads_half_at_its_threshold() -> None:
    assert probability_right(0.9, "facenet", 0.9) == pytest.approx(0.5)
    assert probability_right(0.7, "facenet", 0.9) > 0.9


def test_calibrated_on_lfw_pairs(models_dir, lfw_dir) -> None:  # type: ignore[no-untyped-def]
    """On LFW pairs not used for the fit (folds' pairs past the first 60), the mean predicted
    probability per band matches the observed share of same-person pairs within 0.1."""
    from facelive.recognition.pipeline import FaceEngine
    from facelive.settings import Settings
    from facelive.tools.embedding import embed_files
    from facelive.tools.evaluate_lfw import read_pairs

    engine = FaceEngine(Settings.from_env({}, models_dir=models_dir, embedder="dlib-resnet"))
    listed = read_pairs(lfw_dir, lfw_dir / "pairs.txt", 80)
    # Matched and mismatched pairs 30..39 of each fold: the fit took the first 30 of each.
    pairs = [p for fold in sorted({q.fold for q in listed}) for same in (True, False)
             for p in [q for q in listed if q.fold == fold and q.same == same][30:40]]
    assert len(pairs) == 200
    files = sorted({p for pair in pairs for p in (pair.file_x, pair.file_y)})
    vectors, _ = embed_files(engine, files, None)
    d = np.array([np.linalg.norm(vectors[p.file_x] - vectors[p.file_y]) for p in pairs])
    same = np.array([p.same for p in pairs], float)
    predicted = np.array([probability_right(x, "dlib-resnet", 0.3376) for x in d])
    for sure in (predicted >= 0.9, predicted <= 0.1):
        assert sure.sum() >= 20
        assert abs(predicted[sure].mean() - same[sure].mean()) <= 0.1
