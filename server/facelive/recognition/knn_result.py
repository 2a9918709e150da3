"""What the in-graph KNN (knn.py) answers, as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KnnResult:
    """Numpy results for B queries (see the module docstring). neighbour_ids: (B, K) int64
    example ids of the neighbours (-1 where missing); neighbour_labels: (B, K) int32."""

    indices: np.ndarray
    distances: np.ndarray
    neighbour_labels: np.ndarray
    neighbour_ids: np.ndarray
    candidate: np.ndarray
    label: np.ndarray
    distance: np.ndarray
    confidence: np.ndarray
    runner_up: np.ndarray | None = None


def interleaved(mask: np.ndarray, chosen: KnnResult, others: KnnResult) -> KnnResult:
    """The result of len(mask) queries answered in two parts: the rows where `mask` is true
    from `chosen`, the others from `others` (each part's rows in order)."""
    mask = np.asarray(mask, bool)
    merged: dict[str, np.ndarray | None] = {}
    for name in KnnResult.__dataclass_fields__:
        yes, no = getattr(chosen, name), getattr(others, name)
        if yes is None or no is None:
            merged[name] = None
            continue
        out = np.empty((len(mask), *yes.shape[1:]), yes.dtype)
        out[mask], out[~mask] = yes, no
        merged[name] = out
    return KnnResult(**merged)  # type: ignore[arg-type]
