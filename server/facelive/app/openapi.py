"""The OpenAPI 3.1 description of the REST API, served at /api/openapi.json.

Written by hand next to the routes (api.py): small enough to read whole, and a test checks that
it lists exactly the routes the app has.
"""

from __future__ import annotations

from typing import Any

from facelive.app.uploads import UploadLimits


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema)}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


NAME_PARAM = {
    "name": "name", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "A person's name (URL-encoded; matched ignoring case).",
}
REFUSED = {
    "401": _error("No `Authorization: Bearer TOKEN` header; nothing changed."),
    "403": _error("Wrong token; nothing changed."),
    # Any change writes to the gallery file, deletions included (the write-ahead log).
    "507": _error("The server's disk is full; nothing changed. Retry once there is room."),
}
NOT_FOUND = {"404": _error("No person of that name.")}
TOO_LARGE = {"413": _error("Over the upload limits (body size, file count, file size).")}


def _multipart(field: str, many: bool, description: str) -> dict[str, Any]:
    file = {"type": "string", "contentMediaType": "application/octet-stream"}
    schema = {"type": "array", "items": file} if many else file
    return {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field], "properties": {field: schema},
    }}}, "description": description}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string", "description": "what is wrong"}}},
    "Health": {"type": "object", "properties": {
        "version": {"type": "string"}, "embedder": {"type": "string"},
        "gallery_size": {"type": "integer", "description": "stored examples searched"},
        "people": {"type": "integer"},
        "threshold": {"type": "number", "description": "match threshold at this gallery size"},
        "threshold_source": {"type": "string"},
        "target_far": {"type": ["number", "null"],
                       "description": "stranger false-accept rate the threshold aims at"},
        "expected_far": {"type": ["number", "null"],
                         "description": "share of strangers expected to get a name now"}}},
    "Person": {"type": "object", "properties": {
        "name": {"type": "string"}, "examples": {"type": "integer"},
        "created": {"type": "number", "description": "unix seconds"},
        "thumbnail": {"type": ["string", "null"], "description": "URL of a face crop"}}},
    "People": {"type": "object", "properties": {
        "people": {"type": "array", "items": _ref("Person")}}},
    "Face": {"type": "object", "properties": {
        "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                "description": "[x, y, width, height] in image pixels"},
        "score": {"type": "number", "description": "detector probability"},
        "landmarks": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                      "description": "eyes, nose, mouth corners: five [x, y]"},
        "name": {"type": "string", "description": "the person, or \"unknown\""},
        "distance": {"type": ["number", "null"],
                     "description": "to the nearest example (unit embeddings, 0..2)"},
        "confidence": {"type": ["number", "null"],
                       "description": "0..1: the estimated probability that the name is "
                                      "right (calibrated on LFW; see the README); null for "
                                      "unknown"}}},
    "Identified": {"type": "object", "properties": {
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "faces": {"type": "array", "items": _ref("Face")}}},
    "Rejected": {"type": "object", "properties": {
        "file": {"type": "string"}, "reason": {"type": "string"}}},
    "Picked": {"type": "object", "properties": {
        "file": {"type": "string"}, "faces": {"type": "integer"},
        "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "message": {"type": "string"}}},
    "Enrolled": {"type": "object", "properties": {
        "name": {"type": "string", "description": "as stored"},
        "examples_added": {"type": "integer"},
        "rejected": {"type": "array", "items": _ref("Rejected")},
        "picked": {"type": "array", "items": _ref("Picked"),
                   "description": "photos with several faces: the dominant one taken"},
        "rejected_summary": {"type": ["string", "null"],
                             "description": "`rejected` in one line: how many, why"},
        "warnings": {"type": "array", "items": {"type": "string"},
                     "description": "accepted faces that look like someone else"},
        "lookalike_summary": {"type": ["string", "null"],
                              "description": "`warnings` in one line: how many, who, the "
                                             "closest distance"}}},
    "Rename": {"type": "object", "required": ["name"],
               "properties": {"name": {"type": "string", "description": "the new name"}}},
    "Renamed": {"type": "object", "properties": {
        "name": {"type": "string"}, "previous": {"type": "string"}}},
    "Deleted": {"type": "object", "properties": {
        "name": {"type": "string"}, "examples_removed": {"type": "integer"}}},
    "Cleared": {"type": "object", "properties": {"people_removed": {"type": "integer"}}},
}


def openapi_document(version: str, limits: UploadLimits) -> dict[str, Any]:
    change: list[dict[str, list[str]]] = [{"bearer": []}]
    # The owner's token or the view token (unless viewing is open).
    view: list[dict[str, list[str]]] = [{"bearer": []}]
    flags = [
        {"name": "add", "in": "query", "schema": {"type": "boolean"},
         "description": "true: add to the person of that name if they exist (else 409)"},
        {"name": "force", "in": "query", "schema": {"type": "boolean"},
         "description": "true: add even faces that do not look like that person's"},
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FaceLive", "version": version,
            "description": (
                "Gallery and recognition API of a FaceLive server. Reading names or faces "
                "needs `Authorization: Bearer TOKEN` with the owner's token or the view token "
                "(unless the server opens viewing); every change needs the owner's (the tokens "
                "are in the URLs the server prints). Uploads: at most {limits.max_files} files and "
                f"{limits.max_request_bytes} bytes per request, {limits.max_file_bytes} bytes "
                "per file. Errors are JSON {error}."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/api/health": {"get": {
                "summary": "Server version, embedder and gallery size",
                "responses": {"200": _json("Health", "The server is up.")}}},
            "/api/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 JSON"}}}},
            "/api/people": {
                "get": {"summary": "Everyone in the gallery, sorted by name", "security": view,
                        "responses": {"200": _json("People", "The people."), **REFUSED}},
                "delete": {"summary": "Delete everyone (clear the gallery)", "security": change,
                           "responses": {"200": _json("Cleared", "Cleared."), **REFUSED}},
            },
            "/api/people/{name}": {
                "parameters": [NAME_PARAM],
                "patch": {
                    "summary": "Rename a person", "security": change,
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("Rename")}}},
                    "responses": {
                        "200": _json("Renamed", "Renamed."),
                        "400": _error("Not JSON {name}, or a name the gallery refuses."),
                        **REFUSED, **NOT_FOUND,
                        "409": _error("Someone else already has that name."),
                    },
                },
                "delete": {"summary": "Delete a person and their examples", "security": change,
                           "responses": {"200": _json("Deleted", "Deleted."), **REFUSED,
                                         **NOT_FOUND}},
            },
            "/api/people/{name}/thumbnail": {"get": {
                "summary": "A face crop of the person (JPEG)", "parameters": [NAME_PARAM],
                "security": view,
                "responses": {**REFUSED,
                    "200": {"description": "JPEG", "content": {"image/jpeg": {}}},
                    "404": _error("No such person, or no examples."),
                }}},
            "/api/people/{name}/examples": {"post": {
                "summary": "Add example photos (the person is created if new)",
                "description": "Each image must show one face, or one clearly the largest "
                               "(listed in `picked`), not cut by the edge, big, sharp and "
                               "frontal enough; the others are listed in `rejected` with "
                               "the reason.",
                "parameters": [NAME_PARAM, *flags], "security": change,
                "requestBody": _multipart("images", True, "One or more image files."),
                "responses": {
                    "200": _json("Enrolled", "At least one example added."),
                    "409": _error("`reason` \"exists\": the name is someone's already (send "
                                  "add=true); \"unlike\": the faces do not look like that "
                                  "person's (send force=true); nothing stored."),
                    "400": _error("Bad name, or no usable face in any image (with "
                                  "`rejected`); nothing stored."),
                    **REFUSED, **TOO_LARGE,
                }}},
            "/api/identify": {"post": {
                "summary": "Find and name the faces of one image", "security": view,
                "requestBody": _multipart("image", False, "One image file."),
                "responses": {
                    "200": _json("Identified", "The faces, in image pixels."),
                    "400": _error("Not an image we can decode."),
                    **REFUSED, **TOO_LARGE,
                }}},
        },
    }
