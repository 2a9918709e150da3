"""What both gallery backends (the SQLite file and PostgreSQL) check before they store an
example, and `add_examples` itself: the rules and the one transaction are the same for both,
only the SQL of each step is the backend's (its `_write`, `_find`, `_insert_person`,
`_insert_example` and `_insert_vector`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from facelive.recognition.gallery_file import GalleryError
from facelive.recognition.gallery_records import Added, FacePatch
from facelive.recognition.names import name_key, validate_name

SOURCES = ("webcam", "upload", "import")


def f32_blob(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def check_vectors(vectors: Any, count: int) -> np.ndarray:
    """(count, D) finite float32 vectors, or a GalleryError."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] == 0:
        raise GalleryError(f"expected ({count}, D) vectors, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise GalleryError("vectors contain NaN or infinity")
    return matrix


def check_patch(patch: FacePatch) -> tuple[bytes, bytes, bytes]:
    """A patch's JPEG bytes and its box and landmarks as float32 blobs, or a GalleryError."""
    box = np.asarray(patch.box, np.float32)
    landmarks = np.asarray(patch.landmarks, np.float32)
    if box.shape != (4,) or landmarks.shape != (5, 2):
        raise GalleryError(
            f"a face patch needs a (4,) box and (5, 2) landmarks, got {box.shape} and "
            f"{landmarks.shape}"
        )
    if not patch.jpeg.startswith(b"\xff\xd8"):
        raise GalleryError("a face patch must be JPEG bytes")
    return bytes(patch.jpeg), f32_blob(box), f32_blob(landmarks)


class ExampleWrites:
    """The backends' shared `add_examples` (a mixin: the steps it calls are theirs)."""

    def add_examples(
        self: Any,
        name: str,
        patches: Sequence[FacePatch],
        vectors: np.ndarray | None,
        embedder: str,
        source: str,
    ) -> Added:
        """Store examples of a person, and their (N, D) vectors for `embedder`, creating the
        person if new (ignoring case), all in one transaction."""
        name = validate_name(name)
        if source not in SOURCES:
            raise GalleryError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if not patches:
            raise GalleryError("no examples to add")
        matrix = None if vectors is None else check_vectors(vectors, len(patches))
        for patch in patches:
            check_patch(patch)
        now = time.time()
        with self._write() as conn:
            found = self._find(conn, name_key(name))
            person = found[0] if found else self._insert_person(conn, name, now)
            ids = [self._insert_example(conn, person, source, now, p) for p in patches]
            for example, vector in zip(ids, [] if matrix is None else matrix, strict=False):
                self._insert_vector(conn, example, embedder, vector)
        return Added(person, found[1] if found else name, ids, found is None)
