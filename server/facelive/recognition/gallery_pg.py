"""The gallery in PostgreSQL (FACELIVE_DATABASE_URL=postgresql://...), for several workers
sharing one gallery. Same tables, records, rules and errors as the SQLite gallery
(gallery.py), in the `facelive` schema:

- people(id, name, key, created): `key` is the case-folded name, UNIQUE.
- examples(id, person, source, created, crop, box, landmarks, digest): crop is the JPEG face
  patch sealed (AES-GCM) with the example's own key, box/landmarks float32 bytes, digest the
  JPEG's sha256 (idempotent imports).
- crop_keys(example, key): 32 random bytes per example, deleted with it.
- embeddings(example, embedder, dim, vector): float32 little-endian bytes.

Ids come from identity columns, which never hand out a number twice (so a person id held by a
running KNN can never come to mean someone else).

Secure deletion without rewriting the big table: PostgreSQL's DELETE and VACUUM leave a row's
bytes in the table's pages until they are reused, and rewriting the examples table (VACUUM
FULL) on every delete would lock it for seconds at tens of thousands of faces. So each
patch is sealed with a key of its own (crypto-shredding): a delete removes the person (or one
example) with their examples, keys and embeddings in one transaction, then rewrites only the
small tables of keys and names, whose old files take the keys with them
(GalleryDatabase._purge). What may linger in the examples
table's free space is ciphertext nobody can open. The key sits beside the data on purpose: it
is there to be destroyed, not to protect a stolen database (that is the disk's encryption's
job).

The connection, migrations, transactions and notices are gallery_pg_db.py's.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facelive.recognition.gallery import (
    SOURCES,
    PersonExists,
    PersonNotFound,
    _check_patch,
    _check_vectors,
    _f32_blob,
    _from_blob,
    _lookup_key,
    _person_info,
)
from facelive.recognition.gallery_file import GalleryCorrupt, GalleryError
from facelive.recognition.gallery_pg_db import SCHEMA, GalleryDatabase, PgMigration
from facelive.recognition.gallery_records import (
    FacePatch,
    GalleryVectors,
    ImportedPerson,
    ImportReport,
    PersonInfo,
    StoredExample,
)
from facelive.recognition.gallery_writes import ExampleWrites
from facelive.recognition.names import name_key, validate_name

Conn = psycopg.Connection[Any]


def _pg_schema_v1(conn: Conn) -> None:
    conn.execute(
        f"""CREATE TABLE {SCHEMA}.people (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            created DOUBLE PRECISION NOT NULL)"""
    )
    conn.execute(
        f"""CREATE TABLE {SCHEMA}.examples (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            person BIGINT NOT NULL REFERENCES {SCHEMA}.people(id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('webcam', 'upload', 'import')),
            created DOUBLE PRECISION NOT NULL,
            crop BYTEA NOT NULL,  -- nonce + AES-GCM(its key, JPEG): no use compressing it
            box BYTEA NOT NULL,
            landmarks BYTEA NOT NULL,
            digest TEXT NOT NULL)"""
    )
    # Sealed JPEGs do not compress: TOAST them without trying to.
    conn.execute(f"ALTER TABLE {SCHEMA}.examples ALTER crop SET STORAGE EXTERNAL")
    conn.execute(f"CREATE INDEX examples_person ON {SCHEMA}.examples(person, digest)")
    conn.execute(
        f"""CREATE TABLE {SCHEMA}.crop_keys (
            example BIGINT PRIMARY KEY REFERENCES {SCHEMA}.examples(id) ON DELETE CASCADE,
            key BYTEA NOT NULL CHECK (octet_length(key) = 32))"""
    )
    conn.execute(
        f"""CREATE TABLE {SCHEMA}.embeddings (
            example BIGINT NOT NULL REFERENCES {SCHEMA}.examples(id) ON DELETE CASCADE,
            embedder TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BYTEA NOT NULL,
            PRIMARY KEY (example, embedder))"""
    )
    conn.execute(f"CREATE INDEX embeddings_embedder ON {SCHEMA}.embeddings(embedder)")


# Migration i brings a database from schema version i to i + 1. Append only.
PG_MIGRATIONS: tuple[PgMigration, ...] = (_pg_schema_v1,)

P, E, X = f"{SCHEMA}.people", f"{SCHEMA}.examples", f"{SCHEMA}.embeddings"
K = f"{SCHEMA}.crop_keys"
_SEAL_CONTEXT = b"facelive crop v1"  # AES-GCM associated data: what the bytes are


def seal(key: bytes, jpeg: bytes) -> bytes:
    """nonce (12 bytes) + AES-GCM ciphertext and tag of a face patch."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, jpeg, _SEAL_CONTEXT)


def unseal(key: bytes, sealed: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], _SEAL_CONTEXT)
    except InvalidTag:
        raise GalleryCorrupt("a stored face patch fails its integrity check") from None


