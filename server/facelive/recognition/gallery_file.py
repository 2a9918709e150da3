"""The gallery's SQLite file: opening it, telling a FaceLive gallery from any other file,
schema migrations, transactions, and naming what went wrong when SQLite fails.

Every change is one transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
synchronous=FULL: a crash at any instant, or kill -9, leaves the last committed state, and a
committed change survives a power cut. An existing file is never recreated or overwritten: a
file that is not a FaceLive gallery, is corrupt, read-only or from a newer version is refused
with a message that says which. A change that finds no room (a full disk, the file size limit)
raises GalleryFull and leaves the last committed state.

Thread-safe: one connection behind a lock. Several processes may share the file (SQLite
locking); `changed_elsewhere()` tells a long-lived reader when another one committed.
What is in the file (tables, records) is gallery.py's.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

from facelive.errors import FaceLiveError

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


class GalleryError(FaceLiveError, RuntimeError):
    """The gallery cannot do what was asked; the message says why in one line."""

    kind = "broken"

    def public_message(self) -> str:
        # An unexpected failure is named after its room; the other kinds speak for themselves.
        return f"gallery error: {self}" if self.kind == "broken" else str(self)


class GalleryCorrupt(GalleryError):
    """The file is damaged or is not a FaceLive gallery."""


class GalleryFull(GalleryError):
    """No room to save a change (the disk is full, or the file hit its size limit); the
    change was not saved and the committed data is intact."""

    kind = "no_room"



class GalleryFile:
    """One SQLite file with our header, opened for the gallery. `migrations[i]` (by default
    the class's default_migrations) brings a file from schema version i to i + 1; the file is
    upgraded on opening (unless read_only)."""

    default_migrations: ClassVar[tuple[Migration, ...]] = ()

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        create: bool = True,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._migrations = tuple(self.default_migrations if migrations is None else migrations)
        self._lock = threading.RLock()
        self._conn = self._connect(create)
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise
        self._data_version = self._pragma("data_version")

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

    def __enter__(self) -> Self:
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


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just made (sqlite3 leaves it None only for other statements)."""
    if cursor.lastrowid is None:
        raise sqlite3.InterfaceError("no row was inserted")
    return cursor.lastrowid
