"""Small faces under the fused embedder: judged by its dlib-resnet half alone, with dlib-
resnet's own rule (docs/tracks.md, "Small faces with the fused embedder").

FaceNet's 160 px crop of a face under FusedEmbedder.small_face_px (48 px, the least a face
must have to be enrolled) is mostly interpolation, and its half of the fused distance turns
to noise; dlib-resnet's half still knows the face. The fused vector holds dlib-resnet's unit
vector, scaled, so a query of that half alone over the same gallery (KnnIndex.crop_classifier
with FusedEmbedder.dlib_half, queries taken as given) gives dlib-resnet's own distances, and
FaceNet's network, five sixths of fused's cost per face, is not run for them (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.knn import KnnResult
from facelive.recognition.knn_result import interleaved
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


# crops, threshold -> (embeddings, KnnResult): a recogniser's embed + KNN call.
Classify = Callable[[np.ndarray, float], tuple[np.ndarray, KnnResult]]


def classify_faces(
    rule: SmallFaceRule | None, classify: Classify, classify_small: Classify | None,
    chips: np.ndarray, sides: Sequence[float], own: tuple[str, float],
) -> tuple[np.ndarray, KnnResult, list[tuple[str, float]]]:
    """The embed + KNN answer for `chips` (faces of `sides` px): `classify` at `own`'s
    threshold for the faces the rule does not take, `classify_small` (the fused embedder's
    DlibHalf: its FaceNet network is not run) at the rule's threshold for the small ones. Also
    per face the rule it was judged by, (embedder whose distance it is, threshold)."""
    small = np.zeros(len(chips), bool)
    if rule is not None and classify_small is not None:
        small = np.asarray(sides, np.float64) < rule.below_px
    if not small.any():
        embeddings, result = classify(chips, own[1])
        return embeddings, result, [own] * len(chips)
    assert rule is not None and classify_small is not None
    rules = [(rule.embedder, rule.threshold) if s else own for s in small]
    if small.all():
        return (*classify_small(chips, rule.threshold), rules)
    few, few_result = classify_small(chips[small], rule.threshold)
    many, many_result = classify(chips[~small], own[1])
    embeddings = np.empty((len(chips), many.shape[1]), many.dtype)
    embeddings[small], embeddings[~small] = few, many
    return embeddings, interleaved(small, few_result, many_result), rules
