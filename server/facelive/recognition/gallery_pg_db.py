"""The gallery's PostgreSQL database: connecting, telling a FaceLive gallery from anything
else, schema versions and migrations, transactions, and naming what went wrong when
PostgreSQL fails. The PostgreSQL counterpart of gallery_file.py; what is in the tables is
gallery_pg.py's.

Everything lives in the `facelive` schema of the database, so the gallery can share a
database with other applications. `facelive.meta` holds the schema version; migrations run
under an advisory lock, so workers that start together upgrade the database once.

Every change is one transaction that first takes one advisory lock (writers queue, as with
SQLite's BEGIN IMMEDIATE: a check-then-insert can never race another worker) and ends with a
NOTIFY on CHANNEL carrying this connection's origin id. PostgreSQL delivers the notice only
when the transaction commits, so the other workers' listeners (gallery_pg_listener.py) hear
of committed changes and of nothing else.

Thread-safe: one connection behind a lock, reopened after it is lost.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from facelive.recognition.gallery_file import GalleryCorrupt, GalleryError, GalleryFull

SCHEMA = "facelive"
CHANNEL = "facelive_gallery"
APPLICATION = "facelive-gallery"
# pg_advisory_xact_lock keys (any two 64-bit numbers no other application uses): one for
# every change, one for schema upgrades.
WRITE_LOCK = 0x464C5647_0001
MIGRATE_LOCK = 0x464C5647_0002
CONNECT_TIMEOUT_S = 10
PURGE_LOCK_TIMEOUT = "3s"

_IN_TRANSACTION = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)

PgMigration = Callable[[psycopg.Connection[Any]], None]


class GalleryUnavailable(GalleryError):
    """The database cannot be reached (down, restarting, refusing us); nothing was changed."""

    kind = "unavailable"


class NoGallery(GalleryError):
    """The database holds no FaceLive gallery yet (and this open may not create one)."""


def redacted(url: str) -> str:
    """The database URL as it may be shown: no password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


def connect(url: str, **extra: Any) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit), with TCP keepalives so that a
    dead peer is noticed in seconds, not at the kernel's two hours."""
    return psycopg.connect(
        url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="facelive",
        keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3, **extra,
    )


