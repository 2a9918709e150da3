"""The REST API end to end: a real `facelive serve` subprocess, real models, LFW photos.

Every change route is tried without the token, with a wrong one and with bad input; each
refusal must leave the gallery exactly as it was.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from flask import Flask
from live_harness import LiveServer, live_client, live_server_fixture

from conftest import skip_or_fail
from facelive import __version__

# Small per-file limit for this server, so that the 413 test needs no huge file.
MAX_FILE_BYTES = 1_000_000
MAX_FILES = 20  # the default
ROUTES = {
    ("GET", "/api/health"), ("GET", "/api/openapi.json"), ("GET", "/api/people"),
    ("DELETE", "/api/people"), ("PATCH", "/api/people/{name}"),
    ("DELETE", "/api/people/{name}"), ("GET", "/api/people/{name}/thumbnail"),
    ("POST", "/api/people/{name}/examples"), ("POST", "/api/identify"),
}
BUSH = [f"George_W_Bush/George_W_Bush_{i:04d}.jpg" for i in range(1, 6)]
POWELL = [f"Colin_Powell/Colin_Powell_{i:04d}.jpg" for i in range(1, 4)]


server = live_server_fixture("rest-data", {"FACELIVE_MAX_IMAGE_BYTES": str(MAX_FILE_BYTES)})


@pytest.fixture(scope="module")
def photos(lfw_dir: Path, test_data: Path) -> dict[str, bytes]:
    out = {}
    for rel in [*BUSH, *POWELL]:
        out[Path(rel).name] = (lfw_dir / rel).read_bytes()
    couple = test_data / "group" / "couple.jpg"
    if not couple.is_file():
        skip_or_fail(f"group photo not found: {couple}")
    out["couple.jpg"] = couple.read_bytes()
    wall = np.full((240, 320, 3), 128, np.uint8)  # a plain grey picture: no face in it
    out["wall.jpg"] = cv2.imencode(".jpg", wall)[1].tobytes()
    return out


class Client:
    """requests against the server, with or without the token."""

    def __init__(self, server: LiveServer, token: str | None) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.server.http.request(method, self.server.url + path, headers=headers,
                                        verify=False, timeout=120, **kwargs)

    def add(self, name: str, files: list[tuple[str, bytes]], **flags: str) -> requests.Response:
        """flags: add="true" (to an existing person), force="true" (even if unlike)."""
        return self("POST", f"/api/people/{name}/examples", params=flags,
                    files=[("images", (f, data, "image/jpeg")) for f, data in files])


@pytest.fixture()
def admin(server: LiveServer) -> Iterator[Client]:
    """With the token; the gallery is empty before and after each test."""
    client = Client(server, server.token)
    assert client("DELETE", "/api/people").status_code == 200
    yield client
    client("DELETE", "/api/people")


def snapshot(server: LiveServer) -> tuple[Any, Any]:
    """What a refused request must not change: the people and the searched examples."""
    return server.get("/api/people").json(), server.get("/api/health").json()["gallery_size"]


def identify(server: LiveServer, data: bytes) -> dict[str, Any]:
    """With the view token: identifying is viewing."""
    response = server.http.post(server.url + "/api/identify", verify=False, timeout=120,
                                headers=server.viewer_headers,
                                files={"image": ("photo.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ the document
def test_openapi_document_lists_every_route(server: LiveServer) -> None:
    response = server.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == __version__
    documented = {(method.upper(), path)
                  for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    # The routes the blueprint really has (a bare app: only the URL map is wanted).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet's "deprecated" notice, on import
        from facelive.app.api import api
    app = Flask(__name__)
    app.register_blueprint(api)
    routed = {(method, rule.rule.replace("<name>", "{name}"))
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed == ROUTES
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("post", "patch", "delete") and path != "/api/identify":
                assert operation["security"] == [{"bearer": []}], (method, path)
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_health(server: LiveServer) -> None:
    health = server.get("/api/health").json()
    assert health["version"] == __version__
    assert health["embedder"] in ("facenet", "dlib-resnet")
    assert isinstance(health["gallery_size"], int)


# ------------------------------------------------------------------ the happy path
def test_enrol_list_thumbnail_identify_rename_delete_clear(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    files = [(f, photos[f]) for f in ("George_W_Bush_0001.jpg", "George_W_Bush_0002.jpg",
                                       "George_W_Bush_0003.jpg", "couple.jpg", "wall.jpg")]
    files.append(("notes.txt", b"not an image"))
    response = admin.add("George W Bush", files)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["name"] == "George W Bush" and answer["examples_added"] == 3
    rejected = {r["file"]: r["reason"] for r in answer["rejected"]}
    assert set(rejected) == {"couple.jpg", "wall.jpg", "notes.txt"}
    assert "2 faces" in rejected["couple.jpg"]
    assert rejected["wall.jpg"] == "no face found"
    assert "not a supported image" in rejected["notes.txt"]

    people = server.get("/api/people").json()["people"]
    assert [(p["name"], p["examples"]) for p in people] == [("George W Bush", 3)]
    assert server.get("/api/health").json()["gallery_size"] == 3
    thumb = server.get(people[0]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    crop = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None and min(crop.shape[:2]) >= 64
    # Names in URLs are matched ignoring case, and may hold any script.
    assert server.get("/api/people/george%20w%20bush/thumbnail").status_code == 200

    found = identify(server, photos["George_W_Bush_0005.jpg"])
    assert (found["width"], found["height"]) == (250, 250)
    [face] = found["faces"]
    assert face["name"] == "George W Bush" and 0 < face["confidence"] <= 1
    # A correct match reads as sure (it showed "24%" before issue 16): calibrated on LFW.
    if server.get("/api/health").json()["embedder"] == "dlib-resnet":
        assert face["confidence"] >= 0.9, face
    x, y, w, h = face["box"]
    assert 50 < x + w / 2 < 200 and 50 < y + h / 2 < 200 and len(face["landmarks"]) == 5
    assert identify(server, photos["Colin_Powell_0001.jpg"])["faces"][0]["name"] == "unknown"
    assert identify(server, photos["wall.jpg"])["faces"] == []

    powell = admin.add("Colin Powell", [(f, photos[f]) for f in
                                        ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg")])
    assert powell.status_code == 200 and powell.json()["examples_added"] == 2
    third = [("Colin_Powell_0003.jpg", photos["Colin_Powell_0003.jpg"])]
    asked = admin.add("colin powell", third)  # an existing name: asked first
    assert asked.status_code == 409 and asked.json()["reason"] == "exists", asked.text
    more = admin.add("colin powell", third, add="true")
    assert more.json()["name"] == "Colin Powell"  # the same person: stored spelling kept

    renamed = admin("PATCH", "/api/people/George%20W%20Bush", json={"name": "Zoë 李"})
    assert renamed.status_code == 200
    assert renamed.json() == {"name": "Zoë 李", "previous": "George W Bush"}
    assert identify(server, photos["George_W_Bush_0004.jpg"])["faces"][0]["name"] == "Zoë 李"
    taken = admin("PATCH", "/api/people/Zo%C3%AB%20%E6%9D%8E", json={"name": "COLIN POWELL"})
    assert taken.status_code == 409 and "already" in taken.json()["error"]

    people = server.get("/api/people").json()["people"]
    assert [(p["name"], p["examples"]) for p in people] == [("Colin Powell", 3), ("Zoë 李", 3)]

    gone = admin("DELETE", "/api/people/Zo%C3%AB%20%E6%9D%8E")
    assert gone.status_code == 200 and gone.json() == {"name": "Zoë 李", "examples_removed": 3}
    assert identify(server, photos["George_W_Bush_0004.jpg"])["faces"][0]["name"] == "unknown"
    assert admin("DELETE", "/api/people/Zo%C3%AB%20%E6%9D%8E").status_code == 404

    cleared = admin("DELETE", "/api/people")
    assert cleared.status_code == 200 and cleared.json() == {"people_removed": 1}
    assert snapshot(server) == ({"people": []}, 0)


def test_every_page_hears_of_a_change(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    async def scenario() -> tuple[str, Any]:
        async with live_client(server) as viewer:
            await viewer.hello()
            response = await asyncio.to_thread(
                admin.add, "Colin Powell", [("a.jpg", photos["Colin_Powell_0001.jpg"])]
            )
            assert response.status_code == 200
            return await viewer.next_notice(timeout=30)

    assert asyncio.run(scenario()) == ("people_changed", {"gallery_size": 1})


# ------------------------------------------------------------------ refusals
def test_changes_need_the_token_and_a_refusal_changes_nothing(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    assert admin.add("Colin Powell", [("a.jpg", photos["Colin_Powell_0001.jpg"])]).ok
    before = snapshot(server)
    image = [("images", ("b.jpg", photos["Colin_Powell_0002.jpg"], "image/jpeg"))]
    changes = [
        ("POST", "/api/people/Colin%20Powell/examples", {"files": image}),
        ("POST", "/api/people/Someone%20New/examples", {"files": image}),
        ("PATCH", "/api/people/Colin%20Powell", {"json": {"name": "Colin"}}),
        ("DELETE", "/api/people/Colin%20Powell", {}),
        ("DELETE", "/api/people", {}),
    ]
    anonymous = Client(server, None)
    for method, path, body in changes:
        for headers, status in (
            ({}, 401),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),  # another scheme: no token
            ({"Authorization": "Bearer"}, 401),
            ({"Authorization": "Bearer not-the-token"}, 403),
            ({"Authorization": f"Bearer {server.token}x"}, 403),
        ):
            response = anonymous(method, path, headers=headers, **body)
            assert response.status_code == status, (method, path, headers, response.text)
            assert response.json()["error"], response.text
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert snapshot(server) == before, (method, path, headers)
    # The view token reads, and changes nothing.
    viewer = Client(server, server.view_token)
    for method, path, body in changes:
        response = viewer(method, path, **body)
        assert response.status_code == 403, (method, path, response.text)
        assert "view token" in response.json()["error"]
        assert snapshot(server) == before
    assert viewer("GET", "/api/people").status_code == 200
    assert identify(server, photos["Colin_Powell_0003.jpg"])["faces"][0]["name"] == "Colin Powell"


def test_bad_input_is_400_with_a_reason_and_changes_nothing(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    assert admin.add("Colin Powell", [("a.jpg", photos["Colin_Powell_0001.jpg"])]).ok
    before = snapshot(server)
    one_face = [("b.jpg", photos["Colin_Powell_0002.jpg"])]
    cases = [
        (admin.add("unknown", one_face), "reserved"),
        (admin.add("Bell%07Name", one_face), "control"),
        (admin.add("%20%20", one_face), "empty"),
        (admin.add("x" * 101, one_face), "at most 100"),
        (admin.add("Nobody Usable", [("wall.jpg", photos["wall.jpg"]),
                                     ("couple.jpg", photos["couple.jpg"])]), "no example added"),
        (admin("POST", "/api/people/Anyone/examples"), "no file"),
        (admin("POST", "/api/people/Anyone/examples", data={"images": "text, not a file"}),
         "no file"),
        (admin("PATCH", "/api/people/Colin%20Powell", data="Colin"), "JSON"),
        (admin("PATCH", "/api/people/Colin%20Powell", json={"name": 5}), "JSON"),
        (admin("PATCH", "/api/people/Colin%20Powell", json=["Colin"]), "JSON"),
        (admin("PATCH", "/api/people/Colin%20Powell", json={"name": "a/b"}), "'/'"),
        (admin("PATCH", "/api/people/Colin%20Powell", json={"name": "Unknown"}), "reserved"),
        (admin("PATCH", "/api/people/Colin%20Powell",
               json={"name": "evil\u202egnp.exe"}), "invisible"),
    ]
    for response, reason in cases:
        assert response.status_code == 400, response.text
        assert reason in response.json()["error"], response.text
    unusable = cases[4][0].json()
    assert unusable["examples_added"] == 0 and len(unusable["rejected"]) == 2
    assert snapshot(server) == before

    anonymous = Client(server, server.view_token)  # identify is a read: the view token
    bad_images = [
        ({"image": ("x.jpg", b"not an image", "image/jpeg")}, "not a supported image"),
        ({"image": ("x.jpg", b"\xff\xd8" + b"\x00garbage" * 20, "image/jpeg")}, "JPEG"),
        ({"photo": ("x.jpg", photos["wall.jpg"], "image/jpeg")}, "no file"),
    ]
    for files, reason in bad_images:
        response = anonymous("POST", "/api/identify", files=files)
        assert response.status_code == 400 and reason in response.json()["error"], response.text
    assert anonymous("GET", "/api/people/Nobody/thumbnail").status_code == 404
    assert admin("PATCH", "/api/people/Nobody", json={"name": "X"}).status_code == 404
    missing = admin("DELETE", "/api/people/Nobody")
    assert missing.status_code == 404 and "Nobody" in missing.json()["error"]
    assert snapshot(server) == before


def test_upload_limits_are_413_and_change_nothing(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    before = snapshot(server)
    face = photos["Colin_Powell_0001.jpg"]
    too_many = admin.add("Colin Powell", [(f"{i}.jpg", face) for i in range(MAX_FILES + 1)])
    assert too_many.status_code == 413
    assert f"at most {MAX_FILES}" in too_many.json()["error"]
    # One file over the per-file limit spoils the whole request, good files included.
    big = face + b"\0" * MAX_FILE_BYTES  # a valid JPEG with trailing bytes
    too_big = admin.add("Colin Powell", [("a.jpg", face), ("big.jpg", big)])
    assert too_big.status_code == 413 and "big.jpg" in too_big.json()["error"]
    assert anonymous_identify_status(server, big) == 413
    assert snapshot(server) == before

    # A body announced as larger than the limit is refused before it is sent.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context,
                                             timeout=30)
    try:
        connection.putrequest("POST", "/api/people/Colin%20Powell/examples")
        connection.putheader("Authorization", f"Bearer {server.token}")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(10 * 2**30))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "upload too large" in response.read().decode()
    finally:
        connection.close()
    assert snapshot(server) == before


def anonymous_identify_status(server: LiveServer, data: bytes) -> int:
    response = server.http.post(server.url + "/api/identify", verify=False, timeout=120,
                                headers=server.viewer_headers,
                                files={"image": ("big.jpg", data, "image/jpeg")})
    return response.status_code


def test_unknown_api_routes_answer_json(server: LiveServer) -> None:
    missing = server.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]
    wrong = server.http.put(server.url + "/api/people", verify=False, timeout=30)
    assert wrong.status_code == 405 and wrong.json()["error"]


# ------------------------------------------------------------------ issue 16
def test_every_read_needs_a_token(server: LiveServer, admin: Client,
                                  photos: dict[str, bytes]) -> None:
    assert admin.add("Colin Powell", [("a.jpg", photos["Colin_Powell_0001.jpg"])]).ok
    thumbnail = server.get("/api/people").json()["people"][0]["thumbnail"]
    image = {"image": ("p.jpg", photos["Colin_Powell_0002.jpg"], "image/jpeg")}
    reads = [("GET", "/api/people", {}), ("GET", thumbnail, {}),
             ("POST", "/api/identify", {"files": image})]
    for token, status in ((None, 401), ("not-the-token", 403), (server.view_token, 200),
                          (server.token, 200)):
        for method, path, body in reads:
            response = Client(server, token)(method, path, **body)
            assert response.status_code == status, (token, path, response.text)
            if status == 401:
                assert "viewing needs a token" in response.json()["error"]
    # Health stays open (the Docker HEALTHCHECK) and names nobody.
    health = Client(server, None)("GET", "/api/health")
    assert health.status_code == 200 and "Colin" not in health.text


def test_an_existing_name_asks_and_unlike_faces_are_refused(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    bush = [(f, photos[f]) for f in BUSH[:3] for f in [Path(f).name]]
    assert admin.add("George W Bush", bush).ok
    before = snapshot(server)
    stranger = [(f, photos[Path(f).name]) for f in POWELL]
    asked = admin.add("george w bush", stranger)
    assert asked.status_code == 409, asked.text
    body = asked.json()
    assert body["reason"] == "exists" and body["name"] == "George W Bush"
    assert "already in the gallery (3 examples)" in body["error"]
    assert snapshot(server) == before
    # Confirmed as the same person, but the faces are another man's: refused again.
    unlike = admin.add("George W Bush", stranger, add="true")
    assert unlike.status_code == 409, unlike.text
    body = unlike.json()
    assert body["reason"] == "unlike" and body["unlike"] == 3 and body["faces"] == 3
    assert body["closest_distance"] > body["threshold"]
    assert "someone else" in body["error"]
    assert snapshot(server) == before
    # His own new photos join him without a question beyond add=true.
    own = admin.add("George W Bush", [("4.jpg", photos["George_W_Bush_0004.jpg"])], add="true")
    assert own.status_code == 200 and own.json()["examples_added"] == 1, own.text
    # And force=true stores even unlike faces: the owner said so.
    forced = admin.add("George W Bush", stranger[:1], add="true", force="true")
    assert forced.status_code == 200, forced.text
    assert admin.add("Anyone", stranger[:1], add="maybe").status_code == 400


def test_lookalike_warnings_are_one_line(
    server: LiveServer, admin: Client, photos: dict[str, bytes]
) -> None:
    assert admin.add("George W Bush", [("1.jpg", photos["George_W_Bush_0001.jpg"])]).ok
    twin = admin.add("Not Bush", [(f"{i}.jpg", photos[f"George_W_Bush_000{i}.jpg"])
                                  for i in (2, 3, 4)])
    assert twin.status_code == 200, twin.text
    body = twin.json()
    assert len(body["warnings"]) == 3  # the details, one per image
    summary = body["lookalike_summary"]
    assert summary.startswith("All 3 faces look like George W Bush (closest distance 0.")
    assert "\n" not in summary and summary.count("George W Bush") == 1
    mixed = admin.add("Wall", [("wall.jpg", photos["wall.jpg"]), ("n.txt", b"not an image"),
                               ("w2.jpg", photos["wall.jpg"])])
    assert mixed.status_code == 400
    error = mixed.json()["error"]
    assert error.startswith("no example added: All 3 images not used: no face found (2), ")
    assert error.count("no face found") == 1 and "\n" not in error
