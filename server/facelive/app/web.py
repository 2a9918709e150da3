"""The browser page: index.html, its ES modules and stylesheet, and socket.io-client from
web/node_modules (installed by `npm ci --prefix web`; never a CDN, never a copied file).

Only these paths are served; package.json and the rest of node_modules are not.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory

# server/facelive/app/web.py -> the checkout's web/ folder.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[3] / "web"
SOCKET_IO_DIST = Path("node_modules") / "socket.io-client" / "dist"
SOCKET_IO_FILE = "socket.io.esm.min.js"


def socket_io_client(web_dir: Path) -> Path:
    return web_dir / SOCKET_IO_DIST / SOCKET_IO_FILE


def _send(folder: Path, name: str) -> Response:
    response = send_from_directory(folder, name, max_age=0)
    if name.endswith(".js"):
        # Module scripts need a JavaScript MIME type; some systems' mime.types say otherwise.
        response.mimetype = "text/javascript"
    return response


def _security_headers(response: Response) -> Response:
    # The page loads nothing from elsewhere, so it can say so; the camera is for this page only.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src 'self' blob:; connect-src 'self' wss://{request.host}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # the URL may hold the token
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=()")
    return response


def web_blueprint(web_dir: Path | None = None) -> Blueprint:
    folder = (web_dir or DEFAULT_WEB_DIR).resolve()
    web = Blueprint("web", __name__)
    web.after_app_request(_security_headers)

    @web.get("/")
    def index() -> Response:
        return _send(folder, "index.html")

    @web.get("/js/<path:name>")
    def script(name: str) -> Response:
        if not name.endswith(".js"):
            abort(404)
        return _send(folder / "js", name)

    @web.get("/style.css")
    def stylesheet() -> Response:
        return _send(folder, "style.css")

    @web.get("/vendor/socket.io/<name>")
    def socket_io(name: str) -> Response:
        if name not in (SOCKET_IO_FILE, SOCKET_IO_FILE + ".map"):
            abort(404)
        return _send(folder / SOCKET_IO_DIST, name)

    return web