class GalleryDatabase:
    """One PostgreSQL database opened for the gallery. `migrations[i]` (by default the class's
    default_migrations) brings the schema from version i to i + 1; the database is upgraded on
    opening (unless read_only)."""

    default_migrations: ClassVar[tuple[PgMigration, ...]] = ()

    # Changes by others are heard by a listener thread, so asking is free: a reader may ask
    # before every frame (Recognizer.refresh reads this).
    change_poll_s = 0.0

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        create: bool = True,
        migrations: Sequence[PgMigration] | None = None,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.read_only = read_only
        self.origin = uuid.uuid4().hex  # tells our own notices from others'
        self._migrations = tuple(self.default_migrations if migrations is None else migrations)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._listener: Any = None
        with self._lock:
            conn = self._connection()
            try:
                self._prepare(conn, create)
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------ opening
    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again if it was lost (a database restart, a network cut)."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
        self._conn = None
        try:
            conn = connect(self.url)
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            raise GalleryUnavailable(
                f"cannot reach the gallery database {self.where}: {_first_line(exc)}"
            ) from None
        self._conn = conn
        return conn

    def _version(self, conn: psycopg.Connection[Any]) -> int | None:
        """The schema version, None when the database has no FaceLive gallery yet."""
        found = conn.execute(
            "SELECT to_regclass(%s), to_regnamespace(%s)", (f"{SCHEMA}.meta", SCHEMA)
        ).fetchone()
        if found is None or found[0] is None:
            if found is not None and found[1] is not None:
                tables = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (SCHEMA,)
                ).fetchone()
                if tables and tables[0]:
                    raise GalleryCorrupt(
                        f"{self.where}: schema {SCHEMA!r} exists but is not a FaceLive gallery "
                        "(no facelive.meta); drop or rename it to start a new gallery"
                    )
            return None
        row = conn.execute(f"SELECT app, version FROM {SCHEMA}.meta").fetchone()
        if row is None or row[0] != APPLICATION:
            raise GalleryCorrupt(f"{self.where}: {SCHEMA}.meta is not a FaceLive gallery's")
        return int(row[1])

    def _prepare(self, conn: psycopg.Connection[Any], create: bool) -> None:
        latest = len(self._migrations)
        try:
            version = self._version(conn)
        except psycopg.Error as exc:
            raise self._translate(exc) from None
        if version is None and (self.read_only or not create):
            raise NoGallery(f"no gallery in the database {self.where}")
        if version is not None and version > latest:
            raise GalleryError(
                f"{self.where} has gallery schema {version}, made by a newer FaceLive; this "
                f"one reads up to schema {latest}"
            )
        if version is not None and version == latest:
            return
        if self.read_only:
            raise GalleryError(
                f"{self.where} has gallery schema {version} and needs an upgrade to {latest}; "
                "open it writable once"
            )
        self._migrate()

    def _migrate(self) -> None:
        """Each step in its own transaction with its version bump, under the migration lock,
        reading the version again once the lock is held (another worker may have done it)."""
        latest = len(self._migrations)
        while True:
            with self._transaction(MIGRATE_LOCK) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                version = self._version(conn)
                if version is None:
                    conn.execute(
                        f"CREATE TABLE {SCHEMA}.meta (one BOOLEAN PRIMARY KEY DEFAULT TRUE "
                        "CHECK (one), app TEXT NOT NULL, version INTEGER NOT NULL)"
                    )
                    conn.execute(f"INSERT INTO {SCHEMA}.meta (app, version) VALUES (%s, 0)",
                                 (APPLICATION,))
                    version = 0
                if version >= latest:
                    return
                self._migrations[version](conn)
                conn.execute(f"UPDATE {SCHEMA}.meta SET version = %s", (version + 1,))

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._version(self._connection()) or 0)

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.stop()
                self._listener = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ changes by others
    def listen(self) -> None:
        """Start hearing other connections' commits (a listener thread), waiting until it
        listens: a change committed after this returns is never missed."""
        from facelive.recognition.gallery_pg_listener import ChangeListener

        with self._lock:
            if self._listener is None:
                self._listener = ChangeListener(self.url, CHANNEL, self.origin, connect)
                self._listener.start()

    def changed_elsewhere(self) -> bool:
        """True once after another connection committed a change (or after the listener lost
        its connection: a notice may have been missed, so the caller reloads everything).
        Without listen() it is always False."""
        listener = self._listener
        return bool(listener is not None and listener.take())

    # ------------------------------------------------------------ transactions
    def _translate(self, exc: psycopg.Error) -> GalleryError:
        text = _first_line(exc)
        if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
            return GalleryFull(f"{self.where}: no room ({text}); the change was not saved")
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return GalleryError(f"{self.where} is open read-only")
        if isinstance(exc, pg_errors.DataCorrupted | pg_errors.IndexCorrupted):
            return GalleryCorrupt(f"{self.where} is corrupt ({text}); restore it from a backup")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return GalleryError(f"{self.where}: not allowed ({text})")
        if isinstance(exc, psycopg.OperationalError):
            return GalleryUnavailable(
                f"lost the gallery database {self.where} ({text}); nothing was changed, try "
                "again"
            )
        return GalleryError(f"{self.where}: {text}")

    @contextmanager
    def _transaction(self, lock: int | None = None) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    if lock is not None:
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                    yield conn
            except psycopg.Error as exc:
                raise self._translate(exc) from None

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction: all of the block's changes, or none of them; the other
        workers hear of it when (and only if) it commits."""
        if self.read_only:
            raise GalleryError(f"{self.where} is open read-only")
        with self._transaction(WRITE_LOCK) as conn:
            yield conn
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.origin))

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """A read transaction: every query in the block sees one snapshot."""
        with self._lock:
            conn = self._conn
            if conn is not None and not conn.broken and (
                conn.info.transaction_status in _IN_TRANSACTION
            ):
                yield conn  # inside snapshot(): that transaction is ours
                return
            with self._transaction() as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield conn

    def _purge(self) -> None:
        """After a delete: rewrite the small tables of patch keys and names (VACUUM FULL), so
        that the deleted keys and names go with their old files, and VACUUM the others, so
        their dead rows are freed now. What lingers in the examples' free space is sealed
        with a key that no longer exists (see gallery_pg.py). Best effort: if readers hold the
        tables past PURGE_LOCK_TIMEOUT, a plain VACUUM now and the rewrite at the next
        delete."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute(f"SET lock_timeout = '{PURGE_LOCK_TIMEOUT}'")
                try:
                    conn.execute(f"VACUUM (FULL) {SCHEMA}.crop_keys, {SCHEMA}.people")
                except pg_errors.LockNotAvailable:
                    conn.execute(f"VACUUM {SCHEMA}.crop_keys, {SCHEMA}.people")
                finally:
                    conn.execute("RESET lock_timeout")
                conn.execute(f"VACUUM {SCHEMA}.examples, {SCHEMA}.embeddings")
            except (psycopg.Error, GalleryError):
                pass

    def integrity_check(self) -> str:
        """"ok", or the rows that break the gallery's rules (PostgreSQL checks its own
        pages; the foreign keys hold by construction)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT count(*) FROM {SCHEMA}.embeddings x WHERE octet_length(x.vector) "
                "<> 4 * x.dim"
            ).fetchone()
        return "ok" if rows is None or not rows[0] else f"{rows[0]} vectors of the wrong size"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
