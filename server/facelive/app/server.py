"""`serve(settings)`: run the app on eventlet, always over HTTPS, and say where to open it.

Start-up order: patch the standard library for eventlet (before Flask, sockets or threads are
used); the quick checks that can fail (bind the port, make or load the certificate and token);
load and warm up the models (seconds); print the banner; serve until interrupted.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from facelive import __version__
from facelive.errors import FaceLiveError
from facelive.settings import Settings

TLS_DIR = "tls"
# The longest request line (method, URL, version) handed to Flask. Above it eventlet answers a
# bare 414 with no body; its default (8 kB) sent some hostile URLs there instead of to our JSON
# errors. No real URL comes near: a name is at most 100 characters, 1.2 kB percent-encoded.
MAX_URL_BYTES = 64 * 1024

log = logging.getLogger(__name__)


class ServeError(FaceLiveError, RuntimeError):
    """The server cannot start; the message says why in one line."""

    kind = "unavailable"


def _patch_eventlet() -> None:
    with warnings.catch_warnings():
        # Eventlet warns on import that it is in maintenance mode; the choice is made (see the
        # README's architecture section), so the warning would only be noise at every start.
        warnings.simplefilter("ignore")
        import eventlet
    from eventlet import tpool

    eventlet.monkey_patch()
    from facelive.app import ws_unmask

    ws_unmask.install()  # eventlet unmasks each camera frame byte by byte (ws_unmask.py)
    # One OS thread for inference: TensorFlow already uses every core inside one call, and a
    # single thread keeps the batches strictly one at a time (and malloc arenas few).
    tpool.set_num_threads(1)


def viewing_line(settings: Settings, view_token: str, host: str, port: int) -> list[str]:
    """The banner's lines on who may view: the view link, or that viewing is open."""
    if settings.open_viewing:
        return ["Viewing is open (FACELIVE_OPEN_VIEWING=1): anyone who can reach this server "
                "sees the live view and the people list; changes need the link above."]
    urls = page_urls(host, port, view_token)
    return ["To let someone watch without changing anything, share a view-only URL:",
            f"    {urls[0]}", *(f" or {url}" for url in urls[1:])]


def page_urls(host: str, port: int, token: str) -> list[str]:
    """Ready-to-open URLs, the token included: every name and LAN address of this machine when
    listening on all interfaces, loopback last."""
    from facelive.app.tls import lan_addresses

    if host in ("", "0.0.0.0", "::"):
        hosts = [socket.gethostname(), *lan_addresses(), "127.0.0.1"]
    else:
        hosts = [host]
    # Quoted: a FACELIVE_TOKEN with + & # % would reach the page as another token.
    query = quote(token, safe="")
    return [f"https://{_bracket(h)}:{port}/?token={query}" for h in dict.fromkeys(hosts)]


def _bracket(host: str) -> str:
    """IPv6 addresses go in brackets in URLs."""
    return f"[{host}]" if ":" in host else host


def _tls_context(certfile: Path, keyfile: Path) -> Any:
    from eventlet.green import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(certfile), str(keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"cannot load TLS certificate {certfile} / key {keyfile}: {exc}") from None
    return context


def _protocol() -> type:
    """eventlet's HTTP protocol, dropping connections whose TLS fails (a browser refusing the
    self-signed certificate before its user accepts it, http:// typed for https://) with a
    debug line instead of a traceback on the console."""
    import ssl

    from eventlet import wsgi

    class TLSProtocol(wsgi.HttpProtocol):
        def handle(self) -> None:
            try:
                super().handle()
            except (ssl.SSLError, ConnectionError) as exc:
                log.debug("connection from %s dropped: %s", self.client_address, exc)

    return TLSProtocol


