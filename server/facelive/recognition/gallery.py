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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from facelive.recognition.gallery_reads import PersonNotFound
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
from facelive.recognition.gallery_sql import Dialect
from facelive.recognition.gallery_writes import SOURCES, GalleryWrites, PersonExists, check_patch

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


SQLITE = Dialect(
    mark="?",
    upsert_vector="""INSERT OR REPLACE INTO {embeddings} (example, embedder, dim, vector)
                     SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {examples} WHERE id = ?)""",
    tables=("embeddings", "examples", "people"),
)


class Gallery(GalleryFile, GalleryWrites):
    """The gallery file. Open with `Gallery(path)` or `Gallery.in_dir(data_dir)`; use as a
    context manager or call close(). The SQLite handling is GalleryFile's, the reads and
    changes GalleryWrites'."""

    dialect = SQLITE
    default_migrations = MIGRATIONS

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

    @staticmethod
    def _inserted(conn: sqlite3.Connection, text: str, params: Sequence[Any]) -> int:
        return inserted_id(conn.execute(text, params))

    @staticmethod
    def _insert_example(
        conn: sqlite3.Connection, person: int, source: str, created: float, patch: FacePatch
    ) -> int:
        jpeg, box, landmarks = check_patch(patch)
        return inserted_id(conn.execute(
            """INSERT INTO examples (person, source, created, crop, box, landmarks, digest)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (person, source, created, jpeg, box, landmarks, hashlib.sha256(jpeg).hexdigest()),
        ))
