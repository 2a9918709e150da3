"""`facelive calibrate` through the real command on a 600-pair LFW subset: it stores a
threshold that meets its false-accept target, and a fresh Recognizer decides with it unless
FACELIVE_THRESHOLD says otherwise. Plus the stored file's rules, without any model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facelive.recognition.calibration import (
    FILENAME,
    Calibration,
    active_threshold,
    load_calibration,
    save_calibration,
    threshold_at_far,
)
from facelive.tools.calibrate import FAR_TABLE_THRESHOLDS, grid_scale, impostor_distances


def test_calibrate_stores_a_threshold_a_fresh_recognizer_uses(
    models_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    from facelive.recognition.recognizer import Recognizer
    from facelive.settings import Settings

    data = tmp_path / "data"
    out = tmp_path / "calibration-report.json"
    env = {k: v for k, v in os.environ.items() if k != "FACELIVE_THRESHOLD"}
    env.update(FACELIVE_MODELS=str(models_dir), FACELIVE_DATA=str(data),
               FACELIVE_EMBEDDER="dlib-resnet")
    cmd = [sys.executable, "-m", "facelive.cli", "calibrate", str(lfw_dir),
           str(lfw_dir / "pairs.txt"), "--per-fold", "60", "--far", "1e-3", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["pairs"] == 600 and report["same_pairs"] == 300
    assert report["impostors"] == "all" and report["impostor_pairs"] > 100_000
    assert report["measured_far"] <= 1e-3
    assert 0.2 < report["threshold"] < 0.6
    # Looser than the target would be: a threshold a hair higher accepts too many impostors.
    assert report["val"] > 0.8 and report["listed_far_1e-3"]["val"] > 0.8

    stored = load_calibration(data, "dlib-resnet")
    assert stored is not None and stored.threshold == report["threshold"]
    assert json.loads((data / FILENAME).read_text())["embedders"]["dlib-resnet"]["far"] == 1e-3

    # The stranger FAR table measured on the same images: the app's threshold follows it.
    from facelive.recognition.openset import FarTable

    assert stored.far_table is not None
    table = FarTable.from_json(stored.far_table)
    assert table.sizes[0] == 1 and len(table.sizes) >= 5
    settings = Settings(data_dir=data, models_dir=models_dir, embedder="dlib-resnet")
    with Recognizer.from_settings(settings) as recognizer:
        # An empty gallery: the threshold for one person at the target.
        assert recognizer.threshold_source == "calibration table"
        assert recognizer.threshold == table.threshold_for(1, settings.target_far)
        engine = recognizer.engine
    override = settings.replace(match_threshold=0.25)
    with Recognizer.from_settings(override, engine=engine) as recognizer:
        assert recognizer.threshold == 0.25


def _calibration(**changes: object) -> Calibration:
    base = dict(embedder="dlib-resnet", threshold=0.33, far=1e-4, impostors="all",
                measured_far=9e-5, impostor_pairs=10**6, val=0.8, accuracy=0.9, same_pairs=300,
                recipe="r1")
    return Calibration(**{**base, **changes})  # type: ignore[arg-type]


def test_stored_calibration_is_kept_per_embedder_and_recipe(tmp_path: Path) -> None:
    assert active_threshold(tmp_path, "dlib-resnet", 0.4) == (0.4, "default")
    save_calibration(tmp_path, _calibration())
    save_calibration(tmp_path, _calibration(embedder="facenet", threshold=0.9))
    assert active_threshold(tmp_path, "dlib-resnet", 0.4, recipe="r1") == (0.33, "calibration")
    assert active_threshold(tmp_path, "facenet", 1.0) == (0.9, "calibration")
    assert active_threshold(tmp_path, "dlib-resnet", 0.4, 0.5) == (0.5, "FACELIVE_THRESHOLD")
    # Measured with another recipe of the embedder: its distances mean something else.
    assert active_threshold(tmp_path, "dlib-resnet", 0.4, recipe="r2") == (0.4, "default")
    (tmp_path / FILENAME).write_text("{not json")
    assert active_threshold(tmp_path, "dlib-resnet", 0.4) == (0.4, "default")
    (tmp_path / FILENAME).write_text(json.dumps(
        {"version": 1, "embedders": {"dlib-resnet": {"embedder": "dlib-resnet",
                                                     "threshold": 7.0}}}))
    assert load_calibration(tmp_path, "dlib-resnet") is None


def test_threshold_at_far_accepts_no_more_than_the_target() -> None:
    rng = np.random.default_rng(0)
    distances = np.sort(rng.uniform(0.2, 1.4, size=20_000))
    for far in (1e-4, 1e-3, 1e-2):
        threshold = threshold_at_far(distances, len(distances), far)
        accepted = int(np.sum(distances <= threshold))
        assert accepted <= far * len(distances)
        # ... and is the largest such threshold on a 1e-4 grid.
        assert np.sum(distances <= threshold + 1e-4) > far * len(distances)
    # Only the smallest distances are needed, with the total count.
    assert threshold_at_far(distances[:100], 20_000, 1e-3) == threshold_at_far(
        distances, 20_000, 1e-3)
    with pytest.raises(ValueError):
        threshold_at_far(distances[:10], 20_000, 1e-2)


def test_impostor_distances_cover_each_different_pair_once() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(7, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    who = ["a", "a", "b", "c", "c", "c", "d"]
    kept, total = impostor_distances(vectors, who, keep_below=2.1)
    want = sorted(np.linalg.norm(vectors[i] - vectors[j]) for i in range(7)
                  for j in range(i + 1, 7) if who[i] != who[j])
    assert total == len(want) == 21 - 1 - 3
    np.testing.assert_allclose(kept, want, atol=1e-9)
    near, total_near = impostor_distances(vectors, who, keep_below=1.0)
    assert total_near == total and np.all(near < 1.0) and len(near) <= len(kept)


def test_far_table_grid_follows_the_embedders_scale() -> None:
    # dlib-resnet keeps its grid; facenet-2017 (verification threshold 1.097) gets one that
    # reaches its open-set thresholds (~0.8-1.0), which dlib's 0.20-0.50 would cut off.
    assert grid_scale(0.4172) == 1.0
    assert grid_scale(0.0) == 1.0
    facenet = [t * grid_scale(1.097) for t in FAR_TABLE_THRESHOLDS]
    assert facenet[0] < 0.8 and facenet[-1] > 1.0
