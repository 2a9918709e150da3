"""The REST blueprint under /api: JSON in and out, described by /api/openapi.json.

Reading is open; every change needs `Authorization: Bearer TOKEN` (401 without, 403 with a
wrong one), checked before the body is read, so a refused request changes nothing and costs
nothing. Gallery work goes through `state.people`, which runs it on the inference thread.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from facelive import __version__
from facelive.app.auth import bearer_token, token_matches
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
        if not token_matches(given, state.token):
            raise Refusal(403, "wrong access token")
        result = view(*args, **kwargs)
        state.people_changed()
        return result

    return guarded


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
    def http_error(exc: HTTPException) -> Response | HTTPException:
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
def people() -> Response:
    return jsonify({"people": state_of().people.everyone()})


@api.get("/people/<name>/thumbnail")
def thumbnail(name: str) -> Response:
    response = Response(state_of().people.thumbnail(name), mimetype="image/jpeg")
    # The URL carries ?v=<example id>; still, a rename or delete may reuse the path.
    response.headers["Cache-Control"] = "no-cache"
    return response


@api.post("/identify")
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
    return jsonify(state.people.enroll(name, uploads, source="upload"))


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
