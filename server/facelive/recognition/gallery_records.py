"""What the gallery hands out and takes in: plain frozen records (no SQLite, no TensorFlow).
Arrays are float32; boxes (x1, y1, x2, y2) and landmarks (x, y) are in patch pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FacePatch:
    """One example's picture. jpeg: encoded RGB face patch; box: (4,) float32 x1, y1, x2, y2
    and landmarks: (5, 2) float32 (x, y), both in patch pixels (MTCNN's five points)."""

    jpeg: bytes
    box: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True)
class PersonInfo:
    """id: stable person id (the KNN label); created: unix seconds; thumbnail: the id of the
    person's first example (its crop is the thumbnail), None when they have none."""

    id: int
    name: str
    examples: int
    created: float
    thumbnail: int | None


@dataclass(frozen=True)
class StoredExample:
    id: int
    person: int
    source: str
    created: float
    patch: FacePatch


@dataclass(frozen=True)
class GalleryVectors:
    """All vectors of one embedder, ordered by example id. labels: (N,) int64 person ids;
    matrix: (N, D) float32; example_ids: (N,) int64; names: person id -> name for every
    person (also those without vectors)."""

    labels: np.ndarray
    matrix: np.ndarray
    example_ids: np.ndarray
    names: dict[int, str]


@dataclass(frozen=True)
class Added:
    person: int
    name: str
    example_ids: list[int]
    new_person: bool


@dataclass(frozen=True)
class ImportedExample:
    """An example from outside (an archive): created in unix seconds; embeddings maps an
    embedder id to its (D,) float32 vector."""

    patch: FacePatch
    source: str
    created: float
    embeddings: dict[str, np.ndarray]


@dataclass(frozen=True)
class ImportedPerson:
    name: str
    created: float
    examples: list[ImportedExample]


@dataclass(frozen=True)
class ImportReport:
    people_added: int
    people_merged: int
    examples_added: int
    examples_skipped: int
