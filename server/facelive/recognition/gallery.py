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

Export and import (a portable, versioned zip) are in archive.py; face patches in patches.py.

Every change is one transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
synchronous=FULL: a crash at any instant, or kill -9, leaves the last committed state, and a
committed change survives a power cut. Deleted faces are overwritten (secure_delete) and the
WAL is checkpointed, so "delete" removes them from the file for good. An existing file is
never recreated or overwritten: a file that is not a FaceLive gallery, is corrupt, read-only
or from a newer version is refused with a message that says which. A change that finds no room
(a full disk, the file size limit) raises GalleryFull and leaves the last committed state.

Thread-safe: one connection behind a lock. Several processes may share the file (SQLite
locking); `changed_elsewhere()` tells a long-lived reader when another one committed.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition.names import name_key, validate_name

FILENAME = "gallery.sqlite3"
SOURCES = ("webcam", "upload", "import")
# "FLVG" in the file header: tells our files from any other SQLite database.
APPLICATION_ID = 0x464C5647
SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite result codes (the primary code is the low byte of sqlite_errorcode).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26
# The extended SQLITE_IOERR codes of a failed write, not a failed read: IOERR_WRITE, _FSYNC,
# _DIR_FSYNC, _TRUNCATE, _SHMSIZE.
_IOERR_WRITES = {_SQLITE_IOERR | n << 8 for n in (3, 4, 5, 6, 19)}
# A failed write is put down to a full disk below this much free space, and to the file size
# limit when a file is this close to it.
_LOW_SPACE_BYTES = 16 << 20


Migration = Callable[[sqlite3.Connection], None]


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


class GalleryError(RuntimeError):
    """The gallery cannot do what was asked; the message says why in one line."""


class GalleryCorrupt(GalleryError):
    """The file is damaged or is not a FaceLive gallery."""


class GalleryFull(GalleryError):
    """No room to save a change (the disk is full, or the file hit its size limit); the
    change was not saved and the committed data is intact."""


class PersonNotFound(GalleryError):
    """No person of that name (compared ignoring case)."""


class PersonExists(GalleryError):
    """Another person already has that name (compared ignoring case)."""


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


def _person_info(row: Sequence[Any]) -> PersonInfo:
    pid, name, created, examples, first = row
    return PersonInfo(int(pid), str(name), int(examples), float(created),
                      None if first is None else int(first))


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


