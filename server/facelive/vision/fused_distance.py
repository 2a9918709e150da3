"""The fused embedder's distance: a weighted sum of its two networks' own distances.

A fused vector is [sqrt(s) a, sqrt(1 - s) b], a and b the unit vectors of dlib-resnet and
FaceNet, s the storage weight (facenet_embedders.FUSION_WEIGHT). Its Euclidean distance to
another is sqrt(s da^2 + (1 - s) db^2), da and db the two networks' distances. FaceLive
decides with another one:

    d = w da + (1 - w) c db

c puts FaceNet's distances on dlib-resnet's scale (the ratio of their LFW thresholds, 0.4172
/ 1.097) and w is fitted on LFW's training folds (tools/fusion.py). Why the plain sum: the
squared one lets one network's large distance outweigh the other's small one, which is where
the look-alikes that set the threshold at a low false-accept rate lie. On LFW's 6,000 pairs,
10-fold with the weight refitted on each split's training folds (`facelive evaluate-lfw`):
squared 0.9942 with VAL at FAR 1e-3 0.9787, plain 0.9942 with 0.9803 (BENCHMARKS.md, session 6).

The KNN (recognition/knn.py) finds candidates by the fused vectors' Euclidean distance, which
orders rows nearly as d does, and ranks the best K + RERANK_EXTRA of them by d; the stored
vectors are unchanged, so a gallery needs no re-embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the numpy-only tools (CLI, calibration) must not load TensorFlow
    import tensorflow as tf


@dataclass(frozen=True)
class FusedDistance:
    """split: dimensions of the first (dlib-resnet) part; stored: the storage weight s;
    weight: w; scale: c (see the module docstring)."""

    split: int
    stored: float
    weight: float
    scale: float

    @property
    def tag(self) -> str:
        """What changes the distances: part of the embedder's recipe (calibrations)."""
        return f"sum{self.weight:.4f}x{self.scale:.4f}"

    def _combine(self, cos_a: np.ndarray, cos_b: np.ndarray) -> np.ndarray:
        da = np.sqrt(np.maximum(2.0 - 2.0 * cos_a, 0.0))
        db = np.sqrt(np.maximum(2.0 - 2.0 * cos_b, 0.0))
        return combine(da, db, self.weight, self.scale)

    def pairwise(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N, D) and (M, D) fused vectors -> (N, M) distances."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        s = self.split
        cos_a = x[:, :s] @ y[:, :s].T / self.stored
        cos_b = x[:, s:] @ y[:, s:].T / (1.0 - self.stored)
        return self._combine(cos_a, cos_b)

    def paired(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N, D) and (N, D) fused vectors -> (N,) distances of x[i] and y[i]."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        s = self.split
        cos_a = np.sum(x[:, :s] * y[:, :s], axis=1) / self.stored
        cos_b = np.sum(x[:, s:] * y[:, s:], axis=1) / (1.0 - self.stored)
        return self._combine(cos_a, cos_b)

    def graph(self, queries: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        """Graph code: (B, D) queries and (B, K, D) rows -> (B, K) float32 distances."""
        import tensorflow as tf

        s = self.split
        cos_a = tf.einsum("bd,bkd->bk", queries[:, :s], rows[:, :, :s]) / self.stored
        cos_b = tf.einsum("bd,bkd->bk", queries[:, s:], rows[:, :, s:]) / (1.0 - self.stored)
        da = tf.sqrt(tf.maximum(2.0 - 2.0 * cos_a, 0.0))
        db = tf.sqrt(tf.maximum(2.0 - 2.0 * cos_b, 0.0))
        return combine(da, db, self.weight, self.scale)


def combine(da: Any, db: Any, weight: float, scale: float) -> Any:
    """The fused distance from the two networks' own distances (numpy arrays or tensors):
    the one formula the embedder, the KNN graph and the weight's fitting (tools/fusion.py)
    share."""
    return weight * da + (1.0 - weight) * scale * db


def euclidean_pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, D) and (M, D) unit vectors -> (N, M) Euclidean distances."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.sqrt(np.maximum(2.0 - 2.0 * x @ y.T, 0.0))


def pairwise(metric: FusedDistance | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The distances an embedder decides with (its `metric`, or Euclidean when None)."""
    return euclidean_pairwise(x, y) if metric is None else metric.pairwise(x, y)


def paired(metric: FusedDistance | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row by row distances of x[i] and y[i], as `pairwise`."""
    if metric is not None:
        return metric.paired(x, y)
    return np.linalg.norm(np.asarray(x, np.float64) - np.asarray(y, np.float64), axis=1)
