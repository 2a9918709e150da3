"""The in-graph KNN against a brute-force numpy reference, its growth without retracing, and
changes taking effect on the next query."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf

from facelive.recognition.knn import UNKNOWN_LABEL, KnnIndex

EPS = 1e-6


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def reference(
    gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int, threshold: float
) -> list[dict]:
    """The documented rule, written the slow obvious way in float64."""
    gallery, queries = unit(gallery.astype(np.float64)), unit(queries.astype(np.float64))
    out = []
    for q in queries:
        d = np.linalg.norm(gallery - q, axis=1)
        order = np.argsort(d, kind="stable")[:k]
        votes: dict[int, float] = {}
        support: dict[int, float] = {}
        first: dict[int, int] = {}
        for pos, i in enumerate(order):
            lab = int(labels[i])
            w = 1.0 / (d[i] + EPS)
            support[lab] = support.get(lab, 0.0) + w
            first.setdefault(lab, pos)
            if d[i] <= threshold:
                votes[lab] = votes.get(lab, 0.0) + w
        if votes:
            winner = max(votes, key=lambda lab: (votes[lab], -first[lab]))
        else:
            winner = int(labels[order[0]]) if len(order) else UNKNOWN_LABEL
        if len(order):
            dwin = min(d[i] for i in order if labels[i] == winner)
            share = support[winner] / sum(support.values())
            closeness = min(max(1 - dwin / (2 * threshold), 0.0), 1.0)
        else:
            dwin, share, closeness = np.inf, 0.0, 0.0
        out.append(
            {
                "order": order,
                "distances": d[order],
                "candidate": winner,
                "label": winner if dwin <= threshold else UNKNOWN_LABEL,
                "distance": dwin,
                "confidence": share * closeness,
            }
        )
    return out


def check_against_reference(
    index: KnnIndex, gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, thr: float
) -> None:
    got = index.query(queries, thr)
    want = reference(gallery, labels, queries, index.k, thr)
    for b, ref in enumerate(want):
        n = len(ref["order"])
        # Distances of the K nearest agree; where two are within float32 noise of each
        # other their order may differ, so compare indices only where the gap is clear.
        np.testing.assert_allclose(got.distances[b, :n], ref["distances"], atol=2e-3)
        gaps = np.diff(np.concatenate([[-1.0], ref["distances"], [np.inf]]))
        clear = (gaps[:-1] > 1e-3) & (gaps[1:] > 1e-3)
        np.testing.assert_array_equal(got.indices[b, :n][clear], ref["order"][clear])
        assert np.all(got.indices[b, n:] == -1) and np.all(np.isinf(got.distances[b, n:]))
        assert got.candidate[b] == ref["candidate"]
        assert got.label[b] == ref["label"]
        assert got.distance[b] == pytest.approx(ref["distance"], abs=2e-3)
        assert got.confidence[b] == pytest.approx(ref["confidence"], abs=2e-3)
        assert 0.0 <= got.confidence[b] <= 1.0


def clustered(rng: np.random.Generator, people: int, per: int, dim: int, noise: float):
    centres = unit(rng.normal(size=(people, dim)))
    vectors = unit(np.repeat(centres, per, axis=0) + noise * rng.normal(size=(people * per, dim)))
    labels = np.repeat(np.arange(people), per) + 100
    return centres, vectors.astype(np.float32), labels


def test_random_unit_vectors_match_reference() -> None:
    rng = np.random.default_rng(1)
    gallery = unit(rng.normal(size=(700, 128))).astype(np.float32)
    labels = rng.integers(0, 25, size=700)
    queries = unit(rng.normal(size=(16, 128))).astype(np.float32)
    index = KnnIndex(128, k=7)
    index.add(gallery, labels, np.arange(700) + 1000)
    # Random 128-D unit vectors sit ~1.41 apart: thresholds around that mix votes and
    # unknowns, 1.9 lets every neighbour vote.
    for thr in (1.3, 1.36, 1.9):
        check_against_reference(index, gallery, labels, queries, thr)
    got = index.query(queries, 1.9)
    np.testing.assert_array_equal(got.neighbour_ids, got.indices + 1000)


def test_clusters_are_recognised_and_strangers_unknown() -> None:
    rng = np.random.default_rng(2)
    centres, gallery, labels = clustered(rng, people=40, per=5, dim=128, noise=0.02)
    index = KnnIndex(128, k=5)
    index.add(gallery, labels)
    near = unit(centres + 0.02 * rng.normal(size=centres.shape)).astype(np.float32)
    strangers = unit(rng.normal(size=(10, 128))).astype(np.float32)
    thr = 0.6
    check_against_reference(index, gallery, labels, np.concatenate([near, strangers]), thr)
    got = index.query(near, thr)
    np.testing.assert_array_equal(got.label, np.arange(40) + 100)
    assert np.all(got.confidence > 0.5)
    got = index.query(strangers, thr)
    assert np.all(got.label == UNKNOWN_LABEL)
    assert np.all(got.confidence < 0.5)


def test_one_close_example_beats_many_far_ones() -> None:
    query = np.zeros((1, 4), np.float32)
    query[0, 0] = 1.0

    def at(distance: float, axis: int) -> np.ndarray:
        # A unit vector at `distance` from e0 (cos = 1 - d^2/2), tilted towards `axis`.
        cos = 1 - distance**2 / 2
        v = np.zeros(4, np.float32)
        v[0], v[axis] = cos, np.sqrt(1 - cos**2)
        return v

    gallery = np.stack([at(0.4, 1)] + [at(0.8 + 0.01 * i, 2) for i in range(4)])
    labels = np.array([7, 9, 9, 9, 9])
    index = KnnIndex(4, k=5)
    index.add(gallery, labels)
    got = index.query(query, 0.5)
    assert got.label[0] == 7 and got.distance[0] == pytest.approx(0.4, abs=1e-3)
    # Unweighted by the threshold, label 9 would carry 4/0.8 = 5 against 2.5.
    check_against_reference(index, gallery, labels, query, 0.5)


def test_ties_go_to_the_nearer_label() -> None:
    gallery = unit(np.array([[1, 0.1, 0], [1, -0.1, 0], [1, 0, 0.5]], np.float32))
    labels = np.array([3, 4, 5])
    index = KnnIndex(3, k=2)
    index.add(gallery, labels)
    query = np.array([[1, 0, 0]], np.float32)  # equidistant from rows 0 and 1
    got = index.query(query, 1.0)
    assert got.candidate[0] == 3  # the lower row wins an exact tie, like np.argsort stable
    check_against_reference(index, gallery, labels, query, 1.0)


def test_fewer_rows_than_k_and_empty_index() -> None:
    index = KnnIndex(8, k=5)
    queries = unit(np.random.default_rng(3).normal(size=(3, 8))).astype(np.float32)
    got = index.query(queries, 0.5)
    assert np.all(got.indices == -1) and np.all(np.isinf(got.distances))
    assert np.all(got.label == -1) and np.all(got.candidate == -1)
    assert np.all(got.confidence == 0.0)
    gallery = unit(np.random.default_rng(4).normal(size=(2, 8))).astype(np.float32)
    index.add(gallery, [1, 2])
    check_against_reference(index, gallery, np.array([1, 2]), queries, 1.5)
    got = index.query(queries, 1.5)
    assert np.all(got.indices[:, 2:] == -1)


def test_growing_from_1_to_5000_rows_never_retraces() -> None:
    rng = np.random.default_rng(5)
    index = KnnIndex(128, k=5)
    queries = unit(rng.normal(size=(8, 128))).astype(np.float32)
    rows, labels = [], []
    for step in range(1, 5001):
        vector = unit(rng.normal(size=(1, 128))).astype(np.float32)
        rows.append(vector[0])
        labels.append(step % 50)
        index.add(vector, step % 50, [step])
        if step in (1, 2, 5, 300, 1000, 4097, 5000):
            got = index.query(queries, 1.4)
            assert got.indices.max() < step
    assert len(index) == 5000 and index.capacity >= 5000
    assert index.trace_count() == 1
    # A batch of another size reuses the same trace (the batch axis is None).
    index.query(queries[:3], 1.4)
    assert index.trace_count() == 1
    check_against_reference(index, np.stack(rows), np.array(labels), queries, 1.4)


def test_removals_take_effect_on_the_next_query() -> None:
    rng = np.random.default_rng(6)
    centres, gallery, labels = clustered(rng, people=10, per=4, dim=32, noise=0.05)
    ids = np.arange(len(gallery)) + 1
    index = KnnIndex(32, k=4)
    index.add(gallery, labels, ids)
    assert index.query(centres[3:4], 0.5).label[0] == 103
    assert index.remove_labels([103]) == 4
    got = index.query(centres[3:4], 0.5)
    assert got.label[0] == UNKNOWN_LABEL and 103 not in got.neighbour_labels
    keep = labels != 103
    check_against_reference(index, gallery[keep], labels[keep], centres, 0.5)
    np.testing.assert_array_equal(index.example_ids, ids[keep])
    # Single examples: remove three of person 105's four, the last still answers.
    assert index.remove_examples(ids[labels == 105][:3]) == 3
    got = index.query(centres[5:6], 0.5)
    assert got.label[0] == 105 and list(got.neighbour_labels[0]).count(105) == 1
    index.clear()
    assert len(index) == 0 and index.query(centres, 0.5).label.tolist() == [-1] * 10
    index.replace_all(gallery, labels, ids)
    assert index.query(centres[3:4], 0.5).label[0] == 103
    assert index.trace_count() == 1


def test_bad_input_is_refused() -> None:
    index = KnnIndex(4, k=2)
    with pytest.raises(ValueError):
        index.add(np.zeros((1, 4), np.float32), 1)  # zero vector has no direction
    with pytest.raises(ValueError):
        index.add(np.ones((1, 5), np.float32), 1)
    with pytest.raises(ValueError):
        index.add(np.ones((1, 4), np.float32), -3)
    with pytest.raises(ValueError):
        index.query(np.ones((2, 3), np.float32), 0.5)
    assert len(index) == 0


def test_queries_during_concurrent_adds_see_whole_rows() -> None:
    rng = np.random.default_rng(7)
    index = KnnIndex(16, k=3)
    # Every row of batch b has label b and is the same vector: a query for it must see
    # either none or all of the batch, never a half-written one.
    batches = unit(rng.normal(size=(60, 16))).astype(np.float32)
    errors: list[str] = []

    def writer() -> None:
        for b, vector in enumerate(batches):
            index.add(np.repeat(vector[None], 3, axis=0), b)

    def reader() -> None:
        for _ in range(150):
            got = index.query(batches, 0.01)
            for b in range(len(batches)):
                hits = int((got.neighbour_labels[b] == b).sum())
                if hits not in (0, 3):
                    errors.append(f"batch {b}: {hits} rows visible")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert np.all(index.query(batches, 0.01).label == np.arange(60))


class PixelProjection:
    """A real (untrained) TensorFlow embedder for testing the fusion: mean-pooled pixels times
    a fixed random matrix, L2-normalised. Same interface as the real embedders."""

    name = "pixel-projection"
    dim = 16
    chip_size = 24

    def __init__(self) -> None:
        rng = np.random.default_rng(8)
        self._w = tf.constant(rng.normal(size=(4 * 4 * 3, self.dim)), tf.float32)

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        x = tf.nn.avg_pool2d(tf.cast(crops, tf.float32) / 255.0 - 0.5, 6, 6, "VALID")
        return tf.math.l2_normalize(tf.reshape(x, [-1, 48]) @ self._w, axis=1)


def test_crop_classifier_fuses_embedding_and_knn() -> None:
    rng = np.random.default_rng(9)
    embedder = PixelProjection()
    crops = rng.integers(0, 256, size=(6, 24, 24, 3), dtype=np.uint8)
    vectors = embedder.embed_tensor(tf.constant(crops)).numpy()
    index = KnnIndex(16, k=3)
    index.add(vectors[:4], [1, 2, 3, 4])
    classify = index.crop_classifier(embedder)
    embeddings, result = classify(crops, 0.3)
    np.testing.assert_allclose(embeddings, vectors, atol=1e-5)
    direct = index.query(vectors, 0.3)
    np.testing.assert_array_equal(result.label, direct.label)
    assert result.label[:4].tolist() == [1, 2, 3, 4]
    index.add(vectors[4:], [5, 6])
    _, result = classify(crops[:2], 0.3)
    _, result = classify(crops, 0.3)
    assert result.label.tolist() == [1, 2, 3, 4, 5, 6]
    assert classify.trace_count() == 1
    with pytest.raises(ValueError):
        classify(np.zeros((1, 20, 20, 3), np.uint8), 0.3)


# ---------------------------------------------------------------- search, margin, top-k
@pytest.mark.parametrize("search", ["float32", "bfloat16"])
def test_both_searches_match_the_reference(search: str) -> None:
    rng = np.random.default_rng(10)
    gallery = unit(rng.normal(size=(900, 64))).astype(np.float32)
    labels = rng.integers(0, 30, size=900)
    index = KnnIndex(64, k=6, search=search)  # type: ignore[arg-type]
    assert index.search == search
    index.add(gallery, labels)
    queries = unit(gallery[:12] + 0.3 * rng.normal(size=(12, 64))).astype(np.float32)
    for thr in (0.9, 1.2, 1.9):
        check_against_reference(index, gallery, labels, queries, thr)


def _near_duplicates(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 people x 1000 near-identical rows (a webcam enrolment taken to the extreme), one
    short of 40k so that the count ends inside a block, and queries near 8 of them."""
    centres = unit(rng.normal(size=(40, 32)))
    gallery = unit(np.repeat(centres, 1000, axis=0)[:39_999]
                   + 0.01 * rng.normal(size=(39_999, 32))).astype(np.float32)
    queries = unit(centres[:8] + 0.01 * rng.normal(size=(8, 32))).astype(np.float32)
    exact = np.linalg.norm(gallery[None].astype(np.float64) - queries[:, None], axis=2)
    return gallery, queries, exact


