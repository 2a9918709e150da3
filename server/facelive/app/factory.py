"""The app factory: Flask (page + REST) and Socket.IO (live frames) over one recognizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_socketio import SocketIO

from facelive.app.access_log import access_log
from facelive.app.api import api, json_http_errors
from facelive.app.auth import resolve_token, resolve_view_token
from facelive.app.live import capture_observer, register_live_events
from facelive.app.live_recognizer import load_recognizer
from facelive.app.people import People
from facelive.app.state import EXTENSION, LiveState
from facelive.app.uploads import UploadLimits
from facelive.app.web import web_blueprint
from facelive.app.worker import LiveWorker, on_inference_thread
from facelive.settings import Settings


def origin_check(extra: tuple[str, ...]) -> Callable[[str, dict[str, Any]], bool]:
    """Socket.IO's origin rule: the server's own origin (scheme + Host header, i.e. the page
    that this server served), plus any configured extra origins. Requests without an Origin
    header (non-browser clients) are not asked about."""
    allowed = {o.rstrip("/") for o in extra}

    def check(origin: str, environ: dict[str, Any]) -> bool:
        own = f"{environ.get('wsgi.url_scheme', 'https')}://{environ.get('HTTP_HOST', '')}"
        return origin == own or origin in allowed

    return check


def create_app(settings: Settings, recognizer: Any | None = None) -> tuple[Flask, SocketIO]:
    """Build the web app. recognizer: facelive.recognition.recognizer.Recognizer (see
    app.recognizer); None loads the models now (ModelMissingError when they are not there)."""
    if recognizer is None:
        recognizer = load_recognizer(settings)
    limits = UploadLimits.from_settings(settings)
    app = Flask(__name__, static_folder=None)
    # The default for every request; the upload routes set their own (uploads.read_files).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_image_bytes
    # With several workers, Socket.IO's message queue (Redis) carries what one worker
    # broadcasts (people_changed) to the pages connected to the others.
    queue = {"message_queue": settings.message_queue} if settings.message_queue else {}
    socketio = SocketIO(
        app,
        async_mode="eventlet",
        **queue,
        cors_allowed_origins=origin_check(settings.allowed_origins),
        # Room for a frame somewhat over the limit, so that it gets a clear `error` reply
        # instead of a dropped connection; far larger messages still close the connection.
        max_http_buffer_size=2 * settings.max_frame_bytes + 64 * 1024,
        manage_session=False,  # no Flask session is used; per-connection state is by sid
        logger=False,
        engineio_logger=False,
    )

    def emit_to(event: str, payload: dict[str, Any], sid: str) -> None:
        # A reply goes to a client of this worker (sticky sessions keep a connection on one),
        # so it skips the message queue: frames never make a round trip through Redis.
        socketio.emit(event, payload, to=sid, ignore_queue=True)

    worker = LiveWorker(
        emit=emit_to,
        spawn=socketio.start_background_task,
        recognizer=recognizer,
        max_pixels=settings.max_frame_pixels,
        max_bytes=settings.max_frame_bytes,
        max_fps=settings.max_client_fps,
    )
    state = LiveState(
        settings=settings,
        token=resolve_token(settings),
        view_token=resolve_view_token(settings),
        worker=worker,
        people=People(recognizer, on_inference_thread, settings.max_image_pixels,
                      settings.max_image_bytes),
        limits=limits,
        broadcast=lambda event, payload: socketio.emit(event, payload),
    )
    worker.observer = capture_observer(state, emit_to)
    worker.whole_frames = lambda sid: sid in state.captures
    app.extensions[EXTENSION] = state
    app.register_blueprint(api)
    json_http_errors(app)
    app.register_blueprint(web_blueprint(settings.web_dir))
    register_live_events(socketio, state)
    if settings.access_log:
        app.wsgi_app = access_log(app.wsgi_app)  # type: ignore[method-assign, assignment]
    return app, socketio
