"""What both gallery backends (the SQLite file and PostgreSQL) change, written once: the rules
an example must meet and each change as one transaction. Each backend brings its write
transaction (`_write`), what a delete leaves to clean up (`_purge`), how it learns a new row's
id (`_inserted`) and how it stores an example's patch (`_insert_example`); the SQL is in the
notation of gallery_sql.py."""

from __future__ import annotations

import hashlib
import time
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from facelive.recognition.gallery_file import GalleryError
from facelive.recognition.gallery_reads import GalleryReads
from facelive.recognition.gallery_records import Added, FacePatch, ImportedPerson, ImportReport
from facelive.recognition.names import name_key, validate_name

SOURCES = ("webcam", "upload", "import")


class PersonExists(GalleryError):
    """Another person already has that name (compared ignoring case)."""

    kind = "conflict"


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


class GalleryWrites(GalleryReads):
    """The reads and the changes of a gallery backend (see GalleryReads for where it goes
    among the bases)."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction: all of the block's changes, or none of them."""

    @abstractmethod
    def _purge(self) -> None:
        """After a delete: make the deleted faces unrecoverable (best effort)."""

    @staticmethod
    @abstractmethod
    def _inserted(conn: Any, text: str, params: Sequence[Any]) -> int:
        """Run an INSERT (already in the driver's SQL) and return the id of its row."""

    # A static method, so that a test can make one insert fail mid-transaction.
    @staticmethod
    @abstractmethod
    def _insert_example(
        conn: Any, person: int, source: str, created: float, patch: FacePatch
    ) -> int:
        """Store one checked example's patch; returns its id."""

    # ------------------------------------------------------------ people
    def _insert_person(self, conn: Any, name: str, created: float) -> int:
        return self._inserted(
            conn, self.dialect.sql("INSERT INTO {people} (name, key, created) VALUES (?, ?, ?)"),
            (name, name_key(name), created),
        )

    def add_person(self, name: str) -> int:
        """The id of the person called `name` (ignoring case), created if new."""
        name = validate_name(name)
        with self._write() as conn:
            found = self._find(conn, name_key(name))
            return found[0] if found else self._insert_person(conn, name, time.time())

    def rename(self, old: str, new: str) -> str:
        """Rename a person; returns the stored new name. Refused (nothing changes) when `old`
        is nobody or `new` is someone else's name in any case; a change of case only is fine.
        """
        new = validate_name(new)
        with self._write() as conn:
            person, _ = self._require(conn, old)
            other = self._find(conn, name_key(new))
            if other is not None and other[0] != person:
                raise PersonExists(f"there is already a person named {other[1]!r}")
            self._run(conn, "UPDATE {people} SET name = ?, key = ? WHERE id = ?",
                      (new, name_key(new), person))
        return new

    def delete(self, name: str) -> int:
        """Delete a person with all their examples and embeddings; returns how many examples
        went. PersonNotFound (nothing changes) when there is no such person."""
        with self._write() as conn:
            person, _ = self._require(conn, name)
            count = self._count(conn, "SELECT COUNT(*) FROM {examples} WHERE person = ?",
                                (person,))
            self._run(conn, "DELETE FROM {people} WHERE id = ?", (person,))
        self._purge()
        return count

    def clear(self) -> int:
        """Delete everyone; returns how many people went."""
        with self._write() as conn:
            count = self._count(conn, "SELECT COUNT(*) FROM {people}")
            for table in self.dialect.tables:
                self._run(conn, f"DELETE FROM {{{table}}}")
        self._purge()
        return count

    # ------------------------------------------------------------ examples
    def _check_dim(self, conn: Any, embedder: str, dim: int) -> None:
        stored = self._embedder_dim(conn, embedder)
        if stored is not None and stored != dim:
            raise GalleryError(
                f"{embedder} vectors in this gallery are {stored}-D, these are {dim}-D"
            )

    def _insert_vector(self, conn: Any, example: int, embedder: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise GalleryError(f"bad {embedder} vector (empty, NaN or infinite)")
        self._check_dim(conn, embedder, vector.size)
        self._run(conn, "INSERT INTO {embeddings} (example, embedder, dim, vector) "
                  "VALUES (?, ?, ?, ?)", (example, embedder, vector.size, f32_blob(vector)))

    def add_examples(
        self,
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

    def remove_examples(self, example_ids: Iterable[int]) -> int:
        """Delete single examples (a bad photo); the person stays, even with none left."""
        ids = [int(i) for i in example_ids]
        with self._write() as conn:
            removed = sum(
                self._run(conn, "DELETE FROM {examples} WHERE id = ?", (i,)).rowcount
                for i in ids
            )
        self._purge()
        return int(removed)

    # ------------------------------------------------------------ embeddings
    def set_embeddings(self, embedder: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Store (or replace) `embedder`'s vector of each example id, in one transaction.
        Ids of examples deleted meanwhile are skipped; returns how many were written."""
        if not vectors:
            return 0
        ids = [int(i) for i in vectors]
        matrix = check_vectors([vectors[i] for i in vectors], len(ids))
        dim = matrix.shape[1]
        written = 0
        with self._write() as conn:
            # Replacing all of an embedder's vectors may change their size (a new model).
            total = self._count(conn, "SELECT COUNT(*) FROM {embeddings} WHERE embedder = ?",
                                (embedder,))
            among, params = self.dialect.one_of("example", ids)
            replaced = self._count(
                conn, f"SELECT COUNT(*) FROM {{embeddings}} WHERE embedder = ? AND {among}",
                (embedder, *params),
            )
            if replaced < total:
                self._check_dim(conn, embedder, dim)
            upsert = self.dialect.sql(self.dialect.upsert_vector)  # once, not per vector
            for example, vector in zip(ids, matrix, strict=True):
                written += conn.execute(
                    upsert, (example, embedder, dim, f32_blob(vector), example)).rowcount
        return written

    # ------------------------------------------------------------ import
    def merge(self, people: Sequence[ImportedPerson]) -> ImportReport:
        """Add people and examples from elsewhere in one transaction: people are matched by
        name (ignoring case), examples already stored for that person (same JPEG) are
        skipped, so merging the same thing twice adds nothing."""
        added = merged = new_examples = skipped = 0
        with self._write() as conn:
            for person in people:
                name = validate_name(person.name)
                found = self._find(conn, name_key(name))
                if found is None:
                    pid = self._insert_person(conn, name, person.created)
                    added += 1
                else:
                    pid = found[0]
                    merged += 1
                for example in person.examples:
                    if example.source not in SOURCES:
                        raise GalleryError(f"unknown example source {example.source!r}")
                    digest = hashlib.sha256(example.patch.jpeg).hexdigest()
                    if self._run(conn, "SELECT 1 FROM {examples} WHERE person = ? AND digest = ?",
                                 (pid, digest)).fetchone():
                        skipped += 1
                        continue
                    eid = self._insert_example(
                        conn, pid, example.source, example.created, example.patch
                    )
                    for embedder, vector in example.embeddings.items():
                        self._insert_vector(conn, eid, embedder, vector)
                    new_examples += 1
        return ImportReport(added, merged, new_examples, skipped)
