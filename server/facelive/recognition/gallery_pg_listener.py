"""Hearing other workers' gallery changes: a LISTEN connection on an OS thread of its own.

Why an OS thread and not a green one: `facelive serve` runs under eventlet's monkey
patching, and psycopg waits for its socket with a C poll() that eventlet cannot see, which on
a green thread would stop the whole event loop. A real thread (eventlet.patcher.original)
blocks only itself. It touches nothing but a flag, which the inference thread reads.

A lost connection sets the flag too (a notice may have been missed while it was down), and
the thread reconnects with a growing pause: a worker is never left stale for good.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

POLL_S = 0.5  # how often the thread looks up from waiting (to stop, or to send a heartbeat)
HEARTBEAT_S = 5.0  # a query now and then, so that a dead connection is noticed
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)
READY_TIMEOUT_S = 15.0


def _os_threading() -> Any:
    if "eventlet" in sys.modules:
        from eventlet import patcher

        return patcher.original("threading")
    import threading

    return threading


class ChangeListener:
    """LISTEN on `channel`; take() says once whether someone other than `origin` committed a
    change (or the connection was lost) since the last take(). connect: url -> an autocommit
    connection."""

    def __init__(
        self, url: str, channel: str, origin: str,
        connect: Callable[[str], psycopg.Connection[Any]],
    ) -> None:
        self.url, self.channel, self.origin = url, channel, origin
        self._connect = connect
        threading = _os_threading()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gallery-listener", daemon=True)
        self._changed = False
        self.reconnects = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start and wait (a while) until the first LISTEN is in place."""
        self._thread.start()
        self._ready.wait(READY_TIMEOUT_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * POLL_S + 1.0)

    def take(self) -> bool:
        # A plain attribute: reading and clearing it races only with a new notice, which then
        # sets it again and is seen at the next take().
        changed, self._changed = self._changed, False
        return changed

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stop.is_set():
            try:
                with self._connect(self.url) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    if not first:
                        self._changed = True  # what happened while we were away is unknown
                        self.reconnects += 1
                    first = False
                    attempt = 0
                    self._ready.set()
                    self._listen(conn)
            except psycopg.Error as exc:
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self._changed = True
                self._stop.wait(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        beat = time.monotonic()
        while not self._stop.is_set():
            for notice in conn.notifies(timeout=POLL_S):
                if notice.payload != self.origin:
                    self._changed = True
            if time.monotonic() - beat > HEARTBEAT_S:
                conn.execute("SELECT 1")
                beat = time.monotonic()
