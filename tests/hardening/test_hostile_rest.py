"""Hostile input against every REST route of one real `facelive serve` (real models, HTTPS).

Property-based (hypothesis): random methods, paths, bodies, names and images, with no token, a
wrong token and the right one; and over-long URLs. Whatever comes in, the server must never
answer 5xx and must stay alive; a request without a valid token, or one refused, must never
change the gallery; a name the gallery rules refuse must be answered 4xx even with the token.
Every hostile request is counted in tally.TALLY (see test_hostile_total.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally import TALLY

from facelive.app.server import MAX_URL_BYTES
from facelive.recognition.names import InvalidName, validate_name

# The harness lives beside the app tests (a module, not a package: see its docstring).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from live_harness import LiveServer, start_server, stop_server  # noqa: E402

# A small per-file limit, so that "oversize" needs only a few hundred kB per request.
MAX_FILE_BYTES = 200_000
SEED = "Seed Person"  # enrolled once; every unauthorised request must leave it in place
FACE = "lfw/George_W_Bush/George_W_Bush_0001.jpg"
HOSTILE_NAMES = [
    "../../etc", "../../etc/passwd", "..\\..\\windows", "a\x00b", "\x00", "evil\u202egnp.exe",
    "'; DROP TABLE people;--", "Robert'); DELETE FROM examples;--", "x" * 10_000, "",
    "   ", "unknown", "UNKNOWN", "%2e%2e%2f", "a/b", "\u200b", "\ufeffbom", "line\nbreak",
    "<script>alert(1)</script>", "\ud7ff", "名字", "Zoë", "a" * 101, "?q=1#frag", ".", "..",
]
HOSTILE_SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])
CHANNEL = "REST"


@pytest.fixture(scope="module")
def server(models_dir: Path, test_data: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(models_dir, tmp_path_factory.mktemp("hostile-rest"),
                        env={"FACELIVE_MAX_IMAGE_BYTES": str(MAX_FILE_BYTES)})
    try:
        face = (test_data / FACE).read_bytes()
        added = call(live, "POST", f"/api/people/{quote(SEED)}/examples", live.token,
                     files=[("images", ("face.jpg", face, "image/jpeg"))])
        assert added.status_code == 200, added.text
        start = who(live)
        yield live
        check_at_the_end(live, start)
    finally:
        stop_server(live)


def who(server: LiveServer) -> list[tuple[str, int]]:
    """The gallery as (name, examples): what a token example may change, then restore."""
    return [(p["name"], p["examples"]) for p in gallery(server)["people"]]


def check_at_the_end(server: LiveServer, start: list[tuple[str, int]]) -> None:
    """Alive and answering after everything, with the gallery it started with."""
    TALLY.finished.add(CHANNEL)  # counted in the figure, whatever follows
    alive = server.proc.poll() is None
    if alive:
        try:
            alive = server.get("/api/health").status_code == 200
        except requests.RequestException:
            alive = False
    TALLY.crashes += not alive
    assert alive, "the server died or stopped answering:\n" + "\n".join(server.output[-30:])
    assert not changed(start, who(server)), "the gallery did not end as it started"
    print(f"\nhostile REST: {TALLY.inputs[CHANNEL]} requests")


class Photo(bytes):
    """Bytes with a short repr: hypothesis prints every argument of a failing example."""

    def __repr__(self) -> str:
        return f"<{len(self)}-byte JPEG>"


@pytest.fixture(scope="module")
def face_jpeg(test_data: Path) -> bytes:
    return Photo((test_data / FACE).read_bytes())


def segment(name: str) -> str:
    """A name as one URL path segment. Dots too are escaped: urllib3 would otherwise resolve a
    bare "." or ".." segment client-side, and the server would never see it."""
    return quote(name, safe="").replace(".", "%2E")


def call(server: LiveServer, method: str, path: str, token: str | None,
         **kwargs: Any) -> requests.Response:
    """One request; `path` must already be percent-encoded (so that requests/urllib3 does not
    resolve ../ segments client-side: the server has to see them)."""
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return server.http.request(method, server.url + path, headers=headers, verify=False,
                               timeout=120, **kwargs)


def hostile(server: LiveServer, method: str, path: str, token: str | None,
            **kwargs: Any) -> requests.Response:
    """A hostile request: `call`, counted."""
    TALLY.sent(CHANNEL)
    return call(server, method, path, token, **kwargs)


def changed(before: Any, after: Any) -> bool:
    """Compare galleries, counting a change (the assertion that follows fails the test)."""
    if before != after:
        TALLY.gallery_changes += 1
    return before != after


def gallery(server: LiveServer) -> Any:
    response = server.get("/api/people")
    assert response.status_code == 200, response.text
    return response.json()


def assert_sane(server: LiveServer, response: requests.Response, what: str) -> None:
    """Never a 5xx; the process still runs; an /api error is JSON {error}."""
    TALLY.http_5xx += response.status_code >= 500
    assert response.status_code < 500, f"{what} -> {response.status_code}: {response.text[:300]}"
    assert server.proc.poll() is None, f"server died after {what}:\n" + "\n".join(
        server.output[-30:])
    # Under /api (as sent: urllib3 may have resolved "../" segments away) every refusal is
    # JSON {error}, which the page and scripts rely on. Except where eventlet's HTTP server
    # refuses before Flask sees the request, with no body: a URL over MAX_URL_BYTES (414), a
    # header line over 8 kB (431).
    path = response.request.path_url or ""
    eventlet_refusal = (response.status_code == 431
                        or (response.status_code == 414 and len(path) >= MAX_URL_BYTES - 20))
    if response.status_code >= 400 and not eventlet_refusal and path.startswith("/api"):
        assert response.headers.get("content-type", "").startswith("application/json"), (
            what, response.status_code, response.text[:200])
        assert "error" in response.json(), response.text[:300]


def name_is_valid(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidName:
        return False
    return True


def restore(server: LiveServer, face: bytes) -> None:
    """Back to exactly the seed person after a token example that legitimately changed things
    (a valid odd name is allowed to be enrolled or renamed to)."""
    if who(server) == [(SEED, 1)]:
        return
    assert call(server, "DELETE", "/api/people", server.token).status_code == 200
    added = call(server, "POST", f"/api/people/{quote(SEED)}/examples", server.token,
                 files=[("images", ("face.jpg", face, "image/jpeg"))])
    assert added.status_code == 200, added.text


# ------------------------------------------------------------------ strategies
names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=40),
                  st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300))


def _images(face: bytes) -> st.SearchStrategy[bytes]:
    noise = cv2.imencode(".png", np.random.default_rng(0).integers(
        0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes()
    return st.one_of(
        st.binary(max_size=2048),
        st.just(b""),
        st.just(face[: len(face) // 3]),  # a truncated JPEG: the header parses, the rest not
        st.just(b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff" + b"\x00" * 64),  # 65535^2 px
        st.just(noise),  # a valid image with no face
        st.just(b"\x00" * (MAX_FILE_BYTES + 1)),  # one byte over the per-file limit
        st.binary(min_size=1, max_size=64).map(lambda b: b"\xff\xd8" + b),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def requests_(draw: st.DrawFn, face: bytes) -> tuple[str, str, dict[str, Any], str]:
    """(method, encoded path, requests kwargs, the raw name in it) for a random route."""
    name = draw(names)
    encoded = segment(name) if draw(st.booleans()) else quote(name, safe="/.")
    route = draw(st.sampled_from([
        "examples", "identify", "rename", "delete", "clear", "thumbnail", "people", "health",
        "openapi", "random",
    ]))
    image = draw(_images(face))
    kwargs: dict[str, Any] = {}
    if route == "examples":
        field = draw(st.sampled_from(["images", "image", "x"]))
        count = draw(st.integers(0, 3))
        kwargs["files"] = [(field, (draw(st.text(max_size=30)) or "f.jpg", image,
                                    draw(st.sampled_from(["image/jpeg", "text/plain"]))))
                           for _ in range(count)]
        if draw(st.booleans()):
            kwargs["data"] = {"name": draw(st.text(max_size=20))}
        return "POST", f"/api/people/{encoded}/examples", kwargs, name
    if route == "identify":
        kind = draw(st.sampled_from(["file", "raw", "json", "many"]))
        if kind == "file":
            kwargs["files"] = {"image": ("x.jpg", image, "image/jpeg")}
        elif kind == "many":
            kwargs["files"] = [("image", ("x.jpg", image, "image/jpeg"))] * 3
        elif kind == "raw":
            kwargs["data"] = image
        else:
            kwargs["json"] = draw(json_values)
        return "POST", "/api/identify", kwargs, name
    if route == "rename":
        body = draw(st.one_of(
            json_values, st.fixed_dictionaries({"name": names}),
            st.fixed_dictionaries({"name": json_values}),
        ))
        raw = draw(st.sampled_from(["json", "garbage", "huge"]))
        if raw == "json":
            kwargs["json"] = body
        elif raw == "garbage":
            kwargs["data"] = image
            kwargs["headers"] = {"Content-Type": "application/json"}
        else:
            kwargs["data"] = json.dumps({"name": "x" * (MAX_FILE_BYTES + 10)})
            kwargs["headers"] = {"Content-Type": "application/json"}
        target = draw(st.sampled_from([encoded, quote(SEED)]))
        return "PATCH", f"/api/people/{target}", kwargs, name
    if route == "delete":
        return "DELETE", f"/api/people/{encoded}", kwargs, name
    if route == "clear":
        return "DELETE", "/api/people", kwargs, name
    if route == "thumbnail":
        return "GET", f"/api/people/{encoded}/thumbnail", kwargs, name
    if route == "people":
        return draw(st.sampled_from(["GET", "POST", "PUT", "PATCH"])), "/api/people", kwargs, name
    if route == "health":
        return draw(st.sampled_from(["GET", "POST", "DELETE"])), "/api/health", kwargs, name
    if route == "openapi":
        return "GET", "/api/openapi.json", kwargs, name
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
    return method, f"/api/{encoded}", kwargs, name


# ------------------------------------------------------------------ properties
VIEW_TOKEN = "<the view token>"


@st.composite
def _unauthorised(draw: st.DrawFn, face: bytes) -> tuple[tuple[str, str, dict, str], str | None]:
    # VIEW_TOKEN: the server's real read-only token, which must change nothing either.
    token = draw(st.sampled_from([None, "wrong", "", "Bearer", "x" * 5000, "tok\xe9n",
                                  VIEW_TOKEN]))
    return draw(requests_(face)), token


def test_no_token_never_changes_the_gallery(server: LiveServer, face_jpeg: bytes) -> None:
    before = gallery(server)
    assert [p["name"] for p in before["people"]] == [SEED]

    @HOSTILE_SETTINGS
    @given(case=_unauthorised(face_jpeg))
    def check(case: tuple[tuple[str, str, dict, str], str | None]) -> None:
        (method, path, kwargs, _name), token = case
        if token == VIEW_TOKEN:
            token = server.view_token
        response = hostile(server, method, path, token, **kwargs)
        assert_sane(server, response, f"{method} {path[:120]} token={token!r:.20}")
        if method in ("POST", "PATCH", "DELETE", "PUT") and path != "/api/identify":
            # Refused or unrouted, never done.
            assert response.status_code >= 400, f"{method} {path[:120]}: {response.text[:200]}"
        assert not changed(before, gallery(server)), f"{method} {path[:120]} changed the gallery"

    check()


def test_with_token_hostile_input_is_refused_not_crashing(
    server: LiveServer, face_jpeg: bytes
) -> None:
    @settings(HOSTILE_SETTINGS, max_examples=200)
    @given(case=requests_(face_jpeg))
    def check(case: tuple[str, str, dict, str]) -> None:
        method, path, kwargs, name = case
        before = gallery(server)
        response = hostile(server, method, path, server.token, **kwargs)
        assert_sane(server, response, f"{method} {path[:120]} (token)")
        if "/people/" in path and path.endswith("/examples") and not name_is_valid(name):
            assert 400 <= response.status_code < 500, (name[:80], response.text[:200])
        if response.status_code >= 400:  # refused: nothing may have changed
            assert not changed(before, gallery(server)), f"{method} {path[:120]} (token)"
        restore(server, face_jpeg)

    check()


@settings(HOSTILE_SETTINGS, max_examples=len(HOSTILE_NAMES) + 30)
@given(name=st.one_of(st.sampled_from(HOSTILE_NAMES), names))
def test_hostile_names_with_a_real_face_are_refused(
    server: LiveServer, face_jpeg: bytes, name: str
) -> None:
    """A real face, so that only the name can be the reason for a refusal: an invalid name is
    4xx and stores nothing; a valid one is stored under exactly that (normalised) name."""
    response = hostile(server, "POST", f"/api/people/{segment(name)}/examples", server.token,
                       files=[("images", ("face.jpg", face_jpeg, "image/jpeg"))])
    assert_sane(server, response, f"enrol {name[:80]!r}")
    people = [p["name"] for p in gallery(server)["people"]]
    if name_is_valid(name):
        assert response.status_code == 200, (name[:80], response.text[:200])
        assert validate_name(name) in people and SEED in people
    else:
        assert 400 <= response.status_code < 500, (name[:80], response.text[:200])
        assert not changed([SEED], people), f"{name[:80]!r} was stored"
    restore(server, face_jpeg)


def test_oversize_bodies_are_413_and_change_nothing(server: LiveServer) -> None:
    before = gallery(server)
    big = b"\xff\xd8" + b"\x00" * (MAX_FILE_BYTES * 25)  # over every per-request limit
    for path, field in (("/api/identify", "image"),
                        (f"/api/people/{quote('Big One')}/examples", "images")):
        response = hostile(server, "POST", path, server.token,
                           files=[(field, ("big.jpg", big, "image/jpeg"))])
        assert_sane(server, response, f"oversize POST {path}")
        assert response.status_code == 413, response.text[:200]
    assert not changed(before, gallery(server))


@pytest.mark.parametrize("token", [None, "right"])
@pytest.mark.parametrize(("method", "route"), [
    ("GET", "/api/people/{}/thumbnail"), ("POST", "/api/people/{}/examples"),
    ("PATCH", "/api/people/{}"), ("DELETE", "/api/people/{}"), ("GET", "/api/{}"),
])
def test_a_10_kb_url_gets_a_json_4xx(
    server: LiveServer, token: str | None, method: str, route: str
) -> None:
    """A URL far longer than any name (10 kB; a name is at most 100 characters) reaches the app
    and is refused like any bad name: 4xx with JSON {error}, not eventlet's empty 414."""
    before = gallery(server)
    path = route.format("x" * 10_000)
    response = hostile(server, method, path, server.token if token else None,
                       json={"name": "y"} if method == "PATCH" else None)
    assert_sane(server, response, f"{method} of a {len(path)}-byte URL")
    assert 400 <= response.status_code < 500 and response.status_code != 414, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]
    assert not changed(before, gallery(server))


def test_a_url_over_the_request_line_limit_is_414(server: LiveServer) -> None:
    """Over MAX_URL_BYTES eventlet refuses the request line itself; the server goes on."""
    before = gallery(server)
    response = hostile(server, "DELETE", "/api/people/" + "x" * MAX_URL_BYTES, server.token)
    assert_sane(server, response, "an over-limit URL")
    assert response.status_code == 414
    assert server.get("/api/health").status_code == 200
    assert not changed(before, gallery(server))


def test_no_exception_was_logged(server: LiveServer) -> None:
    """Every hostile request above was refused by a check: no traceback in the server's log."""
    logged = "\n".join(server.output)
    assert "Traceback" not in logged and "Exception on " not in logged, logged[-3000:]
