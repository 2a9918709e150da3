"""The REST blueprint under /api. Reading is open; changes (to come: gallery edits) will ask for
the token (`auth.token_matches`)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from facelive import __version__
from facelive.app.recognizer import describe
from facelive.app.state import state_of

api = Blueprint("api", __name__, url_prefix="/api")


@api.get("/health")
def health() -> Response:
    """{version, embedder, gallery_size}: is the server up, and with which models."""
    return jsonify({"version": __version__, **describe(state_of().worker.recognizer)})
