"""Fit the confidence curve: P(same person | distance) on LFW pairs, a logistic in the distance.

    python bench/confidence_fit.py --lfw ../shared/data/lfw --per-fold 100 [--json out.json]

Prints the two coefficients that recognition/confidence.py keeps per embedder, and a
reliability table (predicted vs observed share of same-person pairs per distance bin), so the
number the page shows can be checked against what it claims.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def fit_logistic(d: np.ndarray, same: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """Newton's method on log-loss for P(same) = 1 / (1 + exp(-(a + b d)))."""
    x = np.stack([np.ones_like(d), d], axis=1)
    w = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - same)
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
        w -= np.linalg.solve(hess, grad)
    return float(w[0]), float(w[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lfw", type=Path, required=True)
    parser.add_argument("--pairs", type=Path)
    parser.add_argument("--per-fold", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from facelive.recognition.pipeline import FaceEngine
    from facelive.settings import Settings
    from facelive.tools.embedding import embed_files
    from facelive.tools.evaluate_lfw import read_pairs

    engine = FaceEngine(Settings.from_env())
    pairs = read_pairs(args.lfw, args.pairs or args.lfw / "pairs.txt", args.per_fold)
    files = sorted({p for pair in pairs for p in (pair.file_x, pair.file_y)})
    vectors, _ = embed_files(engine, files, None, label="lfw")
    d = np.array([np.linalg.norm(vectors[p.file_x] - vectors[p.file_y]) for p in pairs])
    same = np.array([p.same for p in pairs], float)
    a, b = fit_logistic(d, same)
    p = 1.0 / (1.0 + np.exp(-(a + b * d)))
    bins = []
    for lo in np.arange(0.0, 1.2, 0.1):
        inside = (d >= lo) & (d < lo + 0.1)
        if inside.sum() >= 10:
            bins.append({"distance": f"{lo:.1f}-{lo + 0.1:.1f}", "pairs": int(inside.sum()),
                         "predicted": round(float(p[inside].mean()), 3),
                         "observed": round(float(same[inside].mean()), 3)})
    result = {"embedder": engine.embedder_name, "pairs": len(pairs), "a": round(a, 4),
              "b": round(b, 4), "log_loss": round(float(-np.mean(
                  same * np.log(p + 1e-12) + (1 - same) * np.log(1 - p + 1e-12))), 4),
              "reliability": bins}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
