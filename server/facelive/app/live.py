"""Socket.IO events of the live view: connect (token check), frame (queue it), disconnect.

Each handler does one quick thing and returns; the work happens in the LiveWorker.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError as RefuseConnection
from flask_socketio import SocketIO, emit

from facelive import __version__
from facelive.app.auth import token_matches
from facelive.app.protocol import FrameError, error_reply, parse_frame
from facelive.app.recognizer import describe
from facelive.app.state import LiveState

log = logging.getLogger(__name__)


def register_live_events(socketio: SocketIO, state: LiveState) -> None:
    settings = state.settings

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        # No token: a viewer (the live view is open). A wrong token is refused outright, so a
        # page with a stale token says so instead of silently losing its rights.
        given = auth.get("token") if isinstance(auth, dict) else None
        if given and not token_matches(given, state.token):
            raise RefuseConnection("invalid token")
        if given:
            state.writers.add(request.sid)
        emit("hello", {
            "version": __version__,
            **describe(state.worker.recognizer),
            "can_change": bool(given),
            "max_frame_bytes": settings.max_frame_bytes,
            "max_frame_pixels": settings.max_frame_pixels,
        })

    @socketio.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        state.worker.forget(request.sid)
        state.writers.discard(request.sid)

    @socketio.on("frame")
    def on_frame(message: Any) -> None:
        try:
            frame = parse_frame(
                message, time.perf_counter(), settings.max_frame_bytes, settings.max_frame_pixels
            )
            state.worker.submit(request.sid, frame)
        except FrameError as exc:
            emit("error", error_reply(str(exc), exc.seq))

    @socketio.on_error_default
    def on_error(exc: Exception) -> None:
        log.exception("socket.io handler failed: %s", exc)
        emit("error", error_reply(f"server error ({type(exc).__name__})"))
