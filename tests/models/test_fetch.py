"""The model store's web fetch, against a local HTTP server imitating the real hosts.

The server (ThreadingHTTPServer on 127.0.0.1, a random port) plays raw.githubusercontent.com
under /gh (serving the real MTCNN det*.npy files from FACELIVE_MODELS_SOURCE) and Google Drive
under /drive and /usercontent (drive.usercontent.google.com): the "can't scan for viruses" page
in both known variants, then a small zip holding 20180402-114759/20180402-114759.pb. The real
.pb cannot be had here, so the FaceNet manifest entry is re-pointed at the test's own bytes.
`fetch_models` gets the URL rewrite map and the entries as parameters: the real downloader
code runs, nothing is monkeypatched, and nothing reaches the real network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import threading
import time
import zipfile
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import MODELS_SOURCE
from facelive.models import download, store
from facelive.models.fetch import exit_status, fetch_models, missing_required
from facelive.models.manifest import (
    DLIB_RESNET_FILES,
    FACENET_DRIVE_ID,
    FACENET_FILES,
    MTCNN_FILES,
    MTCNN_PYPI_FILES,
    MTCNN_URL_BASE,
    ModelFile,
)

GH_PATH = "/gh" + urlsplit(MTCNN_URL_BASE).path
DRIVE_TOKEN = "Xk3_-confirmTOKEN9"
DRIVE_UUID = "5e0c7a52-aaaa-4bbb-8ccc-0123456789ab"
WARNING_COOKIE = f"download_warning_13058876669334088843_{FACENET_DRIVE_ID}"
MEMBER = FACENET_FILES[0].archive_member
assert MEMBER is not None

# The test's stand-in for the real 20180402-114759.pb: random (so incompressible) bytes.
PB_BYTES = random.Random(20180402).randbytes(300_000)
FACENET_TEST_ENTRY = dataclasses.replace(
    FACENET_FILES[0], sha256=hashlib.sha256(PB_BYTES).hexdigest(), size=len(PB_BYTES)
)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


FACENET_ZIP = _zip(
    {
        MEMBER: PB_BYTES,
        "20180402-114759/model-20180402-114759.meta": b"meta graph " * 100,
        # A hostile name: fetch must never write anything but the wanted member.
        "../escaped.txt": b"outside the target",
    }
)

DRIVE_FORM_PAGE = f"""<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan
this file for viruses.</p><p class="uc-warning-subcaption"><span class="uc-name-size">
<a href="/open?id={FACENET_DRIVE_ID}">20180402-114759.zip</a> (180M)</span> is too large for
Google to scan for viruses. Would you still like to download this file?</p>
<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download
anyway"/><input type="hidden" name="id" value="{FACENET_DRIVE_ID}"><input type="hidden"
name="export" value="download"><input type="hidden" name="confirm" value="t"><input
type="hidden" name="uuid" value="{DRIVE_UUID}"></form></div></div></body></html>"""

DRIVE_LINK_PAGE = f"""<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning
</title></head><body><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan
this file for viruses.</p><a id="uc-download-link" class="goog-inline-block jfk-button"
href="/uc?export=download&amp;confirm={DRIVE_TOKEN}&amp;id={FACENET_DRIVE_ID}">Download
anyway</a></div></body></html>"""

DRIVE_COOKIE_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning
</title></head><body><p>Google Drive can't scan this file for viruses.</p></body></html>"""

