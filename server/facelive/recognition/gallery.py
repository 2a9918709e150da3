"""The gallery: who is known, their example faces and those faces' embeddings, in one SQLite
file (`gallery.sqlite3` in the data dir).

Tables (schema version in `PRAGMA user_version`, upgraded by MIGRATIONS):
- people(id, name, key, created): `key` is the case-folded name (see names.name_key) and is
  unique, so "anna" and "Anna" are one person; `name` keeps the spelling first given.
- examples(id, person, source, created, crop, box, landmarks, digest): `crop` is a JPEG of the
  face with context around it (a "face patch", see patches.py), `box` (4 float32: x1, y1, x2,
  y2) and `landmarks` (5x2 float32) say where the detector put the face on that patch, so
  any embedder can re-align and re-embed it. `digest` (sha256 of the JPEG) makes imports
  idempotent.
- embeddings(example, embedder, dim, vector): one float32 little-endian vector per example and
  embedder id ("dlib-resnet", "facenet"); switching embedders re-embeds the stored patches.

Export and import (a portable, versioned zip) are archive.py's (export_gallery,
import_archive); face patches in patches.py.

The file itself (opening and checking it, migrations, transactions, what a SQLite failure
means: corrupt, full, read-only) is gallery_file.py's: every change is one transaction, so a
crash at any instant leaves the last committed state. Deleted faces are overwritten
(secure_delete) and the WAL is checkpointed, so "delete" removes them from the file for good.
Thread-safe: one connection behind a lock; several processes may share the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition.gallery_file import (
    APPLICATION_ID,
    SQLITE_MAGIC,
    GalleryCorrupt,
    GalleryError,
    GalleryFile,
    GalleryFull,
    Migration,
    inserted_id,
)
from facelive.recognition.gallery_records import (
    Added,
    FacePatch,
    GalleryVectors,
    ImportedExample,
    ImportedPerson,
    ImportReport,
    PersonInfo,
    StoredExample,
)
from facelive.recognition.gallery_writes import SOURCES, ExampleWrites
from facelive.recognition.gallery_writes import check_patch as _check_patch
from facelive.recognition.gallery_writes import check_vectors as _check_vectors
from facelive.recognition.gallery_writes import f32_blob as _f32_blob
from facelive.recognition.names import name_key, validate_name

# The file's errors and the records are the gallery's words; callers import them from here.
__all__ = [
    "APPLICATION_ID", "FILENAME", "MIGRATIONS", "SOURCES", "SQLITE_MAGIC", "Added", "FacePatch",
    "Gallery", "GalleryCorrupt", "GalleryError", "GalleryFull", "GalleryVectors",
    "ImportReport", "ImportedExample", "ImportedPerson", "PersonExists", "PersonInfo",
    "PersonNotFound", "StoredExample",
]

FILENAME = "gallery.sqlite3"


def _schema_v1(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT: ids are never reused, so a person id held by a running KNN, or an example
    # id in a cached thumbnail URL, can never come to mean someone else after a delete.
    conn.execute(
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            created REAL NOT NULL)"""
    )
    conn.execute(
        """CREATE TABLE examples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('webcam', 'upload', 'import')),
            created REAL NOT NULL,
            crop BLOB NOT NULL,
            box BLOB NOT NULL,
            landmarks BLOB NOT NULL,
            digest TEXT NOT NULL)"""
    )
    conn.execute("CREATE INDEX examples_person ON examples(person, digest)")
    conn.execute(
        """CREATE TABLE embeddings (
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            embedder TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (example, embedder)) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX embeddings_embedder ON embeddings(embedder)")


# Migration i brings a file from schema version i to i + 1, in one transaction together with
# the version bump. Append only; never edit a released migration.
MIGRATIONS: tuple[Migration, ...] = (_schema_v1,)


class PersonNotFound(GalleryError):
    """No person of that name (compared ignoring case)."""

    kind = "not_found"


class PersonExists(GalleryError):
    """Another person already has that name (compared ignoring case)."""

    kind = "conflict"


def _person_info(row: Sequence[Any]) -> PersonInfo:
    pid, name, created, examples, first = row
    return PersonInfo(int(pid), str(name), int(examples), float(created),
                      None if first is None else int(first))


def _from_blob(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)


def _lookup_key(raw: str) -> str:
    """The key of a name given to find someone: normalised like validate_name, unvalidated (a
    name that could never be stored just finds nobody)."""
    if not isinstance(raw, str):
        raise PersonNotFound(f"no person named {raw!r}")
    return name_key(" ".join(unicodedata.normalize("NFC", raw).split()))


class Gallery(ExampleWrites, GalleryFile):
    """The gallery file. Open with `Gallery(path)` or `Gallery.in_dir(data_dir)`; use as a
    context manager or call close(). The SQLite handling is GalleryFile's."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        create: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        super().__init__(path, read_only=read_only, create=create, migrations=migrations)

    @classmethod
    def in_dir(cls, data_dir: str | Path, **kwargs: Any) -> Gallery:
        """The gallery of a data dir (created with the dir unless read_only/create=False)."""
        data_dir = Path(data_dir)
        if not kwargs.get("read_only") and kwargs.get("create", True):
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GalleryError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
        return cls(data_dir / FILENAME, **kwargs)

    # ------------------------------------------------------------ people
    @staticmethod
    def _find(conn: sqlite3.Connection, key: str) -> tuple[int, str] | None:
        row = conn.execute("SELECT id, name FROM people WHERE key = ?", (key,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def _require(self, conn: sqlite3.Connection, raw: str) -> tuple[int, str]:
        found = self._find(conn, _lookup_key(raw))
        if found is None:
            raise PersonNotFound(f"no person named {raw!r}")
        return found

    @staticmethod
    def _insert_person(conn: sqlite3.Connection, name: str, created: float) -> int:
        cursor = conn.execute(
            "INSERT INTO people (name, key, created) VALUES (?, ?, ?)",
            (name, name_key(name), created),
        )
        return inserted_id(cursor)

    def add_person(self, name: str) -> int:
        """The id of the person called `name` (ignoring case), created if new."""
        name = validate_name(name)
        with self._write() as conn:
            found = self._find(conn, name_key(name))
            return found[0] if found else self._insert_person(conn, name, time.time())

    _PEOPLE_QUERY = """SELECT p.id, p.name, p.created, COUNT(e.id), MIN(e.id)
                       FROM people p LEFT JOIN examples e ON e.person = p.id"""

    def person(self, name: str) -> PersonInfo:
        """One person by name (ignoring case); PersonNotFound if absent."""
        with self._read() as conn:
            row = conn.execute(f"{self._PEOPLE_QUERY} WHERE p.key = ? GROUP BY p.id",
                               (_lookup_key(name),)).fetchone()
        if row is None:
            raise PersonNotFound(f"no person named {name!r}")
        return _person_info(row)

    def people(self) -> list[PersonInfo]:
        """Everyone, sorted by name (ignoring case)."""
        with self._read() as conn:
            rows = conn.execute(
                f"{self._PEOPLE_QUERY} GROUP BY p.id ORDER BY p.key, p.id"
            ).fetchall()
        return [_person_info(row) for row in rows]

    def names(self) -> dict[int, str]:
        """person id -> name."""
        with self._read() as conn:
            return {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM people")}

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
            conn.execute(
                "UPDATE people SET name = ?, key = ? WHERE id = ?", (new, name_key(new), person)
            )
        return new

    def delete(self, name: str) -> int:
        """Delete a person with all their examples and embeddings; returns how many examples
        went. PersonNotFound (nothing changes) when there is no such person."""
        with self._write() as conn:
            person, _ = self._require(conn, name)
            count = conn.execute(
                "SELECT COUNT(*) FROM examples WHERE person = ?", (person,)
            ).fetchone()[0]
            conn.execute("DELETE FROM people WHERE id = ?", (person,))
        self._purge()
        return int(count)

    def clear(self) -> int:
        """Delete everyone; returns how many people went."""
        with self._write() as conn:
            count = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
            conn.execute("DELETE FROM embeddings")
            conn.execute("DELETE FROM examples")
            conn.execute("DELETE FROM people")
        self._purge()
        return int(count)

    # ------------------------------------------------------------ examples
    @staticmethod
    def _embedder_dim(conn: sqlite3.Connection, embedder: str) -> int | None:
        row = conn.execute(
            "SELECT dim FROM embeddings WHERE embedder = ? LIMIT 1", (embedder,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _check_dim(self, conn: sqlite3.Connection, embedder: str, dim: int) -> None:
        stored = self._embedder_dim(conn, embedder)
        if stored is not None and stored != dim:
            raise GalleryError(
                f"{embedder} vectors in this gallery are {stored}-D, these are {dim}-D"
            )

    def _insert_vector(
        self, conn: sqlite3.Connection, example: int, embedder: str, vector: np.ndarray
    ) -> None:
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise GalleryError(f"bad {embedder} vector (empty, NaN or infinite)")
        self._check_dim(conn, embedder, vector.size)
        conn.execute(
            "INSERT INTO embeddings (example, embedder, dim, vector) VALUES (?, ?, ?, ?)",
            (example, embedder, vector.size, _f32_blob(vector)),
        )

    @staticmethod
    def _insert_example(
        conn: sqlite3.Connection, person: int, source: str, created: float, patch: FacePatch
    ) -> int:
        jpeg, box, landmarks = _check_patch(patch)
        cursor = conn.execute(
            """INSERT INTO examples (person, source, created, crop, box, landmarks, digest)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (person, source, created, jpeg, box, landmarks, hashlib.sha256(jpeg).hexdigest()),
        )
        return inserted_id(cursor)

    def remove_examples(self, example_ids: Iterable[int]) -> int:
        """Delete single examples (a bad photo); the person stays, even with none left."""
        ids = [int(i) for i in example_ids]
        with self._write() as conn:
            removed = sum(
                conn.execute("DELETE FROM examples WHERE id = ?", (i,)).rowcount for i in ids
            )
        self._purge()
        return removed

    def crop(self, example_id: int) -> bytes:
        """The JPEG face patch of one example (for thumbnails)."""
        with self._read() as conn:
            row = conn.execute("SELECT crop FROM examples WHERE id = ?", (int(example_id),))
            found = row.fetchone()
        if found is None:
            raise GalleryError(f"no example {example_id}")
        return bytes(found[0])

    def examples(
        self, missing_for: str | None = None, batch: int = 64
    ) -> Iterator[StoredExample]:
        """Stored examples in id order, `batch` rows per query (bounded memory); with
        `missing_for`, only those without a vector of that embedder (to re-embed)."""
        with self._read() as conn:
            if missing_for is None:
                found = conn.execute("SELECT id FROM examples ORDER BY id")
            else:
                found = conn.execute(
                    """SELECT id FROM examples e WHERE NOT EXISTS (SELECT 1 FROM embeddings
                       WHERE example = e.id AND embedder = ?) ORDER BY id""",
                    (missing_for,),
                )
            ids = [int(r[0]) for r in found]
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            marks = ",".join("?" * len(chunk))
            with self._read() as conn:
                rows = conn.execute(
                    "SELECT id, person, source, created, crop, box, landmarks FROM examples "
                    f"WHERE id IN ({marks}) ORDER BY id",
                    chunk,
                ).fetchall()
            for eid, person, source, created, crop, box, landmarks in rows:
                patch = FacePatch(bytes(crop), _from_blob(box, (4,)), _from_blob(landmarks, (5, 2)))
                yield StoredExample(int(eid), int(person), str(source), float(created), patch)

    def count_missing(self, embedder: str) -> int:
        """How many examples have no vector of `embedder`."""
        with self._read() as conn:
            row = conn.execute(
                """SELECT COUNT(*) FROM examples e WHERE NOT EXISTS (SELECT 1 FROM embeddings
                   WHERE example = e.id AND embedder = ?)""",
                (embedder,),
            ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------ embeddings
    def vectors(self, embedder: str) -> GalleryVectors:
        """Every stored vector of `embedder` with its person and example (one snapshot)."""
        with self._read() as conn:
            rows = conn.execute(
                """SELECT x.example, e.person, x.dim, x.vector FROM embeddings x
                   JOIN examples e ON e.id = x.example WHERE x.embedder = ? ORDER BY x.example""",
                (embedder,),
            ).fetchall()
            names = {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM people")}
        dim = int(rows[0][2]) if rows else 0
        matrix = (
            np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4")
            .astype(np.float32)
            .reshape(len(rows), dim)
        )
        labels = np.array([r[1] for r in rows], dtype=np.int64)
        example_ids = np.array([r[0] for r in rows], dtype=np.int64)
        return GalleryVectors(labels, matrix, example_ids, names)

    def set_embeddings(self, embedder: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Store (or replace) `embedder`'s vector of each example id, in one transaction.
        Ids of examples deleted meanwhile are skipped; returns how many were written."""
        if not vectors:
            return 0
        ids = [int(i) for i in vectors]
        matrix = _check_vectors([vectors[i] for i in vectors], len(ids))
        dim = matrix.shape[1]
        written = 0
        with self._write() as conn:
            # Replacing all of an embedder's vectors may change their size (a new model).
            total = conn.execute(
                "SELECT COUNT(*) FROM embeddings WHERE embedder = ?", (embedder,)
            ).fetchone()[0]
            marks = ",".join("?" * len(ids))
            replaced = conn.execute(
                f"SELECT COUNT(*) FROM embeddings WHERE embedder = ? AND example IN ({marks})",
                (embedder, *ids),
            ).fetchone()[0]
            if replaced < total:
                self._check_dim(conn, embedder, dim)
            for example, vector in zip(ids, matrix, strict=True):
                cursor = conn.execute(
                    """INSERT OR REPLACE INTO embeddings (example, embedder, dim, vector)
                       SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM examples WHERE id = ?)""",
                    (example, embedder, dim, _f32_blob(vector), example),
                )
                written += cursor.rowcount
        return written

    def embedders(self) -> dict[str, int]:
        """embedder id -> how many vectors are stored for it."""
        with self._read() as conn:
            rows = conn.execute("SELECT embedder, COUNT(*) FROM embeddings GROUP BY embedder")
            return {str(name): int(n) for name, n in rows}

    # ------------------------------------------------------------ export / import
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read snapshot (and this object's lock) for the block: every read in it
        sees the same committed state."""
        with self._read():
            yield

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
                    if conn.execute(
                        "SELECT 1 FROM examples WHERE person = ? AND digest = ?", (pid, digest)
                    ).fetchone():
                        skipped += 1
                        continue
                    eid = self._insert_example(
                        conn, pid, example.source, example.created, example.patch
                    )
                    for embedder, vector in example.embeddings.items():
                        self._insert_vector(conn, eid, embedder, vector)
                    new_examples += 1
        return ImportReport(added, merged, new_examples, skipped)
