"""Small faces under the fused embedder: judged by its dlib-resnet half alone, with dlib-
resnet's own rule (docs/tracks.md, "Small faces with the fused embedder").

FaceNet's 160 px crop of a face under FusedEmbedder.small_face_px (48 px, the least a face
must have to be enrolled) is mostly interpolation, and its half of the fused distance turns
to noise; dlib-resnet's half still knows the face. The fused vector holds dlib-resnet's unit
vector, scaled, so one more KNN query over the same gallery (KnnIndex.query_as_given with
FusedEmbedder.dlib_queries) gives dlib-resnet's own distances: no network runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.knn import KnnIndex, KnnResult
from facelive.recognition.openset import FarTable


@dataclass(frozen=True)
class SmallFaceRule:
    """How the fused embedder's small faces are judged: by `embedder`'s half of the vectors,
    at `threshold`, for faces whose box is under `below_px` on its shorter side."""

    embedder: str
    threshold: float
    below_px: float


def small_face_rule(
    embedder: Any, far_table: FarTable | None, threshold: float, size: float, target_far: float
) -> SmallFaceRule | None:
    """dlib-resnet's threshold at this (effective) gallery size for `embedder`'s small faces,
    or None when it has no such rule (every embedder but fused). far_table, threshold: the
    recogniser's own. A threshold of the user's own (FACELIVE_THRESHOLD, a calibration
    without a table) moves the small faces' by the same factor as it moves the fused one from
    its built-in table."""
    dlib = getattr(embedder, "dlib", None)
    below_px = getattr(embedder, "small_face_px", None)
    if dlib is None or below_px is None:
        return None
    dlib_table, own_table = BUILT_IN.get(str(dlib.name)), BUILT_IN.get(str(embedder.name))
    if dlib_table is None:
        return None
    small = dlib_table.threshold_for(size, target_far)
    if far_table is None and own_table is not None:
        small *= threshold / own_table.threshold_for(size, target_far)
    return SmallFaceRule(str(dlib.name), float(small), float(below_px))


def judge_small_faces(
    rule: SmallFaceRule | None, embedder: Any, knn: KnnIndex, embeddings: np.ndarray,
    result: KnnResult, sides: Sequence[float], own: tuple[str, float],
) -> tuple[KnnResult, list[tuple[str, float]]]:
    """`result` (the fused KNN answer for `embeddings`, faces of `sides` px) with the small
    faces' rows answered again by the rule; and per face the rule it was judged by,
    (embedder whose distance it is, threshold): `own` for the others."""
    rules = [own] * len(embeddings)
    if rule is None:
        return result, rules
    rows = np.flatnonzero(np.asarray(sides, np.float64) < rule.below_px)
    if not len(rows):
        return result, rules
    queries = embedder.dlib_queries(embeddings[rows])
    result = result.with_rows(rows, knn.query_as_given(queries, rule.threshold))
    for row in rows:
        rules[row] = (rule.embedder, rule.threshold)
    return result, rules
