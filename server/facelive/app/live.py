"""Socket.IO events of the live view: connect (token check, client limit), frame (rate check,
then queue it), disconnect; and Capture Examples: capture_start, capture_cancel, capture_save
(answered through acks).

Each handler does one quick thing and returns; the work happens in the LiveWorker, or on the
inference thread (enrolment, through state.people).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError as RefuseConnection
from flask_socketio import SocketIO, emit

from facelive import __version__
from facelive.app.auth import OWNER, role_of
from facelive.app.capture import DEFAULT_TARGET, MAX_TARGET, CaptureSession
from facelive.app.live_recognizer import describe
from facelive.app.people import Upload
from facelive.app.protocol import Frame, FrameError, error_reply, parse_frame
from facelive.app.state import LiveState
from facelive.errors import FaceLiveError

log = logging.getLogger(__name__)


def _sid() -> str:
    """The Socket.IO session id of the event being handled (Flask-SocketIO sets it on the
    request; Flask's types do not know it)."""
    return request.sid  # type: ignore[attr-defined]


def capture_observer(
    state: LiveState, emit_to: Callable[[str, dict[str, Any], str], None]
) -> Callable[[str, Frame, list[dict[str, Any]]], None]:
    """The worker's observer: each answered frame of a capturing client is offered to its
    capture, and the client hears how far it is."""

    def observe(sid: str, frame: Frame, faces: list[dict[str, Any]]) -> None:
        session = state.captures.get(sid)
        if session is None or session.done:
            return
        session.offer(frame.data, faces, time.monotonic())
        emit_to("capture", session.progress(), sid)

    return observe


def _failed(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def register_live_events(socketio: SocketIO, state: LiveState) -> None:
    settings = state.settings

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        # The owner's token: may change things; the view token (or none, where viewing is
        # open): a viewer. A wrong token is refused outright, so a page with a stale token says
        # so instead of silently losing its rights; no token is refused where viewing is closed.
        given = auth.get("token") if isinstance(auth, dict) else None
        role = role_of(given, state.token, state.view_token) if given else None
        if given and role is None:
            raise RefuseConnection("invalid token")
        if role is None and not state.open_viewing:
            raise RefuseConnection("token required")
        owner = role == OWNER
        # Checked and counted with no yield in between: green threads cannot both take the
        # last place. A refused connection was never counted, so it holds no place. The
        # token holder is always let in (and counted): a crowd of viewers must not lock the
        # owner out of their own server.
        connected = len(state.clients)
        if connected >= settings.max_clients and not owner:
            raise RefuseConnection(
                f"server busy: {connected} client{'s' if connected != 1 else ''} connected, "
                f"the limit is {settings.max_clients}; try again later"
            )
        state.clients.add(_sid())
        if owner:
            state.writers.add(_sid())
        emit("hello", {
            "version": __version__,
            **describe(state.worker.recognizer),
            "can_change": owner,
            "role": "owner" if owner else "viewer",
            "open_viewing": state.open_viewing,
            "max_frame_bytes": settings.max_frame_bytes,
            "max_frame_pixels": settings.max_frame_pixels,
            # The page says from it which faces the detail it sends can find.
            "min_face_size": settings.min_face_size,
            # The page paces itself by this (0: no limit); a frame sent faster is answered
            # `rate_limited`.
            "max_client_fps": settings.max_client_fps,
            "upload_limits": state.limits.describe(),
        })

    @socketio.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        state.clients.discard(_sid())
        state.worker.forget(_sid())
        state.writers.discard(_sid())
        state.captures.pop(_sid(), None)

    @socketio.on("frame")
    def on_frame(message: Any = None) -> None:
        received = time.perf_counter()
        try:
            # The rate first: a frame over it is answered without being looked at.
            state.worker.admit(_sid(), message, received)
            frame = parse_frame(
                message, received, settings.max_frame_bytes, settings.max_frame_pixels
            )
            state.worker.submit(_sid(), frame)
        except FrameError as exc:
            emit("error", exc.reply())

    @socketio.on("capture_start")
    def on_capture_start(message: Any = None) -> dict[str, Any]:
        """{count?} -> {ok, target}: the next frames this client streams are judged."""
        if _sid() not in state.writers:
            return _failed("adding people needs the access token (open the link with it)")
        count = message.get("count", DEFAULT_TARGET) if isinstance(message, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TARGET:
            return _failed(f"count must be an integer in 1..{MAX_TARGET}")
        state.captures[_sid()] = CaptureSession(target=count)
        return {"ok": True, "target": count}

    @socketio.on("capture_cancel")
    def on_capture_cancel(message: Any = None) -> dict[str, Any]:
        state.captures.pop(_sid(), None)
        return {"ok": True}

    @socketio.on("capture_save")
    def on_capture_save(message: Any = None) -> dict[str, Any]:
        """{name, add?, force?} -> {ok, name, examples_added, rejected, warnings, ...}: enrol
        what was taken. On a refusal (a bad name, an existing name without add, faces unlike
        that person's without force: {ok: false, error, reason}) the frames are kept, so the
        name can be corrected or the choice confirmed."""
        sid = _sid()
        if sid not in state.writers:
            return _failed("adding people needs the access token (open the link with it)")
        session = state.captures.get(sid)
        if session is None or not session.collected:
            return _failed("nothing captured: press Capture examples first")
        name = message.get("name") if isinstance(message, dict) else None
        if not isinstance(name, str):
            return _failed("send the person's name: {name}")
        add = message.get("add") is True
        force = message.get("force") is True
        if session.saving:
            # enroll() yields to the event loop; a second Save (a retry after the page's
            # timeout, say) must not store the same frames again.
            return _failed("already saving these examples")
        uploads = [Upload(f"capture {i + 1}", data) for i, data in enumerate(session.images)]
        session.saving = True
        try:
            result = state.people.enroll(name, uploads, source="webcam", add=add, force=force)
        except FaceLiveError as refusal:
            return {"ok": False, **refusal.to_json()}
        finally:
            session.saving = False
        if state.captures.get(sid) is session:
            del state.captures[sid]
        state.people_changed()
        return {"ok": True, **result}

    @socketio.on_error_default
    def on_error(exc: Exception) -> dict[str, Any]:
        log.exception("socket.io handler failed: %s", exc)
        message = f"server error ({type(exc).__name__})"
        emit("error", error_reply(message))
        # Flask-SocketIO sends this as the ack of events that expect one (capture_save...),
        # which would otherwise get an empty answer.
        return _failed(message)
