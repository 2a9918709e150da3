"""LFW verification through the real command, on a 600-pair subset that keeps all ten folds
(the full 6,000 pairs are `facelive evaluate-lfw`, run by hand: see BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_lfw_subset_accuracy(models_dir: Path, lfw_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lfw.json"
    env = {**os.environ, "FACELIVE_MODELS": str(models_dir),
           "FACELIVE_DATA": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "facelive.cli", "evaluate-lfw", str(lfw_dir),
           str(lfw_dir / "pairs.txt"), "--per-fold", "60", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["pairs"] == 600 and report["embedder"] == "dlib-resnet"
    assert report["accuracy"] >= 0.98, report
    assert set(report) >= {"accuracy", "accuracy_std", "val_at_far_1e-3", "threshold",
                           "pairs", "embedder", "seconds"}
    # The second run reads every embedding from the cache.
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0
    assert json.loads(out.read_text())["accuracy"] == report["accuracy"]
