"""The REST blueprint under /api: JSON in and out, described by /api/openapi.json.

Reading needs a token too (the owner's or the view token; FACELIVE_OPEN_VIEWING=1 opens it),
and every change the owner's: `Authorization: Bearer TOKEN` (401 without, 403 with a wrong one
or the view token), checked before the body is read, so a refused request changes nothing and
costs nothing. /api/health and /api/openapi.json stay open: they name nobody. Gallery work
goes through `state.people`, which runs it on the inference thread.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from facelive import __version__
from facelive.app.auth import OWNER, VIEWER, bearer_token, role_of
from facelive.app.live_recognizer import describe
from facelive.app.openapi import openapi_document
from facelive.app.people import Refusal
from facelive.app.state import state_of
from facelive.app.uploads import read_files
from facelive.errors import FaceLiveError

api = Blueprint("api", __name__, url_prefix="/api")


def changes_gallery(view: Callable[..., Any]) -> Callable[..., Any]:
    """Token check first; then run the view and tell every page the gallery changed."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        state = state_of()
        given = bearer_token(request.headers.get("Authorization"))
        if given is None:
            raise Refusal(401, "this change needs the access token: "
                               "send `Authorization: Bearer TOKEN`")
        role = role_of(given, state.token, state.view_token)
        if role == VIEWER:
            raise Refusal(403, "the view token can only view: changes need the owner's token")
        if role != OWNER:
            raise Refusal(403, "wrong access token")
        result = view(*args, **kwargs)
        state.people_changed()
        return result

    return guarded


def views_gallery(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reading names or faces: the owner's token or the view token, unless viewing is open."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        state = state_of()
        if not state.open_viewing:
            given = bearer_token(request.headers.get("Authorization"))
            if given is None:
                raise Refusal(401, "viewing needs a token: send `Authorization: Bearer TOKEN` "
                                   "with the owner's token or the view token")
            if role_of(given, state.token, state.view_token) is None:
                raise Refusal(403, "wrong access token")
        return view(*args, **kwargs)

    return guarded


def _flag(name: str) -> bool:
    """A yes/no request parameter, from the query string or a form field; absent is no."""
    raw = request.args.get(name, request.form.get(name, ""))
    value = raw.strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise Refusal(400, f"{name} must be true or false, got {raw[:40]!r}")


@api.errorhandler(FaceLiveError)
def refused(exc: FaceLiveError) -> tuple[Response, int]:
    """The web layer's one error boundary: {error, ...} with the error kind's HTTP status."""
    response = jsonify(exc.to_json())
    if exc.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="facelive"'
    return response, exc.http_status


def json_http_errors(app: Flask) -> None:
    """404, 405, 413... under /api answer JSON {error}, like every other API error."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> BaseResponse | HTTPException:
        if not request.path.startswith(api.url_prefix or "/api"):
            return exc
        message = exc.description or exc.name
        if exc.code == 413:
            limits = state_of().limits
            message = (f"upload too large: at most {limits.max_request_bytes} bytes per "
                       f"request, {limits.max_file_bytes} per file")
        response = exc.get_response()
        response.set_data(jsonify({"error": message}).get_data())
        response.mimetype = "application/json"
        return response


# ------------------------------------------------------------------ reading
@api.get("/health")
def health() -> Response:
    """{version, embedder, gallery_size}: is the server up, and with which models."""
    return jsonify({"version": __version__, **describe(state_of().worker.recognizer)})


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(__version__, state_of().limits))


@api.get("/people")
@views_gallery
def people() -> Response:
    return jsonify({"people": state_of().people.everyone()})


@api.get("/people/<name>/thumbnail")
@views_gallery
def thumbnail(name: str) -> Response:
    response = Response(state_of().people.thumbnail(name), mimetype="image/jpeg")
    # The URL carries ?v=<example id>; still, a rename or delete may reuse the path.
    response.headers["Cache-Control"] = "no-cache"
    return response


@api.post("/identify")
@views_gallery
def identify() -> Response:
    state = state_of()
    upload = read_files(request, "image", state.limits, max_files=1)[0]
    return jsonify(state.people.identify(upload.data))


# ------------------------------------------------------------------ changes
@api.post("/people/<name>/examples")
@changes_gallery
def add_examples(name: str) -> Response:
    state = state_of()
    uploads = read_files(request, "images", state.limits, max_files=state.limits.max_files)
    return jsonify(state.people.enroll(name, uploads, source="upload",
                                       add=_flag("add"), force=_flag("force")))


@api.patch("/people/<name>")
@changes_gallery
def rename(name: str) -> Response:
    body = request.get_json(silent=True)
    new = body.get("name") if isinstance(body, dict) else None
    return jsonify(state_of().people.rename(name, new))


@api.delete("/people/<name>")
@changes_gallery
def delete(name: str) -> Response:
    return jsonify(state_of().people.delete(name))


@api.delete("/people")
@changes_gallery
def clear() -> Response:
    return jsonify(state_of().people.clear())
