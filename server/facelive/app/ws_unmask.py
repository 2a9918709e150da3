"""Unmasking of incoming WebSocket frames at C speed, for eventlet's WebSocket server.

RFC 6455 has every client XOR its frames with a 4-byte mask, which the server must undo.
eventlet (0.41.3, the newest release) does it one byte at a time in a Python generator
(`RFC6455WebSocket._apply_mask`): 13 ms of the event loop for one 45 kB camera frame on the
2-core machine. The event loop is one thread for every connection, so at 8 live clients it ran
at 100% of a core on unmasking while the inference thread idled; with one client it was most of
the 10 ms a round trip spent outside recognition (BENCHMARKS.md, issue 17, "the event loop").

The same XOR on Python's big integers is one C loop over the whole frame (0.12 ms for 45 kB).
Installed once by `serve` after eventlet is imported; the output is byte for byte eventlet's
(tests/app/test_ws_unmask.py checks it against the original on random frames and offsets).
"""

from __future__ import annotations

from typing import Any


def apply_mask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """data XOR mask repeated, the mask started at byte `offset` of the message (a frame read
    in pieces continues the mask where the last piece ended); `length` bytes of data."""
    if length is None:
        length = len(data)
    data = bytes(data[:length])
    if not data:
        return b""
    rotated = bytes(mask[(offset + i) % 4] for i in range(4))
    key = (rotated * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def install(websocket_class: Any = None) -> None:
    """Replace eventlet's byte-by-byte unmasking (idempotent). websocket_class: for tests;
    default eventlet.websocket.RFC6455WebSocket."""
    if websocket_class is None:
        from eventlet.websocket import RFC6455WebSocket

        websocket_class = RFC6455WebSocket
    websocket_class._apply_mask = staticmethod(apply_mask)
