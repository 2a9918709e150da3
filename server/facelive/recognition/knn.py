"""Online k-nearest-neighbour classification of face embeddings, inside the TensorFlow graph.

The gallery's vectors live in a float32 `tf.Variable` of shape (capacity, D), one row per
stored example; rows past `count` are unused and never reach a result. Capacity grows by
doubling (the only time stored rows are copied: ~1-3 s at 1M x 128-D, once), and the
variable's shape is declared (None, D), so adding examples never retraces the query function;
an add writes its own rows in place (under 1 ms for 10 rows, whatever the size). Labels are
person ids (int32) in a second variable; names are not the index's concern, so a rename
touches nothing here.

Search: one matmul of the queries with the rows in use, then a two-stage top-k (see
top_k_blocked). A large gallery's query is almost all matmul, so on CPUs that multiply
bfloat16 natively (see native_bfloat16) the index also keeps a bfloat16 copy of the rows and,
from ROUGH_FROM_ROWS rows on, searches that for K + RERANK_EXTRA candidates and re-ranks them
with the float32 rows: 1M x 128-D batch-8 query 28-33 vs ~45 ms on a quiet 2-core machine
(docs/openset.md has the figures), at the price of near-ties (within ~1e-3 in similarity)
possibly coming back in another order. Smaller galleries, and all galleries elsewhere, get
the exact float32 search.

Per query embedding (B, D) one `tf.function` returns:
- `indices`, `distances` (B, K): the K nearest rows and their Euclidean distances between unit
  vectors (0..2), nearest first; a missing neighbour (fewer than K rows) is index -1, inf.
- `candidate` (B,): the distance-weighted vote winner (weights 1 / (d + 1e-6)); only
  neighbours within the threshold vote, so that several far examples of one person cannot
  outvote one close example of another. When no neighbour is within the threshold the
  candidate is the nearest neighbour's label.
- `distance` (B,): the distance to the candidate's nearest example.
- `runner_up` (B,): the distance to the nearest of the K neighbours with another label (inf if
  none is among them).
- `label` (B,): the candidate, or -1 (unknown) when `distance` > threshold or, with a margin
  m > 0, when runner_up - distance < m: a face about as close to two people is not named.
  On LFW (docs/openset.md) the margin is the one rule change that moves the open-set curve;
  K (1..10) and the vote weighting do not.
- `confidence` (B,) in [0, 1]: the candidate's share of all K neighbours' vote weight times
  closeness = clip(1 - distance / (2 threshold), 0, 1), which is 1 at distance 0, 0.5 at the
  threshold and 0 at twice the threshold.
Ties in the vote go to the label whose nearest example is closer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from facelive.recognition.knn_result import KnnResult
from facelive.recognition.knn_search import (
    BLOCK,
    RERANK_EXTRA,
    ROUGH_FROM_ROWS,
    Search,
    native_bfloat16,
    rank_by_metric,
    top_k_blocked,
)
from facelive.recognition.knn_vote import UNKNOWN_LABEL, vote_graph
from facelive.recognition.rwlock import ReadWriteLock
from facelive.vision.fused_distance import FusedDistance
from facelive.vision.graph_function import graph_function

__all__ = [
    "BLOCK", "MIN_CAPACITY", "UNKNOWN_LABEL", "KnnIndex", "KnnResult", "native_bfloat16",
    "top_k_blocked",
]

MIN_CAPACITY = BLOCK


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class KnnIndex:
    """An in-graph KNN over D-dimensional unit vectors with integer labels (person ids).

    margin: 0 (off) or the least gap, in distance, between the candidate and the nearest
    neighbour of another label among the K for a match (see the module docstring); it can be
    changed at any time (`index.margin = m`) without retracing.

    Thread-safe: queries run concurrently; add/remove/clear wait for running queries and
    take effect on the next query.
    """

    UNKNOWN = UNKNOWN_LABEL  # the label of a query that names no one

    def __init__(
        self,
        dim: int,
        k: int = 5,
        capacity: int = MIN_CAPACITY,
        margin: float = 0.0,
        search: Search = "auto",
        metric: FusedDistance | None = None,
    ) -> None:
        if dim < 1 or k < 1:
            raise ValueError(f"need dim >= 1 and k >= 1, got dim={dim}, k={k}")
        if search not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"search must be auto, float32 or bfloat16, got {search!r}")
        self.dim = int(dim)
        self.k = int(k)
        # The distance the index decides with (the fused embedder's, vision/fused_distance.py);
        # None: the Euclidean distance of the unit vectors.
        self.metric = metric
        # The fewest rows a search runs over: enough for its top-k.
        self._min_rows = _round_up(self.k + RERANK_EXTRA, BLOCK)
        capacity = _round_up(max(int(capacity), MIN_CAPACITY, self._min_rows), BLOCK)
        self.search = "bfloat16" if search == "bfloat16" or (
            search == "auto" and native_bfloat16()) else "float32"
        # Row count from which queries take the bfloat16 search (a graph input: no retrace).
        self._rough_from = 0 if search == "bfloat16" else ROUGH_FROM_ROWS
        self._lock = ReadWriteLock()
        # Shape (None, D): growing the capacity assigns a longer value without retracing.
        self._vectors = tf.Variable(
            tf.zeros((capacity, self.dim), tf.float32),
            shape=tf.TensorShape([None, self.dim]),
            trainable=False,
            name="gallery_vectors",
        )
        # The bfloat16 search copy, same layout.
        self._search: tf.Variable | None = None
        if self.search == "bfloat16":
            self._search = tf.Variable(
                tf.zeros((capacity, self.dim), tf.bfloat16),
                shape=tf.TensorShape([None, self.dim]),
                trainable=False,
                name="gallery_search",
            )
        self._labels = tf.Variable(
            tf.fill([capacity], UNKNOWN_LABEL),
            shape=tf.TensorShape([None]),
            trainable=False,
            name="gallery_labels",
        )
        self._count = tf.Variable(0, dtype=tf.int32, trainable=False, name="gallery_count")
        self._margin = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="knn_margin")
        self.margin = margin
        self._capacity = capacity
        # Host copies of the small per-row data (removals and neighbour ids need them), in
        # buffers of the same capacity so that an add writes only its own rows.
        self._size = 0
        self._host_labels_buf = np.full(capacity, UNKNOWN_LABEL, np.int32)
        self._host_ids_buf = np.full(capacity, -1, np.int64)
        signature = [tf.TensorSpec([None, self.dim], tf.float32), tf.TensorSpec([], tf.float32)]
        self._query = graph_function(signature)(self.classify_graph)
        self._query_as_given = graph_function(signature)(
            lambda queries, threshold: self.classify_graph(queries, threshold, as_given=True))

    # ------------------------------------------------------------ state
    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def active_search(self) -> str:
        """The search the next query takes at the current size: "bfloat16" or "float32"."""
        rough = self._search is not None and self._size >= self._rough_from
        return "bfloat16" if rough else "float32"

    @property
    def margin(self) -> float:
        return float(self._margin.numpy())

    @margin.setter
    def margin(self, value: float) -> None:
        if not 0.0 <= float(value) < 2.0:
            raise ValueError(f"margin must be in [0, 2), got {value}")
        self._margin.assign(float(value))

    @property
    def _host_labels(self) -> np.ndarray:
        return self._host_labels_buf[: self._size]

    @property
    def _host_ids(self) -> np.ndarray:
        return self._host_ids_buf[: self._size]

    @property
    def labels(self) -> np.ndarray:
        """(N,) int32 label of each stored row."""
        return self._host_labels.copy()

    @property
    def example_ids(self) -> np.ndarray:
        """(N,) int64 example id of each stored row."""
        return self._host_ids.copy()

    def trace_count(self) -> int:
        """How many times the query function has been traced (1 after first use, ever)."""
        return int(self._query.experimental_get_tracing_count())

    # ------------------------------------------------------------ changes
    def _rows(
        self, vectors: np.ndarray, labels: np.ndarray | int, example_ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check and normalise rows to add: ((N, D) unit float32, (N,) int32, (N,) int64)."""
        matrix = np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) vectors, got shape {matrix.shape}")
        n = len(matrix)
        label_array = np.broadcast_to(np.asarray(labels, np.int64), (n,))
        if np.any(label_array < 0) or np.any(label_array > np.iinfo(np.int32).max):
            raise ValueError("labels must be in 0 .. 2^31-1")
        ids = np.full(n, -1, np.int64) if example_ids is None else np.asarray(example_ids)
        if ids.shape != (n,):
            raise ValueError(f"expected ({n},) example ids, got shape {ids.shape}")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(matrix)) or np.any(norms == 0):
            raise ValueError("vectors must be finite and non-zero")
        return matrix / norms, label_array.astype(np.int32), ids.astype(np.int64)

    def add(
        self, vectors: np.ndarray, labels: np.ndarray | int, example_ids: np.ndarray | None = None
    ) -> None:
        """Append (N, D) vectors (normalised to unit length here) with (N,) int labels (or one
        label for all) and (N,) example ids (default -1)."""
        rows = self._rows(vectors, labels, example_ids)
        with self._lock.write():
            self._append(*rows)

    def replace_all(
        self, vectors: np.ndarray, labels: np.ndarray, example_ids: np.ndarray | None = None
    ) -> None:
        """Swap in a whole new gallery (a reload) as one change: no query sees it half-done."""
        rows = self._rows(vectors, labels, example_ids)
        with self._lock.write():
            self._size = 0
            self._append(*rows)

    def _grow(self, needed: int) -> None:
        """Double the capacity until `needed` rows fit (caller holds the write lock). Copies
        everything once per doubling, so appending N rows one by one costs O(N) in all."""
        capacity = self._capacity
        while capacity < needed:
            capacity *= 2
        extra = capacity - self._capacity
        self._vectors.assign(
            tf.concat([self._vectors, tf.zeros((extra, self.dim), tf.float32)], axis=0)
        )
        self._labels.assign(
            tf.concat([self._labels, tf.fill([extra], UNKNOWN_LABEL)], axis=0)
        )
        if self._search is not None:
            self._search.assign(
                tf.concat([self._search, tf.zeros((extra, self.dim), tf.bfloat16)], axis=0)
            )
        for name, fill in (("_host_labels_buf", UNKNOWN_LABEL), ("_host_ids_buf", -1)):
            old = getattr(self, name)
            grown = np.full(capacity, fill, old.dtype)
            grown[: self._size] = old[: self._size]
            setattr(self, name, grown)
        self._capacity = capacity

    def _write_rows(
        self, start: int, matrix: np.ndarray | tf.Tensor, labels: np.ndarray,
        rough: tf.Tensor | None = None,
    ) -> None:
        """Write (n, D) unit rows at start.. into the variables in place (`rough`: their
        bfloat16 copy, if already at hand). The raw strided-slice assign updates the
        variable's own buffer; `variable[a:b].assign(x)` would first read the whole variable,
        and that live read makes the update copy every stored row."""
        matrix = tf.convert_to_tensor(matrix, tf.float32)
        end = start + int(matrix.shape[0])
        tf.raw_ops.ResourceStridedSliceAssign(
            ref=self._vectors.handle, begin=[start, 0], end=[end, self.dim], strides=[1, 1],
            value=matrix,
        )
        tf.raw_ops.ResourceStridedSliceAssign(
            ref=self._labels.handle, begin=[start], end=[end], strides=[1],
            value=tf.constant(labels),
        )
        # A slice assign puts the variable in "copy on read" mode (made for sparse updates),
        # in which every query would copy all of it first: switch that off again. No read is
        # running (the write lock), so nothing else holds the buffer.
        written = [self._vectors, self._labels]
        if self._search is not None:
            tf.raw_ops.ResourceStridedSliceAssign(
                ref=self._search.handle, begin=[start, 0], end=[end, self.dim], strides=[1, 1],
                value=tf.cast(matrix, tf.bfloat16) if rough is None else rough,
            )
            written.append(self._search)
        for variable in written:
            tf.raw_ops.DisableCopyOnRead(resource=variable.handle)

    def _append(self, matrix: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> None:
        """Write rows after the current ones (caller holds the write lock)."""
        count = self._size
        needed = count + len(matrix)
        if needed > self._capacity:
            self._grow(needed)
        if needed > count:
            self._write_rows(count, matrix, labels)
        self._count.assign(needed)
        self._host_labels_buf[count:needed] = labels
        self._host_ids_buf[count:needed] = ids
        self._size = needed

    def _keep_only(self, keep: np.ndarray) -> int:
        """Compact the rows where `keep` is True to the front, keeping their order; returns
        how many went. Rows before the first removed one stay where they are, so removing
        recent examples moves little."""
        removed = int((~keep).sum())
        if removed == 0:
            return 0
        first = int(np.argmin(keep))
        moved = np.flatnonzero(keep[first:]) + first
        left = first + len(moved)
        labels = self._host_labels[moved]
        ids = self._host_ids[moved]
        if len(moved):
            # Gather from plain reads (not the variables): a sparse read would put them in
            # copy-on-read mode. The reads are dropped before the write, so it copies nothing.
            rows = tf.gather(self._vectors.read_value(), moved)
            rough = None
            if self._search is not None:
                rough = tf.gather(self._search.read_value(), moved)
            self._write_rows(first, rows, labels, rough)
            del rows, rough
        self._count.assign(left)
        self._host_labels_buf[first:left] = labels
        self._host_ids_buf[first:left] = ids
        self._size = left
        return removed

    def remove_labels(self, labels: list[int] | np.ndarray) -> int:
        """Remove every row of these labels (a deleted person); returns the number of rows."""
        with self._lock.write():
            return self._keep_only(~np.isin(self._host_labels, np.asarray(labels)))

    def remove_examples(self, example_ids: list[int] | np.ndarray) -> int:
        """Remove the rows of these example ids; returns the number of rows."""
        with self._lock.write():
            return self._keep_only(~np.isin(self._host_ids, np.asarray(example_ids)))

    def clear(self) -> None:
        with self._lock.write():
            self._count.assign(0)
            self._size = 0

    # ------------------------------------------------------------ queries
    def nearest_graph(
        self, queries: tf.Tensor, as_given: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Graph code: (B, D) unit queries -> ((B, K) int32 row indices, (B, K) float32
        distances), nearest first; -1 and inf where there are fewer than K rows. With a
        `metric`, the best K + RERANK_EXTRA rows by Euclidean distance are ranked by the
        metric, whose distances are returned; queries taken as given (`query_as_given`)
        compare parts of the vectors, by plain dot products, never by the whole vectors'
        metric."""
        metric = None if as_given else self.metric
        want = self.k if metric is None else self.k + RERANK_EXTRA
        count = self._count.read_value()
        # Only the blocks in use: after a doubling, half the capacity is empty. A leading-
        # rows slice of a row-major tensor shares its buffer, so this copies nothing.
        used = tf.maximum((count + BLOCK - 1) // BLOCK * BLOCK, self._min_rows)
        vectors = self._vectors.read_value()[:used]

        def exact_search() -> tuple[tf.Tensor, tf.Tensor]:
            # (capacity, D) x (D, B), then a transpose of the (capacity, B) result: oneDNN's
            # float32 (B, D) x (capacity, D)^T is twice as slow (19 vs 11 ms at 131k x 128-D).
            similarity = tf.transpose(tf.matmul(vectors, queries, transpose_b=True))
            return top_k_blocked(similarity, count, want)

        def rough_search() -> tuple[tf.Tensor, tf.Tensor]:
            assert self._search is not None
            # In bfloat16 the (B, D) x (capacity, D)^T product is as fast as the other way
            # round, and needs no transpose.
            rough = tf.matmul(
                tf.cast(queries, tf.bfloat16), self._search.read_value()[:used],
                transpose_b=True,
            )
            _, rows = top_k_blocked(rough, count, self.k + RERANK_EXTRA)
            # Exact float32 similarities of the few candidates, in row order so that ties go
            # to the lower row as in the float32 search.
            rows = tf.sort(rows, axis=1)
            exact = tf.einsum("bd,bkd->bk", queries, tf.gather(vectors, rows))
            exact = tf.where(rows < count, exact, tf.constant(-np.inf, tf.float32))
            best, position = tf.math.top_k(exact, want)
            return best, tf.gather(rows, position, batch_dims=1)

        if self._search is None:
            best, indices = exact_search()
        else:
            best, indices = tf.cond(count >= self._rough_from, rough_search, exact_search)
        valid = indices < count
        inf = tf.constant(np.inf, tf.float32)
        if metric is None:
            # |q - g|^2 = 2 - 2 q.g for unit vectors.
            distances = tf.sqrt(tf.maximum(2.0 - 2.0 * best, 0.0))
            return tf.where(valid, indices, -1), tf.where(valid, distances, inf)
        return rank_by_metric(metric, queries, vectors, indices, valid, self.k)

    def classify_graph(
        self, queries: tf.Tensor, threshold: tf.Tensor, as_given: bool = False
    ) -> dict[str, tf.Tensor]:
        """Graph code: (B, D) float32 queries, scalar threshold -> dict of tensors (indices,
        distances, neighbour_labels, candidate, label, distance, runner_up, confidence). Call
        it inside a tf.function (see `query` and `crop_classifier`). as_given: neither
        normalised nor compared by the metric (see `query_as_given`)."""
        if not as_given:
            queries = tf.math.l2_normalize(queries, axis=1, epsilon=1e-12)
        indices, distances = self.nearest_graph(queries, as_given)
        valid = indices >= 0
        labels = tf.where(valid, tf.gather(self._labels.read_value(), tf.maximum(indices, 0)), -1)

        out = vote_graph(labels, distances, threshold, self._margin.read_value())
        return {"indices": indices, "distances": distances, "neighbour_labels": labels, **out}

    def _result(self, out: dict[str, Any]) -> KnnResult:
        indices = out["indices"].numpy()
        # Under the read lock: row -> example id cannot change between query and lookup.
        ids = np.full(indices.shape, -1, np.int64)
        if len(self._host_ids):
            ids = np.where(indices >= 0, self._host_ids[np.maximum(indices, 0)], -1)
        return KnnResult(
            indices=indices,
            distances=out["distances"].numpy(),
            neighbour_labels=out["neighbour_labels"].numpy(),
            neighbour_ids=ids.astype(np.int64),
            candidate=out["candidate"].numpy(),
            label=out["label"].numpy(),
            distance=out["distance"].numpy(),
            confidence=out["confidence"].numpy(),
            runner_up=out["runner_up"].numpy(),
        )

    def query(self, embeddings: np.ndarray, threshold: float) -> KnnResult:
        """(B, D) embeddings -> KnnResult; one tf.function call."""
        queries = np.asarray(embeddings, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}) queries, got shape {queries.shape}")
        with self._lock.read():
            out = self._query(tf.constant(queries), tf.constant(threshold, tf.float32))
            return self._result(out)

    def query_as_given(self, queries: np.ndarray, threshold: float) -> KnnResult:
        """(B, D) queries, not normalised: each distance is sqrt(2 - 2 q.g). A query that is
        zero on some dimensions and scaled on the others is so compared on a part of the
        vectors alone: fused's DlibHalf makes such queries of dlib-resnet's vectors, whose
        distances are dlib-resnet's own."""
        queries = np.asarray(queries, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}) queries, got shape {queries.shape}")
        with self._lock.read():
            return self._result(self._query_as_given(tf.constant(queries),
                                                     tf.constant(threshold, tf.float32)))

    def crop_classifier(
        self, embedder: Any, query_scale: float | None = None
    ) -> Callable[[np.ndarray, float], tuple[np.ndarray, KnnResult]]:
        """A function (N, S, S, 3) uint8 aligned crops, threshold -> ((N, D) embeddings,
        KnnResult) that runs the embedder and the KNN as one tf.function call.

        `embedder` needs `chip_size`, `dim` (== this index's) and `embed_tensor` (crops ->
        unit vectors, graph-compatible). query_scale: the KNN is asked embeddings x
        query_scale taken as given (`query_as_given`: fused's DlibHalf, whose vectors hold a
        part alone); None: normalised and compared by the metric."""
        if int(embedder.dim) != self.dim:
            raise ValueError(f"embedder is {embedder.dim}-D, the index {self.dim}-D")
        size, as_given = int(embedder.chip_size), query_scale is not None

        def fused(crops: tf.Tensor, threshold: tf.Tensor) -> dict[str, tf.Tensor]:
            embeddings = embedder.embed_tensor(crops)
            queries = embeddings * query_scale if as_given else embeddings
            out = self.classify_graph(queries, threshold, as_given=as_given)
            out["embeddings"] = embeddings
            return out

        graph = graph_function([tf.TensorSpec([None, size, size, 3], tf.uint8),
                                tf.TensorSpec([], tf.float32)])(fused)

        def classify(crops: np.ndarray, threshold: float) -> tuple[np.ndarray, KnnResult]:
            crops = np.asarray(crops, np.uint8)
            if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
                raise ValueError(f"expected (N, {size}, {size}, 3) crops, got {crops.shape}")
            with self._lock.read():
                out = graph(tf.constant(crops), tf.constant(threshold, tf.float32))
                return out["embeddings"].numpy(), self._result(out)

        classify.trace_count = graph.experimental_get_tracing_count  # type: ignore[attr-defined]
        return classify