@pytest.mark.parametrize("search", ["float32", "auto"])
def test_large_gallery_finds_exactly_the_nearest_rows(search: str) -> None:
    # Many blocks and near-ties: the K nearest must be exactly the brute-force ones (under
    # "auto" a gallery this size is searched in float32 even where bfloat16 is native).
    gallery, queries, exact = _near_duplicates(np.random.default_rng(11))
    index = KnnIndex(32, k=5, search=search)  # type: ignore[arg-type]
    labels = np.arange(len(gallery)) // 1000
    for start in range(0, len(gallery), 10_000):
        index.add(gallery[start : start + 10_000], labels[start : start + 10_000])
    got = index.query(queries, 0.5)
    want = np.sort(exact, axis=1)[:, :5]
    np.testing.assert_allclose(got.distances, want, atol=1e-4)
    picked = np.take_along_axis(exact, got.indices.astype(np.int64), axis=1)
    np.testing.assert_allclose(picked, want, atol=1e-4)
    assert index.trace_count() == 1


def test_bfloat16_search_is_exact_on_spread_rows_and_close_on_near_ties() -> None:
    rng = np.random.default_rng(14)
    # Spread rows: bfloat16's ~1e-3 error never reorders the nearest, so the re-rank makes
    # the answer exact.
    gallery = unit(rng.normal(size=(30_000, 64))).astype(np.float32)
    queries = unit(gallery[:8] + 0.5 * rng.normal(size=(8, 64)) / 8).astype(np.float32)
    index = KnnIndex(64, k=5, search="bfloat16")
    index.add(gallery, np.arange(30_000) // 10)
    exact = np.linalg.norm(gallery[None].astype(np.float64) - queries[:, None], axis=2)
    got = index.query(queries, 0.5)
    np.testing.assert_array_equal(got.indices, np.argsort(exact, axis=1)[:, :5])
    # 1000 near-identical rows per person: which of them come back may differ, but they are
    # the right person's, their reported distances are their exact ones, and no farther
    # than bfloat16's resolution from the true nearest.
    gallery, queries, exact = _near_duplicates(np.random.default_rng(11))
    index = KnnIndex(32, k=5, search="bfloat16")
    index.add(gallery, np.arange(len(gallery)) // 1000)
    got = index.query(queries, 0.5)
    np.testing.assert_array_equal(got.neighbour_labels, np.repeat(np.arange(8)[:, None], 5, 1))
    picked = np.take_along_axis(exact, got.indices.astype(np.int64), axis=1)
    np.testing.assert_allclose(got.distances, picked, atol=1e-5)
    assert np.all(got.distances[:, 0] - np.sort(exact, axis=1)[:, 0] < 0.03)


def test_top_k_blocked_equals_a_full_top_k() -> None:
    from facelive.recognition.knn import BLOCK, top_k_blocked

    rng = np.random.default_rng(12)
    # Rounded values: many exact ties, which must go to the lower column.
    values = np.round(rng.normal(size=(4, 8 * BLOCK)), 1).astype(np.float32)
    for count in (0, 3, BLOCK - 1, BLOCK, 5 * BLOCK + 17, 8 * BLOCK):
        for k in (1, 5, 12):
            best, columns = top_k_blocked(tf.constant(values), tf.constant(count), k)
            masked = np.where(np.arange(values.shape[1]) < count, values, -np.inf)
            want_best, want_columns = tf.math.top_k(tf.constant(masked), k)
            found = min(k, count)
            np.testing.assert_array_equal(best.numpy()[:, :found], want_best.numpy()[:, :found])
            np.testing.assert_array_equal(
                columns.numpy()[:, :found], want_columns.numpy()[:, :found]
            )
            assert np.all(columns.numpy()[:, found:] >= count)


def test_margin_leaves_a_face_between_two_people_unknown() -> None:
    query = np.array([[1.0, 0.0, 0.0]], np.float32)

    def at(distance: float, axis: int) -> np.ndarray:
        cos = 1 - distance**2 / 2
        v = np.zeros(3, np.float32)
        v[0], v[axis] = cos, np.sqrt(1 - cos**2)
        return v

    gallery = np.stack([at(0.30, 1), at(0.32, 2), at(0.45, 2)])
    index = KnnIndex(3, k=3)
    index.add(gallery, [1, 2, 2])
    got = index.query(query, 0.4)
    assert got.label[0] == 1 and got.runner_up[0] == pytest.approx(0.32, abs=1e-3)
    index.margin = 0.05  # the runner-up is only 0.02 farther
    got = index.query(query, 0.4)
    assert got.label[0] == UNKNOWN_LABEL and got.candidate[0] == 1
    assert got.distance[0] == pytest.approx(0.30, abs=1e-3)
    index.margin = 0.01
    assert index.query(query, 0.4).label[0] == 1
    # Alone among the K neighbours, a person needs no margin.
    index.remove_labels([2])
    index.margin = 0.5
    got = index.query(query, 0.4)
    assert got.label[0] == 1 and np.isinf(got.runner_up[0])
    assert index.trace_count() == 1
    with pytest.raises(ValueError):
        index.margin = -0.1
    with pytest.raises(ValueError):
        KnnIndex(3, search="float16")  # type: ignore[arg-type]


def test_adds_write_in_place_and_growth_keeps_every_row() -> None:
    rng = np.random.default_rng(13)
    index = KnnIndex(16, k=1, search="bfloat16")
    rows = unit(rng.normal(size=(1500, 16))).astype(np.float32)
    capacities = []
    for start in range(0, 1500, 10):
        index.add(rows[start : start + 10], start, np.arange(start, start + 10))
        capacities.append(index.capacity)
    # Doubling only when full: 256 -> 512 -> 1024 -> 2048.
    assert sorted(set(capacities)) == [256, 512, 1024, 2048]
    got = index.query(rows, 0.01)
    np.testing.assert_array_equal(got.indices[:, 0], np.arange(1500))
    np.testing.assert_array_equal(got.neighbour_ids[:, 0], np.arange(1500))
    np.testing.assert_array_equal(got.label, np.arange(1500) // 10 * 10)


@pytest.mark.parametrize("search", ["float32", "bfloat16"])
def test_dlib_half_queries_compare_the_dlib_half_alone(search: str) -> None:
    """The fused embedder's small-face path: the query DlibHalf's [a, 0] makes, scaled by its
    query_scale 1 / sqrt(w), gets from a gallery of fused vectors dlib-resnet's own
    distances and neighbours, not the fused ones (which here order the rows differently)."""
    from facelive.vision.facenet_embedders import fused_vectors

    rng = np.random.default_rng(7)
    weight, n = 0.85, 300
    a = unit(rng.normal(size=(n, 128)))
    b = unit(rng.normal(size=(n, 128)))
    index = KnnIndex(256, k=5, search=search)
    index.add(fused_vectors(a, b, weight), np.arange(1, n + 1))
    qa, qb = unit(rng.normal(size=(4, 128))), unit(rng.normal(size=(4, 128)))
    fused = fused_vectors(qa, qb, weight)
    queries = np.concatenate([qa / np.sqrt(weight), np.zeros_like(qb)], axis=1)
    result = index.query_as_given(queries, 2.0)
    expected = np.linalg.norm(a[None, :, :] - qa[:, None, :], axis=2)
    nearest = np.argsort(expected, axis=1)[:, :5]
    np.testing.assert_array_equal(result.indices, nearest)
    np.testing.assert_allclose(result.distances, np.take_along_axis(expected, nearest, 1),
                               atol=2e-2 if search == "bfloat16" else 1e-5)
    # The whole fused vectors rank the rows otherwise: the test would see a wrong path.
    plain = index.query(fused, 2.0)
    assert not np.array_equal(plain.indices, result.indices)


@pytest.mark.parametrize("search", ["float32", "bfloat16"])
def test_a_metric_ranks_and_decides_by_its_own_distance(search: str) -> None:
    """An index with the fused embedder's metric returns the K nearest rows by that metric
    (brute force in float64 as the reference) with its distances, and names by them."""
    from facelive.vision.facenet_embedders import fused_vectors
    from facelive.vision.fused_distance import FusedDistance

    rng = np.random.default_rng(11)
    metric = FusedDistance(128, 0.85, 0.55, 0.38)
    people = 40
    centres_a, centres_b = rng.normal(size=(people, 128)), rng.normal(size=(people, 128))
    labels = np.repeat(np.arange(1, people + 1), 5)
    a = unit(centres_a[labels - 1] + rng.normal(scale=0.6, size=(len(labels), 128)))
    b = unit(centres_b[labels - 1] + rng.normal(scale=0.9, size=(len(labels), 128)))
    gallery = fused_vectors(a, b, 0.85)
    index = KnnIndex(256, k=5, search=search, metric=metric)
    index.add(gallery, labels)
    truth = rng.integers(1, people + 1, 30)
    qa = unit(centres_a[truth - 1] + rng.normal(scale=0.6, size=(30, 128)))
    qb = unit(centres_b[truth - 1] + rng.normal(scale=0.9, size=(30, 128)))
    queries = fused_vectors(qa, qb, 0.85)
    result = index.query(queries, 2.0)
    expected = metric.pairwise(queries, gallery)
    nearest = np.argsort(expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(result.indices, nearest)
    np.testing.assert_allclose(result.distances, np.take_along_axis(expected, nearest, 1),
                               atol=1e-4)
    # The metric's order is not the vectors' Euclidean one here: a plain index differs.
    plain = KnnIndex(256, k=5, search=search)
    plain.add(gallery, labels)
    assert not np.array_equal(plain.query(queries, 2.0).indices, result.indices)
    # Decisions use the metric's distances: a threshold just under a query's nearest
    # distance leaves it unknown, just over names it.
    first = np.take_along_axis(expected, nearest[:, :1], 1)[:, 0]
    assert (index.query(queries[:1], float(first[0]) - 1e-3).label == UNKNOWN_LABEL).all()
    assert index.query(queries[:1], float(first[0]) + 1e-3).label[0] == labels[nearest[0, 0]]
