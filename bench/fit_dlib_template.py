"""Fit the MTCNN->dlib chip template so our chips land where dlib's own chips do.

    python bench/fit_dlib_template.py DERIVE.npz [--json]

Input: per-face MTCNN landmarks and dlib's exact image->chip transforms, saved by
`bench/derive_dlib_template.py --save`. The mean template (what that script prints) is the
average position of MTCNN's points on dlib's chips; but the chip we cut is the similarity fit
of five noisy points onto it, which is not the same thing as dlib's placement. Here the template
(kept left-right symmetric) and the per-point weights are chosen to minimise the mean squared
distance, in chip pixels, between where our transform and dlib's send the same image points
(a grid over the face region of the chip). LFW accuracy of the result: bench/align_variants.py.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from scipy.optimize import minimize

# Chip points the error is measured on: a 7x7 grid over the face (eyes to chin) of a 150 chip.
GRID = np.stack(np.meshgrid(np.linspace(35, 115, 7), np.linspace(30, 125, 7)), -1).reshape(-1, 2)


def batched_similarity(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Umeyama for a batch: src (B, K, 2), dst (K, 2), w (K,) -> (B, 2, 3)."""
    w = w / w.sum()
    src_mean = np.einsum("k,bkd->bd", w, src)
    dst_mean = w @ dst
    sc = src - src_mean[:, None]
    dc = dst - dst_mean
    var = np.einsum("k,bkd->b", w, sc**2)
    cov = np.einsum("k,kd,bke->bde", w, dc, sc)
    u, s, vt = np.linalg.svd(cov)
    det = np.linalg.det(u) * np.linalg.det(vt)
    d = np.stack([np.ones_like(det), np.sign(det)], -1)
    rot = np.einsum("bij,bj,bjk->bik", u, d, vt)
    scale = (s * d).sum(-1) / var
    a = scale[:, None, None] * rot
    t = dst_mean - np.einsum("bij,bj->bi", a, src_mean)
    return np.concatenate([a, t[..., None]], -1)


def template_from(params: np.ndarray) -> np.ndarray:
    """5 numbers (left eye x, y; nose y; left mouth corner x, y) -> the (5, 2) template,
    mirrored about the chip's centre column x = 74.5 (faces are symmetric on average)."""
    ex, ey, ny, mx, my = params[:5]
    return np.array([[ex, ey], [149 - ex, ey], [74.5, ny], [mx, my], [149 - mx, my]])


def error(landmarks: np.ndarray, dlib: np.ndarray, template: np.ndarray,
          weights: np.ndarray) -> float:
    ours = batched_similarity(landmarks, template, weights)
    # Image points that dlib's chip puts on GRID: invert dlib's (A, t).
    a, t = dlib[:, :, :2], dlib[:, :, 2]
    inv = np.linalg.inv(a)
    image_pts = np.einsum("bij,bkj->bki", inv, GRID[None] - t[:, None])
    mapped = np.einsum("bij,bkj->bki", ours[:, :, :2], image_pts) + ours[:, None, :, 2]
    return float(((mapped - GRID[None]) ** 2).sum(-1).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = np.load(args.npz)
    landmarks, dlib = data["landmarks"].astype(np.float64), data["transforms"].astype(np.float64)
    start_template = np.array([47.26, 45.33, 77.32, 50.41, 105.17])
    uniform = np.ones(5)
    base = error(landmarks, dlib, template_from(start_template), uniform)

    fit_t = minimize(lambda p: error(landmarks, dlib, template_from(p), uniform),
                     start_template, method="Nelder-Mead",
                     options={"maxiter": 4000, "xatol": 1e-3, "fatol": 1e-6})

    def with_weights(p: np.ndarray) -> float:
        # Symmetric weights: eyes, nose, mouth; exp keeps them positive.
        w = np.exp(np.array([p[5], p[5], p[6], p[7], p[7]]))
        return error(landmarks, dlib, template_from(p[:5]), w)

    fit_tw = minimize(with_weights, np.concatenate([fit_t.x, [0.0, 0.0, 0.0]]),
                      method="Nelder-Mead",
                      options={"maxiter": 8000, "xatol": 1e-3, "fatol": 1e-6})
    w = np.exp(np.array([fit_tw.x[5]] * 2 + [fit_tw.x[6]] + [fit_tw.x[7]] * 2))
    result = {
        "faces": len(landmarks),
        "mean_template_error_px2": round(base, 3),
        "fitted_template": np.round(template_from(fit_t.x), 2).tolist(),
        "fitted_template_error_px2": round(fit_t.fun, 3),
        "fitted_with_weights_template": np.round(template_from(fit_tw.x[:5]), 2).tolist(),
        "fitted_weights": np.round(w / w.max(), 3).tolist(),
        "fitted_with_weights_error_px2": round(fit_tw.fun, 3),
    }
    print(json.dumps(result, indent=2) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