DRIVE_QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title>
</head><body><p>Sorry, you can't view or download this file at this time.</p><p>Too many users
have viewed or downloaded this file recently. Please try accessing the file again later.</p>
</body></html>"""

LOGIN_PAGE = b"""<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>
<body><form action="/login" method="post"></form></body></html>"""


@dataclasses.dataclass
class FakeHosts:
    """State of the fake hosts; tests set the behaviour, then read `requests`."""

    base: str = ""
    github: dict[str, bytes] = dataclasses.field(default_factory=dict)
    # det name -> ok | corrupt | html | oversize | oversize-declared | truncate | stall
    github_mode: dict[str, str] = dataclasses.field(default_factory=dict)
    # form | link | cookie | quota | loop
    drive_variant: str = "form"
    requests: list[str] = dataclasses.field(default_factory=list)
    release: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def rewrites(self) -> dict[str, str]:
        return {
            "https://raw.githubusercontent.com": f"{self.base}/gh",
            "https://drive.google.com": f"{self.base}/drive",
            "https://drive.usercontent.google.com": f"{self.base}/usercontent",
        }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, and a body may end by closing it.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def hosts(self) -> FakeHosts:
        return self.server.hosts  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self.hosts.requests.append(self.path)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        try:
            if parts.path.startswith(GH_PATH):
                self._github(parts.path[len(GH_PATH) :])
            elif parts.path == "/drive/uc":
                self._drive_uc(query)
            elif parts.path == "/usercontent/download":
                self._usercontent(query)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should for oversize answers

    def _send(self, body: bytes, ctype: str, length: int | None = None, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _github(self, name: str) -> None:
        if name not in self.hosts.github:
            self.send_error(404)
            return
        data = self.hosts.github[name]
        mode = self.hosts.github_mode.get(name, "ok")
        binary = "application/octet-stream"
        if mode == "ok":
            self._send(data, binary, len(data))
        elif mode == "corrupt":
            flipped = bytearray(data)
            flipped[len(data) // 2] ^= 0xFF
            self._send(bytes(flipped), binary, len(data))
        elif mode == "html":
            # Declared as plain text, as raw.githubusercontent.com does: caught by sniffing.
            self._send(LOGIN_PAGE, "text/plain; charset=utf-8", len(LOGIN_PAGE))
        elif mode == "oversize":
            # No Content-Length: the body only ends when the server closes the connection.
            self._send(data * 20, binary)
        elif mode == "oversize-declared":
            self._send(data + data, binary, 2 * len(data))
        elif mode == "truncate":
            self._send(data[: len(data) // 2], binary, len(data))
        elif mode == "stall":
            self._send(data[: len(data) // 2], binary, len(data))
            self.wfile.flush()
            self.hosts.release.wait(10)

    def _drive_page(self, page: str, cookie: bool) -> None:
        extra = {"Set_Cookie": f"{WARNING_COOKIE}={DRIVE_TOKEN}; Path=/; HttpOnly"}
        body = page.encode()
        self._send(body, "text/html; charset=utf-8", len(body), **(extra if cookie else {}))

    def _send_zip(self) -> None:
        self._send(
            FACENET_ZIP,
            "application/octet-stream",
            len(FACENET_ZIP),
            Content_Disposition='attachment; filename="20180402-114759.zip"',
        )

    def _drive_uc(self, query: dict[str, str]) -> None:
        if query.get("id") != FACENET_DRIVE_ID or query.get("export") != "download":
            self.send_error(404)
            return
        variant = self.hosts.drive_variant
        if variant == "form":
            # Today's Drive sends uc links on to drive.usercontent.google.com.
            self.send_response(303)
            self.send_header(
                "Location",
                f"https://drive.usercontent.google.com/download?id={FACENET_DRIVE_ID}"
                "&export=download",
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif variant == "quota":
            self._drive_page(DRIVE_QUOTA_PAGE, cookie=False)
        elif variant == "loop":
            self._drive_page(DRIVE_LINK_PAGE, cookie=True)
        elif query.get("confirm") == DRIVE_TOKEN and self._has_warning_cookie():
            self._send_zip()
        else:
            page = DRIVE_LINK_PAGE if variant == "link" else DRIVE_COOKIE_PAGE
            self._drive_page(page, cookie=True)

    def _has_warning_cookie(self) -> bool:
        return f"{WARNING_COOKIE}={DRIVE_TOKEN}" in (self.headers.get("Cookie") or "")

    def _usercontent(self, query: dict[str, str]) -> None:
        confirmed = query.get("confirm") == "t" and query.get("uuid") == DRIVE_UUID
        if query.get("id") == FACENET_DRIVE_ID and confirmed:
            self._send_zip()
        else:
            self._drive_page(DRIVE_FORM_PAGE, cookie=False)


@pytest.fixture()
def hosts() -> Iterator[FakeHosts]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = FakeHosts(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.hosts = state  # type: ignore[attr-defined]
    # Filler for the failure-mode tests, which need no real weights.
    state.github = {Path(e.relpath).name: bytes(e.size or 0) for e in MTCNN_FILES}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def mtcnn_bytes() -> dict[str, bytes]:
    """The real det*.npy files, as raw.githubusercontent.com would serve them."""
    if MODELS_SOURCE is None:
        pytest.skip("FACELIVE_MODELS_SOURCE (../shared/models) not found: no MTCNN files")
    files = {}
    for entry in MTCNN_FILES:
        path = MODELS_SOURCE / "mtcnn" / Path(entry.relpath).name
        if not path.is_file():
            pytest.skip(f"{path} not found")
        files[path.name] = path.read_bytes()
    return files


def _quiet(_msg: str) -> None:
    pass


def _all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _fetch(models_dir: Path, hosts: FakeHosts, files: tuple[ModelFile, ...], **kw: object):
    kw.setdefault("log", _quiet)
    return fetch_models(models_dir, files=files, rewrites=hosts.rewrites, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- happy paths


def test_mtcnn_downloaded_from_github_then_rerun_is_a_noop(
    tmp_path: Path, hosts: FakeHosts, mtcnn_bytes: dict[str, bytes]
) -> None:
    hosts.github = dict(mtcnn_bytes)
    models_dir = tmp_path / "models"
    seen: list[tuple[str, int, int | None]] = []
    report = _fetch(
        models_dir,
        hosts,
        MTCNN_FILES,
        progress=lambda rp, done, total: seen.append((rp, done, total)),
    )

    for entry in MTCNN_FILES:
        outcome = report[entry.relpath]
        assert outcome.state == "installed", outcome
        assert outcome.detail == f"downloaded from {entry.urls[0]}"
        assert (models_dir / entry.relpath).read_bytes() == mtcnn_bytes[Path(entry.relpath).name]
        finals = [s for s in seen if s[0] == entry.relpath]
        assert finals[-1][1:] == (entry.size, entry.size)
    assert _all_files(models_dir) == {e.relpath for e in MTCNN_FILES}
    assert store.model_state(models_dir, "mtcnn") == "present"
    assert len(hosts.requests) == 3

    again = _fetch(models_dir, hosts, MTCNN_FILES)
    assert [o.state for o in again.files] == ["present"] * 3
    assert len(hosts.requests) == 3, "a re-run must not download present files"


@pytest.mark.parametrize("variant", ["form", "link", "cookie"])
def test_facenet_zip_from_drive_past_the_virus_scan_page(
    tmp_path: Path, hosts: FakeHosts, variant: str
) -> None:
    hosts.drive_variant = variant
    models_dir = tmp_path / "models"
    report = _fetch(models_dir, hosts, (FACENET_TEST_ENTRY,))

    outcome = report[FACENET_TEST_ENTRY.relpath]
    assert outcome.state == "installed", outcome
    assert (models_dir / FACENET_TEST_ENTRY.relpath).read_bytes() == PB_BYTES
    # Only the wanted member was written: no archive, no other member, nothing escaped.
    assert _all_files(models_dir) == {FACENET_TEST_ENTRY.relpath}
    assert not (tmp_path / "escaped.txt").exists()
    assert not (models_dir / "facenet" / "escaped.txt").exists()
    # The confirmation was actually needed and submitted.
    if variant == "form":
        assert any(f"uuid={DRIVE_UUID}" in r and "confirm=t" in r for r in hosts.requests)
    else:
        assert any(f"confirm={DRIVE_TOKEN}" in r for r in hosts.requests)
    assert len(hosts.requests) == 3 if variant == "form" else 2


def test_fetch_order_source_then_package_then_web(
    tmp_path: Path, hosts: FakeHosts, mtcnn_bytes: dict[str, bytes]
) -> None:
    hosts.github = dict(mtcnn_bytes)
    source = tmp_path / "source"
    (source / "mtcnn").mkdir(parents=True)
    (source / "mtcnn" / "det1.npy").write_bytes(mtcnn_bytes["det1.npy"])
    # A damaged local copy is skipped (and said so), and the web copy used instead.
    (source / "det2.npy").write_bytes(mtcnn_bytes["det2.npy"][:-1] + b"\0")
    files = MTCNN_FILES + MTCNN_PYPI_FILES + (FACENET_TEST_ENTRY,) + DLIB_RESNET_FILES
    models_dir = tmp_path / "models"
    lines: list[str] = []

    report = _fetch(models_dir, hosts, files, source=source, log=lines.append)

    det1, det2, det3 = (report[e.relpath] for e in MTCNN_FILES)
    assert det1.detail == f"copied from {source / 'mtcnn' / 'det1.npy'}"
    assert det2.state == "installed" and det2.detail.startswith("downloaded from https://raw.")
    assert "det2.npy is not the expected file" in det2.errors[0]
    assert det3.detail.startswith("downloaded from")
    for entry in MTCNN_PYPI_FILES:
        assert report[entry.relpath].detail == "copied from installed package mtcnn"
    dlib = report[DLIB_RESNET_FILES[0].relpath]
    assert dlib.detail == "copied from installed package face_recognition_models"
    assert (
        report[FACENET_TEST_ENTRY.relpath].detail == f"downloaded from {FACENET_TEST_ENTRY.urls[0]}"
    )
    assert not report.not_ok
    assert exit_status(models_dir) == 0
    assert "model facenet: present" in lines

    requests = len(hosts.requests)
    again = _fetch(models_dir, hosts, files, source=source)
    assert {o.state for o in again.files} == {"present"}
    assert len(hosts.requests) == requests


def test_offline_never_connects_and_required_models_are_reported(
    tmp_path: Path, hosts: FakeHosts
) -> None:
    models_dir = tmp_path / "models"
    report = _fetch(models_dir, hosts, MTCNN_FILES + (FACENET_TEST_ENTRY,), offline=True)
    assert {o.state for o in report.files} == {"missing"}
    assert all("offline" in o.detail for o in report.files)
    assert hosts.requests == []
    assert missing_required(models_dir) == ["mtcnn or mtcnn-pypi", "dlib-resnet"]
    assert exit_status(models_dir) == 1


def test_facenet_missing_is_reported_but_not_required(tmp_path: Path, hosts: FakeHosts) -> None:
    hosts.drive_variant = "quota"
    models_dir = tmp_path / "models"
    lines: list[str] = []
    files = MTCNN_PYPI_FILES + (FACENET_TEST_ENTRY,) + DLIB_RESNET_FILES
    report = _fetch(models_dir, hosts, files, log=lines.append)

    facenet = report[FACENET_TEST_ENTRY.relpath]
    assert facenet.state == "failed"
    assert "HTML page ('Google Drive - Quota exceeded')" in facenet.detail
    assert "quota" in facenet.detail and "FACELIVE_MODELS_SOURCE" in facenet.detail
    assert report.failed == (facenet,)
    assert ("model facenet: missing (optional: FaceNet 2018; without it auto takes fused with "
            "FaceNet 2017, else dlib-resnet)") in lines
    assert not any(line.startswith("REQUIRED") for line in lines)
    assert exit_status(models_dir) == 0
    assert _all_files(models_dir) == {e.relpath for e in MTCNN_PYPI_FILES + DLIB_RESNET_FILES}


# ---------------------------------------------------------------------------- failures


def _fetch_det1(tmp_path: Path, hosts: FakeHosts, mode: str, **kw: object):
    hosts.github_mode["det1.npy"] = mode
    models_dir = tmp_path / "models"
    report = _fetch(models_dir, hosts, MTCNN_FILES[:1], **kw)
    outcome = report[MTCNN_FILES[0].relpath]
    assert outcome.state == "failed"
    # Whatever went wrong, nothing is left that could look like the file (no temp either).
    assert _all_files(models_dir) == set()
    return outcome


def test_corrupt_download_is_reported_and_not_installed(tmp_path: Path, hosts: FakeHosts) -> None:
    outcome = _fetch_det1(tmp_path, hosts, "corrupt")
    assert "does not match the expected" in outcome.detail
    assert MTCNN_FILES[0].sha256 in outcome.detail


def test_html_instead_of_the_file_is_a_clear_error(tmp_path: Path, hosts: FakeHosts) -> None:
    outcome = _fetch_det1(tmp_path, hosts, "html")
    assert "answered with an HTML page ('Sign in to the network') instead of the file" in (
        outcome.detail
    )


def test_server_sending_more_than_the_size_is_stopped(tmp_path: Path, hosts: FakeHosts) -> None:
    seen: list[int] = []
    outcome = _fetch_det1(
        tmp_path, hosts, "oversize", progress=lambda _rp, done, _total: seen.append(done)
    )
    size = MTCNN_FILES[0].size
    assert size is not None
    assert f"more than {size} bytes arrived" in outcome.detail
    # Never more than the cap was kept (one byte past it is read, to prove the excess).
    assert all(done <= size for done in seen)


def test_announced_oversize_is_refused_before_reading(tmp_path: Path, hosts: FakeHosts) -> None:
    seen: list[int] = []
    outcome = _fetch_det1(
        tmp_path,
        hosts,
        "oversize-declared",
        progress=lambda _rp, done, _total: seen.append(done),
    )
    assert "announces" in outcome.detail
    assert seen == []


def test_interrupted_download_leaves_nothing_complete(tmp_path: Path, hosts: FakeHosts) -> None:
    outcome = _fetch_det1(tmp_path, hosts, "truncate")
    assert "connection closed after" in outcome.detail


def test_stalled_download_times_out(tmp_path: Path, hosts: FakeHosts) -> None:
    started = time.monotonic()
    outcome = _fetch_det1(tmp_path, hosts, "stall", timeout=0.5)
    assert "timed out" in outcome.detail
    assert time.monotonic() - started < 5


def test_drive_that_keeps_asking_for_confirmation_fails(tmp_path: Path, hosts: FakeHosts) -> None:
    hosts.drive_variant = "loop"
    report = _fetch(tmp_path / "models", hosts, (FACENET_TEST_ENTRY,))
    outcome = report[FACENET_TEST_ENTRY.relpath]
    assert outcome.state == "failed"
    assert "kept answering with a confirmation page" in outcome.detail
    assert len(hosts.requests) == download.MAX_CONFIRM_HOPS + 1


def test_corrupt_file_in_place_is_replaced(
    tmp_path: Path, hosts: FakeHosts, mtcnn_bytes: dict[str, bytes]
) -> None:
    hosts.github = dict(mtcnn_bytes)
    models_dir = tmp_path / "models"
    entry = MTCNN_FILES[0]
    dest = models_dir / entry.relpath
    dest.parent.mkdir(parents=True)
    dest.write_bytes(bytes(entry.size or 0))  # right size, wrong bytes
    # A temp file left by a fetch that died long ago is cleaned up; a fresh one is not.
    stale = dest.parent / f".{dest.name}.dead.part"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = dest.parent / f".{dest.name}.live.part"
    fresh.write_bytes(b"partial")

    report = _fetch(models_dir, hosts, (entry,))
    assert report[entry.relpath].state == "installed"
    assert dest.read_bytes() == mtcnn_bytes["det1.npy"]
    assert not stale.exists() and fresh.exists()


# ---------------------------------------------------------------------------- archives


def test_extract_member_guards(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "model.pb"
    digest = hashlib.sha256(PB_BYTES).hexdigest()
    archive = tmp_path / "a.zip"

    archive.write_bytes(_zip({"other/model.pb": PB_BYTES}))
    with pytest.raises(download.ArchiveError, match=f"has no {MEMBER}"):
        download.extract_member(archive, MEMBER, dest, sha256=digest, size=len(PB_BYTES))

    # A zip bomb: 50 MB of zeros in a few KB, where 300 kB are expected.
    archive.write_bytes(_zip({MEMBER: bytes(50_000_000)}))
    assert archive.stat().st_size < 100_000
    with pytest.raises(download.TooLargeError, match="more than 300000"):
        download.extract_member(archive, MEMBER, dest, sha256=digest, size=len(PB_BYTES))

    archive.write_bytes(b"<html>not a zip</html>")
    with pytest.raises(download.ArchiveError, match="not a readable zip"):
        download.extract_member(archive, MEMBER, dest, sha256=digest, size=len(PB_BYTES))

    archive.write_bytes(_zip({MEMBER: PB_BYTES[:-1] + b"?"}))
    with pytest.raises(download.DigestMismatchError):
        download.extract_member(archive, MEMBER, dest, sha256=digest, size=len(PB_BYTES))
    assert not dest.exists() and _all_files(tmp_path / "out") == set()

    archive.write_bytes(FACENET_ZIP)
    download.extract_member(archive, MEMBER, dest, sha256=digest, size=len(PB_BYTES))
    assert dest.read_bytes() == PB_BYTES
    assert _all_files(tmp_path / "out") == {"model.pb"}


# ---------------------------------------------------------------------------- helpers


def test_url_rewrites_respect_boundaries() -> None:
    rewrites = {"https://drive.google.com": "http://127.0.0.1:1/drive"}
    assert download.rewrite_url("https://drive.google.com/uc?id=1", rewrites) == (
        "http://127.0.0.1:1/drive/uc?id=1"
    )
    assert download.rewrite_url("https://drive.google.com.example/x", rewrites) == (
        "https://drive.google.com.example/x"
    )
    assert download.unrewrite_url("http://127.0.0.1:1/drive/uc?id=1", rewrites) == (
        "https://drive.google.com/uc?id=1"
    )


def test_confirmation_page_cannot_send_us_off_drive() -> None:
    page = (
        b'<html><form id="download-form" action="https://evil.example/download" method="get">'
        b'<input type="hidden" name="confirm" value="t"></form></html>'
    )
    url = "https://drive.google.com/uc?export=download&id=x"
    assert download.drive_confirmation_url(page, url, Message()) is None
    page = b'<html><a href="/uc?export=download&amp;confirm=abc&amp;id=x">go</a></html>'
    assert download.drive_confirmation_url(page, url, Message()) == (
        "https://drive.google.com/uc?export=download&confirm=abc&id=x"
    )


# ---------------------------------------------------------------------------- status


def test_check_file_detects_wrong_size_and_wrong_digest(tmp_path: Path) -> None:
    data = b"weights" * 100
    entry = ModelFile(
        model="t", relpath="t/w.bin", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    path = tmp_path / entry.relpath
    assert store.check_file(tmp_path, entry).state == "missing"
    path.parent.mkdir()
    path.write_bytes(data)
    assert store.check_file(tmp_path, entry).state == "present"
    path.write_bytes(data[:-1])
    assert store.check_file(tmp_path, entry, verify=False).state == "corrupt"
    path.write_bytes(data[:-1] + b"X")
    assert store.check_file(tmp_path, entry).state == "corrupt"
    # The cheap start-up check trusts the size alone; `models status` verifies digests.
    assert store.check_file(tmp_path, entry, verify=False).state == "present"


def test_status_reports_corrupt_models(models_dir: Path, tmp_path: Path) -> None:
    if store.model_state(models_dir, "mtcnn") != "present":
        pytest.skip("MTCNN files not in FACELIVE_MODELS_SOURCE")
    target = tmp_path / "models"
    fetch_models(target, source=MODELS_SOURCE, offline=True, log=_quiet)
    assert store.status(target)["mtcnn"] == "present"
    det2 = target / MTCNN_FILES[1].relpath
    data = bytearray(det2.read_bytes())
    data[1000] ^= 1
    det2.write_bytes(bytes(data))
    assert store.status(target)["mtcnn"] == "corrupt"
    det2.write_bytes(bytes(data[:-10]))
    assert store.status(target, verify=False)["mtcnn"] == "corrupt"
    assert store.status(target)["facenet"] == "missing"
    assert store.status(target)["mtcnn-pypi"] == "present"
