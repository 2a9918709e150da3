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
from collections.abc import Sequence
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facelive.recognition.gallery_file import GalleryCorrupt
from facelive.recognition.gallery_pg_db import SCHEMA, GalleryDatabase, PgMigration
from facelive.recognition.gallery_records import FacePatch
from facelive.recognition.gallery_sql import Dialect
from facelive.recognition.gallery_writes import GalleryWrites, check_patch

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

POSTGRESQL = Dialect(
    mark="%s",
    upsert_vector="""INSERT INTO {embeddings} (example, embedder, dim, vector)
                     SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {examples} WHERE id = ?)
                     ON CONFLICT (example, embedder)
                     DO UPDATE SET dim = EXCLUDED.dim, vector = EXCLUDED.vector""",
    tables=("embeddings", "crop_keys", "examples", "people"),
    schema=f"{SCHEMA}.",
    arrays=True,
    bytewise=' COLLATE "C"',
    crops="{examples} e JOIN {crop_keys} k ON k.example = e.id",
    crop_key="k.key",
)
E, K = f"{SCHEMA}.examples", f"{SCHEMA}.crop_keys"
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


class PgGallery(GalleryDatabase, GalleryWrites):
    """The gallery in a PostgreSQL database; the same methods as gallery.Gallery (both are
    GalleryWrites'). Open with `PgGallery(url)`; use as a context manager or call close()."""

    dialect = POSTGRESQL
    default_migrations = PG_MIGRATIONS

    @staticmethod
    def _inserted(conn: Conn, text: str, params: Sequence[Any]) -> int:
        row = conn.execute(f"{text} RETURNING id", params).fetchone()
        assert row is not None
        return int(row[0])

    @staticmethod
    def _insert_example(
        conn: Conn, person: int, source: str, created: float, patch: FacePatch
    ) -> int:
        jpeg, box, landmarks = check_patch(patch)
        key = os.urandom(32)
        example = PgGallery._inserted(
            conn,
            f"""INSERT INTO {E} (person, source, created, crop, box, landmarks, digest)
                VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (person, source, created, seal(key, jpeg), box, landmarks,
             hashlib.sha256(jpeg).hexdigest()),
        )
        conn.execute(f"INSERT INTO {K} (example, key) VALUES (%s, %s)", (example, key))
        return example

    @staticmethod
    def _open_crop(crop: bytes, key: bytes | None) -> bytes:
        assert key is not None  # POSTGRESQL.crops joins every crop to its key
        return unseal(bytes(key), bytes(crop))
