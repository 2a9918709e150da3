"""The KNN's decision rule, in graph code: from the K nearest neighbours' labels and distances
to the candidate, its distance, the runner-up, the label (or unknown) and the confidence. What
each output means, and why the rule is this one, is in knn.py's docstring."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

UNKNOWN_LABEL = -1
_WEIGHT_EPS = 1e-6


def vote_graph(
    labels: tf.Tensor, distances: tf.Tensor, threshold: tf.Tensor, margin: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Graph code: (B, K) int32 neighbour labels (-1 where missing) and (B, K) float32
    distances (inf where missing), nearest first; scalar threshold and margin (0: off) ->
    dict of (B,) tensors: candidate, label, distance, runner_up, confidence."""
    valid = labels >= 0
    k = tf.shape(labels)[1]
    weights = tf.where(valid, 1.0 / (distances + _WEIGHT_EPS), 0.0)  # (B, K)
    voting = tf.where(valid & (distances <= threshold), weights, 0.0)
    same = tf.equal(labels[:, :, None], labels[:, None, :])  # (B, K, K)
    # Score of neighbour i's label = sum of weights of neighbours sharing it.
    score = tf.reduce_sum(tf.where(same, voting[:, None, :], 0.0), axis=2)  # (B, K)
    support = tf.reduce_sum(tf.where(same, weights[:, None, :], 0.0), axis=2)
    positions = tf.range(k)[None, :]
    best = tf.reduce_max(score, axis=1, keepdims=True)
    # First position holding the top score: the winner's nearest example, because all
    # positions of one label share its score.
    winner = tf.reduce_min(tf.where(score >= best, positions, k), axis=1)
    winner = tf.where(tf.reduce_max(score, axis=1) > 0.0, winner, 0)
    candidate = tf.gather(labels, winner, batch_dims=1)
    distance = tf.gather(distances, winner, batch_dims=1)
    other = valid & tf.not_equal(labels, candidate[:, None])
    runner_up = tf.reduce_min(tf.where(other, distances, np.inf), axis=1)
    total = tf.reduce_sum(weights, axis=1)
    share = tf.math.divide_no_nan(tf.gather(support, winner, batch_dims=1), total)
    closeness = tf.clip_by_value(1.0 - distance / (2.0 * threshold), 0.0, 1.0)
    confidence = tf.where(candidate >= 0, share * closeness, 0.0)
    clear = (margin <= 0.0) | (runner_up - distance >= margin)
    label = tf.where((distance <= threshold) & clear, candidate, UNKNOWN_LABEL)
    return {
        "candidate": candidate,
        "label": label,
        "distance": distance,
        "runner_up": runner_up,
        "confidence": confidence,
    }
