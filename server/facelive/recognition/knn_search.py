"""The search kernels of the in-graph KNN (knn.py): the two-stage top-k over a gallery's
similarities, and whether this CPU makes the bfloat16 search copy pay. Plain functions of
tensors; the index decides when each runs."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from facelive.vision.fused_distance import FusedDistance

# Rows per block of the two-stage top-k (see top_k_blocked); capacities are multiples of it.
BLOCK = 256
# Candidates beyond K that the bfloat16 search hands to the exact float32 re-rank. bfloat16
# keeps 8 bits of mantissa: its similarities are off by ~1e-3 (at most ~3e-3 measured), so
# rows that close to the K-th may be swapped for one another; the distances reported are
# always the exact ones of the rows returned.
RERANK_EXTRA = 32
# Under "auto", galleries from this many rows use the bfloat16 search: below it the float32
# search is about as fast (bench/knn.py: 11 vs 10 ms at 100k x 128-D) and exact.
ROUGH_FROM_ROWS = 262_144
Search = Literal["auto", "float32", "bfloat16"]


@cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX). Only then does the
    bfloat16 copy of the gallery pay: it halves the bytes a query reads, and reading them is
    what a large gallery's query costs; elsewhere bfloat16 is emulated and slower than float32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def top_k_blocked(
    similarity: tf.Tensor, count: tf.Tensor, k: int, block: int = BLOCK
) -> tuple[tf.Tensor, tf.Tensor]:
    """The k largest of the first `count` columns of (B, N) `similarity` (N a multiple of
    `block`): ((B, k) values, (B, k) int32 column indices), largest first, ties to the lower
    index. A column index >= count marks a missing one (fewer than k columns in use).

    Done in two stages because a plain top_k over a million columns is slow on CPU (13 ms for
    8 rows, against 2.5 ms this way) while a max over blocks of 256 is one vectorised pass:
    the k best columns lie in the k blocks with the best maxima, and top_k then runs over
    those few blocks only. One more block is taken than k because the partly used last block
    may owe its maximum to an unused column.
    """
    batch = tf.shape(similarity)[0]
    blocks_total = tf.shape(similarity)[1] // block
    blocks = tf.reshape(similarity, [batch, blocks_total, block])
    neg_inf = tf.constant(-np.inf, similarity.dtype)
    used = tf.range(blocks_total) * block < count
    block_max = tf.where(used[None, :], tf.reduce_max(blocks, axis=2), neg_inf)
    n_blocks = tf.minimum(k + 1, blocks_total)
    _, chosen = tf.math.top_k(block_max, n_blocks)
    # In column order, so that top_k's "lower index first" settles ties like a full top_k.
    chosen = tf.sort(chosen, axis=1)
    columns = chosen[:, :, None] * block + tf.range(block)[None, None, :]
    candidates = tf.where(columns < count, tf.gather(blocks, chosen, batch_dims=1), neg_inf)
    columns = tf.reshape(columns, [batch, -1])
    values, position = tf.math.top_k(tf.reshape(candidates, [batch, -1]), k)
    return values, tf.gather(columns, position, batch_dims=1)


def rank_by_metric(
    metric: FusedDistance, queries: tf.Tensor, vectors: tf.Tensor, indices: tf.Tensor,
    valid: tf.Tensor, k: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Graph code: the k nearest by `metric` (vision/fused_distance.py) of (B, K') candidate
    rows (indices into `vectors`; `valid` false for a missing one) -> ((B, k) int32 indices,
    -1 where missing; (B, k) float32 metric distances, inf where missing), nearest first."""
    inf = tf.constant(np.inf, tf.float32)
    # Candidates in row order, so that ties go to the lower row as in the plain search.
    order = tf.argsort(tf.where(valid, indices, tf.int32.max), axis=1, stable=True)
    indices = tf.gather(indices, order, batch_dims=1)
    valid = tf.gather(valid, order, batch_dims=1)
    rows = tf.gather(vectors, tf.where(valid, indices, 0))
    distances = tf.where(valid, metric.graph(queries, rows), inf)
    negative, position = tf.math.top_k(-distances, k)
    indices = tf.gather(indices, position, batch_dims=1)
    valid = tf.gather(valid, position, batch_dims=1)
    return tf.where(valid, indices, -1), tf.where(valid, -negative, inf)
