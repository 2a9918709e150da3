"""The access log: one line per HTTP request, `GET /api/people 200 3.1 ms`.

Method, path, status and time only: never the query string (the page's link carries the token
there), headers (the Bearer token), bodies (images) or the client's address. A name appears
only where the path holds it, percent-encoded as sent. The Socket.IO connection is one request
too: its line comes when the connection ends, with its whole duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import quote

log = logging.getLogger("facelive.access")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def request_line(environ: dict[str, Any], status: str | None, ms: float) -> str:
    """The log line of one request."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PATH_INFO is decoded (latin-1 bytes of UTF-8): back to what the client sent.
    try:
        raw = path.encode("latin-1")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "replace")
    shown = quote(raw, safe="/:@!$&'()*+,;=-._~")
    if len(shown) > 300:
        shown = shown[:300] + "..."  # hostile 64 KiB URLs must not flood the log
    method = str(environ.get("REQUEST_METHOD", "-"))[:16]
    code = (status or "-").split(" ", 1)[0]
    return f"{method} {shown} {code} {ms:.1f} ms"


class _Logged:
    """The response body, passed through; the line is logged when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


def access_log(app: Wsgi) -> Wsgi:
    """WSGI middleware logging each request to the `facelive.access` logger (INFO)."""

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def starting(code: str, headers: Any, *exc_info: Any) -> Any:
            status[:] = [code]
            return start_response(code, headers, *exc_info)

        def done() -> None:
            ms = (time.perf_counter() - started) * 1000.0
            log.info("%s", request_line(environ, status[0] if status else None, ms))

        try:
            body = app(environ, starting)
        except BaseException:
            done()
            raise
        return _Logged(body, done)

    return logged


def to_console(stream: TextIO) -> None:
    """Send the access log to `stream` (the server's console), whatever the root logger's
    level: a refused upload must leave its line."""
    if any(getattr(h, "facelive_access", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.facelive_access = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