def _f32_blob(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _from_blob(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)


def _lookup_key(raw: str) -> str:
    """The key of a name given to find someone: normalised like validate_name, unvalidated (a
    name that could never be stored just finds nobody)."""
    if not isinstance(raw, str):
        raise PersonNotFound(f"no person named {raw!r}")
    return name_key(" ".join(unicodedata.normalize("NFC", raw).split()))


def _check_vectors(vectors: Any, count: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] == 0:
        raise GalleryError(f"expected ({count}, D) vectors, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise GalleryError("vectors contain NaN or infinity")
    return matrix


def _check_patch(patch: FacePatch) -> tuple[bytes, bytes, bytes]:
    box = np.asarray(patch.box, np.float32)
    landmarks = np.asarray(patch.landmarks, np.float32)
    if box.shape != (4,) or landmarks.shape != (5, 2):
        raise GalleryError(
            f"a face patch needs a (4,) box and (5, 2) landmarks, got {box.shape} and "
            f"{landmarks.shape}"
        )
    if not patch.jpeg.startswith(b"\xff\xd8"):
        raise GalleryError("a face patch must be JPEG bytes")
    return bytes(patch.jpeg), _f32_blob(box), _f32_blob(landmarks)


class Gallery:
    """The gallery file. Open with `Gallery(path)` or `Gallery.in_dir(data_dir)`; use as a
    context manager or call close()."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        create: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._migrations = tuple(migrations)
        self._lock = threading.RLock()
        self._conn = self._connect(create)
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise
        self._data_version = self._pragma("data_version")

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

    # ------------------------------------------------------------ opening
    def _connect(self, create: bool) -> sqlite3.Connection:
        path = self.path
        if path.exists():
            if not path.is_file():
                raise GalleryError(f"{path}: not a file")
            try:
                with open(path, "rb") as handle:
                    header = handle.read(len(SQLITE_MAGIC))
            except OSError as exc:
                raise GalleryError(f"{path}: cannot read ({exc.strerror})") from None
            # An empty file is an empty database (e.g. a crash right after creating it).
            if header and header != SQLITE_MAGIC:
                raise GalleryCorrupt(
                    f"{path} is not a FaceLive gallery (not a SQLite database); move it away "
                    "to start a new gallery"
                )
            if not self.read_only and not (
                os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
            ):
                raise GalleryError(
                    f"{path} is read-only (the file and its folder must be writable); fix the "
                    "permissions or open it read-only"
                )
        elif self.read_only or not create:
            raise GalleryError(f"no gallery at {path}")
        mode = "ro" if self.read_only else "rwc"
        uri = f"{path.resolve().as_uri()}?mode={mode}"
        if self.read_only and path.exists() and self._frozen(path):
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise GalleryError(f"cannot open {path}: {exc}") from None
        return conn

    @staticmethod
    def _frozen(path: Path) -> bool:
        """A gallery on read-only storage (a backup, a read-only mount): SQLite cannot create
        the WAL index (-shm) beside a WAL file in a folder it may not write, so it refuses to
        read it. With no -wal file every committed change is in the file itself, which is then
        read as immutable. With a -wal file, reading without it would hide committed changes:
        SQLite's own error stands."""
        if os.access(path.parent, os.W_OK):
            return False
        wal = path.with_name(path.name + "-wal")
        try:
            return wal.stat().st_size == 0
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _prepare(self) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            # Freed pages are zeroed, so deleted faces do not linger in the file.
            conn.execute("PRAGMA secure_delete = ON")
            version = self._pragma("user_version")
            app_id = self._pragma("application_id")
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from None
        latest = len(self._migrations)
        if version == 0 and tables:
            raise GalleryCorrupt(
                f"{self.path} is a SQLite database but not a FaceLive gallery (it has tables "
                f"{', '.join(sorted(tables)[:5])}); move it away to start a new gallery"
            )
        if version > 0 and app_id != APPLICATION_ID:
            raise GalleryCorrupt(f"{self.path} is a SQLite database but not a FaceLive gallery")
        if version > latest:
            raise GalleryError(
                f"{self.path} has gallery schema {version}, made by a newer FaceLive; this one "
                f"reads up to schema {latest}"
            )
        if not self.read_only:
            # Only now that the file is known to be ours: switching to WAL writes its header.
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                # FULL: a commit is on disk when COMMIT returns (WAL's default NORMAL may lose
                # the last commits on power loss; our writes are rare, the fsync is cheap).
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None
            if mode.lower() != "wal":
                raise GalleryError(f"{self.path}: cannot switch to WAL mode (got {mode})")
        if version < latest:
            if self.read_only:
                raise GalleryError(
                    f"{self.path} has gallery schema {version} and needs an upgrade to "
                    f"{latest}; open it writable once"
                )
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, len(self._migrations) + 1):
            with self._write() as conn:
                self._migrations[target - 1](conn)
                # Both live in the file header, which is written in the same transaction.
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {target}")

    def _pragma(self, name: str) -> int:
        return int(self._conn.execute(f"PRAGMA {name}").fetchone()[0])

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._pragma("user_version")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions
    def _translate(self, exc: sqlite3.Error) -> GalleryError:
        text = str(exc)
        code = getattr(exc, "sqlite_errorcode", None) or 0
        primary = code & 0xFF
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or any(
            word in text for word in ("malformed", "not a database", "corrupt")
        ):
            return GalleryCorrupt(f"{self.path} is corrupt ({text}); restore it from a backup")
        if primary == _SQLITE_FULL or "disk is full" in text:
            return GalleryFull(
                f"{self.path}: the disk is full, the change was not saved; free some space "
                "and try again"
            )
        if primary == _SQLITE_IOERR:
            return self._io_error(code, text)
        if self.read_only and primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN) and not (
            self._frozen(self.path) or os.access(self.path.parent, os.W_OK)
        ):
            return GalleryError(
                f"{self.path} cannot be read here: its folder is read-only and it has changes "
                f"not yet merged from {self.path.name}-wal; open it once with a writable folder"
            )
        if primary == _SQLITE_READONLY or "readonly" in text or "read-only" in text:
            return GalleryError(f"{self.path} is read-only ({text})")
        if "locked" in text or "busy" in text:
            return GalleryError(f"{self.path} is busy (another process holds it): {text}")
        return GalleryError(f"{self.path}: {text}")

    def _io_error(self, code: int, text: str) -> GalleryError:
        """A failed read or write. SQLite says only "disk I/O error"; a write that failed for
        want of room (the file size limit gives EFBIG, which SQLite does not tell from a bad
        disk; some filesystems report ENOSPC only at fsync) is worth naming as such."""
        if code not in _IOERR_WRITES:
            return GalleryError(f"{self.path}: cannot access it ({text}); check the disk")
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            sizes = []
            for suffix in ("", "-wal", "-shm"):
                try:
                    sizes.append(os.stat(f"{self.path}{suffix}").st_size)
                except OSError:
                    pass
            # A write stopped by the limit leaves a file close to it (checkpoints and WAL
            # frames grow the files a few pages at a time).
            if sizes and max(sizes) > limit - _LOW_SPACE_BYTES:
                return GalleryFull(
                    f"{self.path}: the file cannot grow past this process's file size limit "
                    f"({limit} bytes, `ulimit -f`), the change was not saved"
                )
        try:
            stats = os.statvfs(self.path.parent)
            free = stats.f_bavail * stats.f_frsize
        except OSError:
            free = None
        if free is not None and free < _LOW_SPACE_BYTES:
            return GalleryFull(
                f"{self.path}: the disk is full ({free} bytes free), the change was not "
                "saved; free some space and try again"
            )
        return GalleryError(
            f"{self.path}: cannot write it ({text}), the change was not saved; check the disk"
        )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of the block's changes, or none of them."""
        if self.read_only:
            raise GalleryError(f"{self.path} is open read-only")
        with self._lock:
            conn = self._conn
            try:
                # IMMEDIATE takes the write lock up front, so two writers queue instead of one
                # failing half-way.
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        # SQLite may have rolled back already (a failed COMMIT after an I/O
                        # error); the first error is the one to report.
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from None
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees one snapshot."""
        with self._lock:
            conn = self._conn
            if conn.in_transaction:  # inside snapshot(): that transaction is ours
                yield conn
                return
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None

    def _purge(self) -> None:
        """After a delete: copy the WAL (which may still hold the deleted faces' pages) into
        the file and truncate it. Best effort: a concurrent reader can postpone it."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass

    def changed_elsewhere(self) -> bool:
        """True once after another connection (process) committed a change to the file."""
        with self._lock:
            version = self._pragma("data_version")
            changed = version != self._data_version
            self._data_version = version
            return changed

    def integrity_check(self) -> str:
        """SQLite's full integrity check: "ok" or the problems found."""
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

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
        return int(cursor.lastrowid)

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
        return int(cursor.lastrowid)

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
        matrix = None if vectors is None else _check_vectors(vectors, len(patches))
        for patch in patches:
            _check_patch(patch)
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
                rows = conn.execute("SELECT id FROM examples ORDER BY id")
            else:
                rows = conn.execute(
                    """SELECT id FROM examples e WHERE NOT EXISTS (SELECT 1 FROM embeddings
                       WHERE example = e.id AND embedder = ?) ORDER BY id""",
                    (missing_for,),
                )
            ids = [int(r[0]) for r in rows]
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

    def export(self, path: str | Path) -> int:
        """Write everything to a portable archive (see archive.py); returns the number of
        examples written."""
        from facelive.recognition.archive import export_gallery

        return export_gallery(self, Path(path))

    def import_(self, path: str | Path) -> ImportReport:
        """Merge an archive made by export() into this gallery (see archive.py)."""
        from facelive.recognition.archive import read_archive

        return self.merge(read_archive(Path(path)))

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
