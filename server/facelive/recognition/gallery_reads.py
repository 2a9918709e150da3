"""What both gallery backends (the SQLite file and PostgreSQL) answer, written once: people,
examples, crops and vectors. Each backend brings its read transaction (`_read`), its Dialect
(gallery_sql.py) and, where crops are sealed, `_open_crop`; the changes are
gallery_writes.py's."""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import numpy as np

from facelive.recognition.gallery_file import GalleryError
from facelive.recognition.gallery_records import (
    FacePatch,
    GalleryVectors,
    PersonInfo,
    StoredExample,
)
from facelive.recognition.gallery_sql import Dialect
from facelive.recognition.names import name_key


class PersonNotFound(GalleryError):
    """No person of that name (compared ignoring case)."""

    kind = "not_found"


def person_info(row: Sequence[Any]) -> PersonInfo:
    pid, name, created, examples, first = row
    return PersonInfo(int(pid), str(name), int(examples), float(created),
                      None if first is None else int(first))


def from_blob(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)


def lookup_key(raw: str) -> str:
    """The key of a name given to find someone: normalised like validate_name, unvalidated (a
    name that could never be stored just finds nobody)."""
    if not isinstance(raw, str):
        raise PersonNotFound(f"no person named {raw!r}")
    return name_key(" ".join(unicodedata.normalize("NFC", raw).split()))


class GalleryReads(ABC):
    """The reads of a gallery backend; it comes after the backend's connection class (the
    file or the database) among the bases, which supplies `_read`."""

    dialect: ClassVar[Dialect]

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A read transaction: every query in the block sees one snapshot."""

    @staticmethod
    def _open_crop(crop: bytes, key: bytes | None) -> bytes:
        """A stored crop's JPEG; `key` is its crop_key (NULL where crops are not sealed)."""
        return bytes(crop)

    def _run(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        """The cursor of one statement written in the Dialect's notation."""
        return conn.execute(self.dialect.sql(text), params)

    def _count(self, conn: Any, text: str, params: Sequence[Any] = ()) -> int:
        row = self._run(conn, text, params).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------ people
    def _find(self, conn: Any, key: str) -> tuple[int, str] | None:
        row = self._run(conn, "SELECT id, name FROM {people} WHERE key = ?", (key,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def _require(self, conn: Any, raw: str) -> tuple[int, str]:
        found = self._find(conn, lookup_key(raw))
        if found is None:
            raise PersonNotFound(f"no person named {raw!r}")
        return found

    _PEOPLE_QUERY = """SELECT p.id, p.name, p.created, COUNT(e.id), MIN(e.id)
                       FROM {people} p LEFT JOIN {examples} e ON e.person = p.id"""

    def person(self, name: str) -> PersonInfo:
        """One person by name (ignoring case); PersonNotFound if absent."""
        with self._read() as conn:
            row = self._run(conn, f"{self._PEOPLE_QUERY} WHERE p.key = ? GROUP BY p.id",
                            (lookup_key(name),)).fetchone()
        if row is None:
            raise PersonNotFound(f"no person named {name!r}")
        return person_info(row)

    def people(self) -> list[PersonInfo]:
        """Everyone, sorted by name (ignoring case)."""
        with self._read() as conn:
            rows = self._run(
                conn, f"{self._PEOPLE_QUERY} GROUP BY p.id ORDER BY p.key{{bytewise}}, p.id"
            ).fetchall()
        return [person_info(row) for row in rows]

    def _names(self, conn: Any) -> dict[int, str]:
        return {int(i): str(n) for i, n in self._run(conn, "SELECT id, name FROM {people}")}

    def names(self) -> dict[int, str]:
        """person id -> name."""
        with self._read() as conn:
            return self._names(conn)

    # ------------------------------------------------------------ examples
    def crop(self, example_id: int) -> bytes:
        """The JPEG face patch of one example (for thumbnails)."""
        with self._read() as conn:
            found = self._run(conn, "SELECT e.crop, {crop_key} FROM {crops} WHERE e.id = ?",
                              (int(example_id),)).fetchone()
        if found is None:
            raise GalleryError(f"no example {example_id}")
        return self._open_crop(found[0], found[1])

    _MISSING = """FROM {examples} e WHERE NOT EXISTS (SELECT 1 FROM {embeddings}
                  WHERE example = e.id AND embedder = ?)"""

    def examples(
        self, missing_for: str | None = None, batch: int = 64
    ) -> Iterator[StoredExample]:
        """Stored examples in id order, `batch` rows per query (bounded memory); with
        `missing_for`, only those without a vector of that embedder (to re-embed)."""
        with self._read() as conn:
            if missing_for is None:
                found = self._run(conn, "SELECT id FROM {examples} ORDER BY id")
            else:
                found = self._run(conn, f"SELECT id {self._MISSING} ORDER BY id", (missing_for,))
            ids = [int(r[0]) for r in found.fetchall()]
        for start in range(0, len(ids), batch):
            chunk, params = self.dialect.one_of("e.id", ids[start : start + batch])
            with self._read() as conn:
                rows = self._run(
                    conn,
                    "SELECT e.id, e.person, e.source, e.created, e.crop, e.box, e.landmarks, "
                    f"{{crop_key}} FROM {{crops}} WHERE {chunk} ORDER BY e.id",
                    params,
                ).fetchall()
            for eid, person, source, created, crop, box, landmarks, key in rows:
                patch = FacePatch(self._open_crop(crop, key), from_blob(bytes(box), (4,)),
                                  from_blob(bytes(landmarks), (5, 2)))
                yield StoredExample(int(eid), int(person), str(source), float(created), patch)

    def count_missing(self, embedder: str) -> int:
        """How many examples have no vector of `embedder`."""
        with self._read() as conn:
            return self._count(conn, f"SELECT COUNT(*) {self._MISSING}", (embedder,))

    # ------------------------------------------------------------ embeddings
    def _embedder_dim(self, conn: Any, embedder: str) -> int | None:
        row = self._run(conn, "SELECT dim FROM {embeddings} WHERE embedder = ? LIMIT 1",
                        (embedder,)).fetchone()
        return None if row is None else int(row[0])

    def vectors(self, embedder: str) -> GalleryVectors:
        """Every stored vector of `embedder` with its person and example (one snapshot)."""
        with self._read() as conn:
            rows = self._run(
                conn,
                """SELECT x.example, e.person, x.dim, x.vector FROM {embeddings} x
                   JOIN {examples} e ON e.id = x.example WHERE x.embedder = ?
                   ORDER BY x.example""",
                (embedder,),
            ).fetchall()
            names = self._names(conn)
        dim = int(rows[0][2]) if rows else 0
        matrix = (
            np.frombuffer(b"".join(bytes(r[3]) for r in rows), dtype="<f4")
            .astype(np.float32)
            .reshape(len(rows), dim)
        )
        labels = np.array([r[1] for r in rows], dtype=np.int64)
        example_ids = np.array([r[0] for r in rows], dtype=np.int64)
        return GalleryVectors(labels, matrix, example_ids, names)

    def embedders(self) -> dict[str, int]:
        """embedder id -> how many vectors are stored for it."""
        with self._read() as conn:
            rows = self._run(conn, "SELECT embedder, COUNT(*) FROM {embeddings} GROUP BY embedder")
            return {str(name): int(n) for name, n in rows}

    # ------------------------------------------------------------ export / import
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read snapshot (and this object's lock) for the block: every read in it
        sees the same committed state."""
        with self._read():
            yield