class PgGallery(ExampleWrites, GalleryDatabase):
    """The gallery in a PostgreSQL database; the same methods as gallery.Gallery. Open with
    `PgGallery(url)`; use as a context manager or call close()."""

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        create: bool = True,
        migrations: Sequence[PgMigration] = PG_MIGRATIONS,
    ) -> None:
        super().__init__(url, read_only=read_only, create=create, migrations=migrations)

    # ------------------------------------------------------------ people
    @staticmethod
    def _find(conn: Conn, key: str) -> tuple[int, str] | None:
        row = conn.execute(f"SELECT id, name FROM {P} WHERE key = %s", (key,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def _require(self, conn: Conn, raw: str) -> tuple[int, str]:
        found = self._find(conn, _lookup_key(raw))
        if found is None:
            raise PersonNotFound(f"no person named {raw!r}")
        return found

    @staticmethod
    def _insert_person(conn: Conn, name: str, created: float) -> int:
        row = conn.execute(
            f"INSERT INTO {P} (name, key, created) VALUES (%s, %s, %s) RETURNING id",
            (name, name_key(name), created),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def add_person(self, name: str) -> int:
        """The id of the person called `name` (ignoring case), created if new."""
        name = validate_name(name)
        with self._write() as conn:
            found = self._find(conn, name_key(name))
            return found[0] if found else self._insert_person(conn, name, time.time())

    _PEOPLE_QUERY = f"""SELECT p.id, p.name, p.created, COUNT(e.id), MIN(e.id)
                        FROM {P} p LEFT JOIN {E} e ON e.person = p.id"""

    def person(self, name: str) -> PersonInfo:
        """One person by name (ignoring case); PersonNotFound if absent."""
        with self._read() as conn:
            row = conn.execute(f"{self._PEOPLE_QUERY} WHERE p.key = %s GROUP BY p.id",
                               (_lookup_key(name),)).fetchone()
        if row is None:
            raise PersonNotFound(f"no person named {name!r}")
        return _person_info(row)

    def people(self) -> list[PersonInfo]:
        """Everyone, sorted by name (ignoring case); the same order as SQLite's (bytewise)."""
        with self._read() as conn:
            rows = conn.execute(
                f'{self._PEOPLE_QUERY} GROUP BY p.id ORDER BY p.key COLLATE "C", p.id'
            ).fetchall()
        return [_person_info(row) for row in rows]

    def names(self) -> dict[int, str]:
        """person id -> name."""
        with self._read() as conn:
            return {int(i): str(n) for i, n in conn.execute(f"SELECT id, name FROM {P}")}

    def rename(self, old: str, new: str) -> str:
        """Rename a person; returns the stored new name. Refused (nothing changes) when `old`
        is nobody or `new` is someone else's name in any case."""
        new = validate_name(new)
        with self._write() as conn:
            person, _ = self._require(conn, old)
            other = self._find(conn, name_key(new))
            if other is not None and other[0] != person:
                raise PersonExists(f"there is already a person named {other[1]!r}")
            conn.execute(f"UPDATE {P} SET name = %s, key = %s WHERE id = %s",
                         (new, name_key(new), person))
        return new

    def delete(self, name: str) -> int:
        """Delete a person with all their examples and embeddings; returns how many examples
        went. PersonNotFound (nothing changes) when there is no such person."""
        with self._write() as conn:
            person, _ = self._require(conn, name)
            row = conn.execute(f"SELECT COUNT(*) FROM {E} WHERE person = %s",
                               (person,)).fetchone()
            conn.execute(f"DELETE FROM {P} WHERE id = %s", (person,))
        self._purge()
        return int(row[0]) if row else 0

    def clear(self) -> int:
        """Delete everyone; returns how many people went."""
        with self._write() as conn:
            row = conn.execute(f"SELECT COUNT(*) FROM {P}").fetchone()
            conn.execute(f"DELETE FROM {X}")
            conn.execute(f"DELETE FROM {K}")
            conn.execute(f"DELETE FROM {E}")
            conn.execute(f"DELETE FROM {P}")
        self._purge()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------ examples
    @staticmethod
    def _embedder_dim(conn: Conn, embedder: str) -> int | None:
        row = conn.execute(f"SELECT dim FROM {X} WHERE embedder = %s LIMIT 1",
                           (embedder,)).fetchone()
        return None if row is None else int(row[0])

    def _check_dim(self, conn: Conn, embedder: str, dim: int) -> None:
        stored = self._embedder_dim(conn, embedder)
        if stored is not None and stored != dim:
            raise GalleryError(
                f"{embedder} vectors in this gallery are {stored}-D, these are {dim}-D"
            )

    def _insert_vector(self, conn: Conn, example: int, embedder: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise GalleryError(f"bad {embedder} vector (empty, NaN or infinite)")
        self._check_dim(conn, embedder, vector.size)
        conn.execute(
            f"INSERT INTO {X} (example, embedder, dim, vector) VALUES (%s, %s, %s, %s)",
            (example, embedder, vector.size, _f32_blob(vector)),
        )

    @staticmethod
    def _insert_example(
        conn: Conn, person: int, source: str, created: float, patch: FacePatch
    ) -> int:
        jpeg, box, landmarks = _check_patch(patch)
        key = os.urandom(32)
        row = conn.execute(
            f"""INSERT INTO {E} (person, source, created, crop, box, landmarks, digest)
                VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (person, source, created, seal(key, jpeg), box, landmarks,
             hashlib.sha256(jpeg).hexdigest()),
        ).fetchone()
        assert row is not None
        conn.execute(f"INSERT INTO {K} (example, key) VALUES (%s, %s)", (row[0], key))
        return int(row[0])

    def remove_examples(self, example_ids: Iterable[int]) -> int:
        """Delete single examples (a bad photo); the person stays, even with none left."""
        ids = [int(i) for i in example_ids]
        with self._write() as conn:
            removed = sum(
                conn.execute(f"DELETE FROM {E} WHERE id = %s", (i,)).rowcount for i in ids
            )
        self._purge()
        return removed

    def crop(self, example_id: int) -> bytes:
        """The JPEG face patch of one example (for thumbnails)."""
        with self._read() as conn:
            found = conn.execute(
                f"SELECT e.crop, k.key FROM {E} e JOIN {K} k ON k.example = e.id "
                "WHERE e.id = %s", (int(example_id),)).fetchone()
        if found is None:
            raise GalleryError(f"no example {example_id}")
        return unseal(bytes(found[1]), bytes(found[0]))

    def examples(
        self, missing_for: str | None = None, batch: int = 64
    ) -> Iterator[StoredExample]:
        """Stored examples in id order, `batch` rows per query (bounded memory); with
        `missing_for`, only those without a vector of that embedder (to re-embed)."""
        with self._read() as conn:
            if missing_for is None:
                rows = conn.execute(f"SELECT id FROM {E} ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    f"""SELECT id FROM {E} e WHERE NOT EXISTS (SELECT 1 FROM {X}
                        WHERE example = e.id AND embedder = %s) ORDER BY id""",
                    (missing_for,),
                ).fetchall()
            ids = [int(r[0]) for r in rows]
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            with self._read() as conn:
                found = conn.execute(
                    "SELECT e.id, e.person, e.source, e.created, e.crop, e.box, e.landmarks, "
                    f"k.key FROM {E} e JOIN {K} k ON k.example = e.id "
                    "WHERE e.id = ANY(%s) ORDER BY e.id",
                    (chunk,),
                ).fetchall()
            for eid, person, source, created, crop, box, landmarks, key in found:
                patch = FacePatch(unseal(bytes(key), bytes(crop)), _from_blob(bytes(box), (4,)),
                                  _from_blob(bytes(landmarks), (5, 2)))
                yield StoredExample(int(eid), int(person), str(source), float(created), patch)

    def count_missing(self, embedder: str) -> int:
        """How many examples have no vector of `embedder`."""
        with self._read() as conn:
            row = conn.execute(
                f"""SELECT COUNT(*) FROM {E} e WHERE NOT EXISTS (SELECT 1 FROM {X}
                    WHERE example = e.id AND embedder = %s)""",
                (embedder,),
            ).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------ embeddings
    def vectors(self, embedder: str) -> GalleryVectors:
        """Every stored vector of `embedder` with its person and example (one snapshot)."""
        with self._read() as conn:
            rows = conn.execute(
                f"""SELECT x.example, e.person, x.dim, x.vector FROM {X} x
                    JOIN {E} e ON e.id = x.example WHERE x.embedder = %s ORDER BY x.example""",
                (embedder,),
            ).fetchall()
            names = {int(i): str(n) for i, n in conn.execute(f"SELECT id, name FROM {P}")}
        dim = int(rows[0][2]) if rows else 0
        matrix = (
            np.frombuffer(b"".join(bytes(r[3]) for r in rows), dtype="<f4")
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
            total = conn.execute(f"SELECT COUNT(*) FROM {X} WHERE embedder = %s",
                                 (embedder,)).fetchone()
            replaced = conn.execute(
                f"SELECT COUNT(*) FROM {X} WHERE embedder = %s AND example = ANY(%s)",
                (embedder, ids),
            ).fetchone()
            if replaced is not None and total is not None and replaced[0] < total[0]:
                self._check_dim(conn, embedder, dim)
            for example, vector in zip(ids, matrix, strict=True):
                cursor = conn.execute(
                    f"""INSERT INTO {X} (example, embedder, dim, vector)
                        SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM {E} WHERE id = %s)
                        ON CONFLICT (example, embedder)
                        DO UPDATE SET dim = EXCLUDED.dim, vector = EXCLUDED.vector""",
                    (example, embedder, dim, _f32_blob(vector), example),
                )
                written += cursor.rowcount
        return written

    def embedders(self) -> dict[str, int]:
        """embedder id -> how many vectors are stored for it."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT embedder, COUNT(*) FROM {X} GROUP BY embedder")
            return {str(name): int(n) for name, n in rows}

    # ------------------------------------------------------------ export / import
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read snapshot (and this object's lock) for the block."""
        with self._read():
            yield

    def merge(self, people: Sequence[ImportedPerson]) -> ImportReport:
        """Add people and examples from elsewhere in one transaction (see Gallery.merge)."""
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
                    if conn.execute(f"SELECT 1 FROM {E} WHERE person = %s AND digest = %s",
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