def _listen(host: str, port: int) -> Any:
    import eventlet

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return eventlet.listen((host, port), family=family)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use: choose another with --port"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    settings: Settings,
    recognizer: Callable[..., Any] | None = None,
    out: TextIO | None = None,
) -> None:
    """Run until interrupted. Raises ModelMissingError (models), ServeError (certificate,
    port) with a one-line message. The listening socket is closed on the way out."""
    out = out or sys.stdout
    _patch_eventlet()
    # Cheap checks first (port, certificate), so that they fail before the slow model load.
    listener = _listen(settings.host, settings.port)
    try:
        _start(settings, recognizer, listener, out)
    finally:
        listener.close()


def _start(
    settings: Settings, recognizer: Callable[..., Any] | None, listener: Any, out: TextIO
) -> None:
    from facelive.app.auth import resolve_token, resolve_view_token
    from facelive.app.live_recognizer import load_recognizer
    from facelive.app.tls import ensure_self_signed

    port = listener.getsockname()[1]
    settings = settings.replace(token=resolve_token(settings),
                                view_token=resolve_view_token(settings))
    if settings.certfile is not None and settings.keyfile is not None:
        certfile, keyfile, made = settings.certfile, settings.keyfile, False
    else:
        certfile, keyfile = ensure_self_signed(settings.data_dir / TLS_DIR, [settings.host])
        made = True
    context = _tls_context(certfile, keyfile)
    if recognizer is not None:
        _run(settings, recognizer, listener, context, port, certfile, made, out)
        return
    from facelive.models.store import mtcnn_paths
    from facelive.tf_quiet import import_tensorflow

    mtcnn_paths(settings.models_dir)  # the commonest failure, in one line and at once
    import_tensorflow(show_notices=settings.tf_log)
    # A corrupt or read-only gallery file raises GalleryError: one line at the CLI's boundary.
    loaded = load_recognizer(settings)
    try:
        _run(settings, loaded, listener, context, port, certfile, made, out)
    finally:
        loaded.close()  # the gallery's SQLite connection (checkpoints its WAL)


def _run(
    settings: Settings, recognizer: Any, listener: Any, context: Any, port: int,
    certfile: Path, made: bool, out: TextIO,
) -> None:
    """Warm up, build the app, print the banner, serve until interrupted."""
    import eventlet.wsgi

    from facelive.app.factory import create_app
    from facelive.app.live_recognizer import describe
    from facelive.app.tls import fingerprint
    from facelive.app.web import DEFAULT_WEB_DIR, socket_io_client
    from facelive.app.worker import on_inference_thread

    warm_up = getattr(recognizer, "warm_up", None)
    if callable(warm_up):
        on_inference_thread(warm_up)  # on the thread that will run every later batch
    app, _socketio = create_app(settings, recognizer)

    info = describe(recognizer)
    web_dir = settings.web_dir or DEFAULT_WEB_DIR
    tls_line = f"TLS certificate {certfile}"
    if made:
        tls_line += (f" (self-signed, SHA-256 {fingerprint(certfile)}; "
                     "the browser asks once to accept it)")
    lines = [
        f"FaceLive {__version__}: embedder {info['embedder']}, gallery {info['gallery_size']}, "
        f"listening on https://{_bracket(settings.host)}:{port}",
        tls_line,
    ]
    if not socket_io_client(web_dir).is_file():
        lines.append(
            f"warning: {socket_io_client(web_dir)} is missing, the page cannot connect: "
            "run `npm ci --prefix web` (part of `make setup`)"
        )
    lines.append("To open the live page, copy and paste one of these URLs:")
    urls = page_urls(settings.host, port, settings.token or "")
    lines += [f"    {urls[0]}", *(f" or {url}" for url in urls[1:])]
    lines += viewing_line(settings, settings.view_token or "", settings.host, port)
    if settings.access_log:
        lines.append("Access log below, one line per request (FACELIVE_ACCESS_LOG=0 turns it off).")
    print("\n".join(lines), file=out, flush=True)
    if settings.access_log:
        from facelive.app.access_log import to_console

        to_console(sys.stderr)

    secure = context.wrap_socket(listener, server_side=True)
    eventlet.wsgi.server(secure, app, protocol=_protocol(), log_output=False, debug=False,
                         url_length_limit=MAX_URL_BYTES)
