"""The fused embed + KNN call fed a few batch sizes only (issue 17)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from facelive.recognition.knn import KnnResult

# The fused embed + KNN call gets its faces in batches of these sizes only (a batch is padded
# to the next one, a larger set split into pieces of the largest): each new batch size costs
# TensorFlow/oneDNN a one-off set of kernels for every layer of the embedder, which a short
# run (`facelive identify` on a folder, `video` on a clip) otherwise pays over and over as
# its face counts vary; padding costs at most a third of the smaller batches' work.
EMBED_BATCHES = (1, 2, 3, 4, 6, 8, 12, 16)


def padded(
    classify: Callable[[np.ndarray, float], tuple[np.ndarray, KnnResult]],
) -> Callable[[np.ndarray, float], tuple[np.ndarray, KnnResult]]:
    """`classify` (crops (N, S, S, 3), threshold -> (embeddings, KnnResult)) fed only batches
    of EMBED_BATCHES sizes; answers for the N crops given, as before."""
    largest = EMBED_BATCHES[-1]

    def run(crops: np.ndarray, threshold: float) -> tuple[np.ndarray, KnnResult]:
        crops = np.asarray(crops, np.uint8)
        embeddings, results = [], []
        for start in range(0, max(len(crops), 1), largest):
            chunk = crops[start : start + largest]
            n = len(chunk)
            size = next(b for b in EMBED_BATCHES if b >= max(n, 1))
            if size > n:
                chunk = np.concatenate([chunk, np.zeros((size - n, *crops.shape[1:]),
                                                         np.uint8)])
            vectors, result = classify(chunk, threshold)
            embeddings.append(vectors[:n])
            results.append((result, n))
        if len(results) == 1 and results[0][0].label.shape[0] == results[0][1]:
            return embeddings[0], results[0][0]
        merged: dict[str, Any] = {}  # runner_up may be None
        for f in dataclasses.fields(KnnResult):
            parts = [getattr(r, f.name) for r, _ in results]
            merged[f.name] = (None if any(p is None for p in parts) else
                              np.concatenate([p[:n] for p, (_, n) in zip(parts, results,
                                                                          strict=True)]))
        return np.concatenate(embeddings), KnnResult(**merged)

    run.trace_count = getattr(classify, "trace_count", None)  # type: ignore[attr-defined]
    return run
