"""Open-set recognition on real LFW faces through the real command: enrolled people are named,
strangers are not, at the shipped threshold and margin (the full run, 100 people and 1,000
strangers, is in docs/openset.md). Plus the split's rules, without any model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facelive.tools.evaluate_openset import best_at_far, split_openset


def test_subset_meets_the_acceptance_at_the_shipped_threshold(
    models_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    from facelive.vision.embedders import DlibResNetEmbedder

    out = tmp_path / "openset.json"
    env = {k: v for k, v in os.environ.items() if k != "FACELIVE_THRESHOLD"}
    env.update(FACELIVE_MODELS=str(models_dir), FACELIVE_DATA=str(tmp_path / "data"),
               FACELIVE_EMBEDDER="dlib-resnet")
    cmd = [sys.executable, "-m", "facelive.cli", "evaluate-openset", str(lfw_dir),
           "--people", "30", "--strangers", "300", "--max-probes", "10", "--seed", "0",
           "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["embedder"] == "dlib-resnet" and report["threshold_source"] == "default"
    assert report["threshold"] == pytest.approx(DlibResNetEmbedder.threshold)
    assert report["margin"] == pytest.approx(DlibResNetEmbedder.margin)
    assert report["people"] == 30 and report["strangers"] == 300
    assert 30 <= report["probes"] <= 300 and report["images"] == 30 * 5 + report["probes"] + 300
    assert report["top1"] >= 0.95, report["at_threshold"]
    assert report["far"] <= 0.02, report["at_threshold"]
    curve = report["curve"]
    assert len(curve) > 20 and report["at_threshold"] in curve
    # The trade-off is real: the loosest threshold names more strangers than the tightest,
    # and the tightest leaves more enrolled faces unknown.
    assert curve[-1]["far"] > curve[0]["far"] and curve[-1]["top1"] > curve[0]["top1"]
    assert all(p["rank1"] >= p["top1"] for p in curve)


def _photos(counts: dict[str, int]) -> dict[str, list[Path]]:
    return {name: [Path(f"{name}/{name}_{i:04d}.jpg") for i in range(1, n + 1)]
            for name, n in counts.items()}


def test_split_is_fixed_by_the_seed_and_keeps_groups_apart() -> None:
    counts = {f"P{i:03d}": 2 + i % 9 for i in range(300)}
    photos = _photos(counts)
    split = split_openset(photos, people=20, examples=5, strangers=50, seed=3)
    assert split == split_openset(photos, people=20, examples=5, strangers=50, seed=3)
    assert split != split_openset(photos, people=20, examples=5, strangers=50, seed=4)
    assert len(split.people) == 20 and all(counts[p] > 5 for p in split.people)
    for label, person in enumerate(split.people):
        enrolled = [f for f, lab in split.gallery if lab == label]
        probed = [f for f, lab in split.probes if lab == label]
        assert len(enrolled) == 5 and all(f.parent.name == person for f in enrolled + probed)
        assert sorted(enrolled + probed) == photos[person]
    stranger_people = [f.parent.name for f in split.strangers]
    assert len(set(stranger_people)) == 50 and not set(stranger_people) & set(split.people)
    capped = split_openset(photos, people=20, examples=5, strangers=50, seed=3, max_probes=2)
    assert capped.gallery == split.gallery and len(capped.probes) <= 2 * 20
    with pytest.raises(ValueError):
        split_openset(photos, people=290, examples=5, strangers=5)


def test_best_point_within_a_false_accept_budget() -> None:
    curve = [{"threshold": t, "top1": a, "far": f}
             for t, a, f in ((0.3, 0.90, 0.0), (0.32, 0.95, 0.01), (0.34, 0.97, 0.03))]
    assert best_at_far(curve, 0.02) == {"threshold": 0.32, "top1": 0.95, "far": 0.01}
    assert best_at_far(curve, 0.0)["threshold"] == 0.3
    assert best_at_far(curve[2:], 0.02) is None
