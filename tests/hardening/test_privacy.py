"""Privacy, end to end on a real server: live frames, a cancelled capture and an identify upload
leave nothing on disk; a person deleted through the API leaves no trace of their face patches
in any file of the data dir (the database, its WAL, its shared-memory index)."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conftest import skip_or_fail
from facelive.recognition.gallery import Gallery

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from live_harness import (  # noqa: E402
    VIDEO,
    LiveServer,
    live_client,
    read_video_frames,
    start_server,
    stop_server,
)

FRAMES = 40
JPEG_START = b"\xff\xd8\xff"
SHM_SUFFIX = "-shm"  # SQLite's shared-memory index: readers update it, so it may change


@pytest.fixture(scope="module")
def server(
    models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Path]]:
    # The server's own temporary dir, to see whether anything spills into one.
    tmp = tmp_path_factory.mktemp("privacy-tmp")
    live = start_server(models_dir, tmp_path_factory.mktemp("privacy-data"),
                        env={"TMPDIR": str(tmp), "FACELIVE_MAX_CLIENT_FPS": "1000"})
    yield live, tmp
    stop_server(live)


def files_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def digest(files: dict[Path, bytes]) -> dict[Path, str]:
    return {p: hashlib.sha256(b).hexdigest() for p, b in files.items()
            if not p.name.endswith(SHM_SUFFIX)}


def changes(server: LiveServer, name: str, files: list[bytes]) -> requests.Response:
    return server.http.post(
        f"{server.url}/api/people/{name}/examples",
        files=[("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)],
        headers={"Authorization": f"Bearer {server.token}"}, verify=False, timeout=120,
    )


def test_frames_captures_and_identify_uploads_never_reach_the_disk(
    server: tuple[LiveServer, Path], test_data: Path
) -> None:
    live, tmp = server
    clip = test_data / VIDEO
    if not clip.is_file():
        skip_or_fail(f"test video not found: {clip}")
    frames = read_video_frames(clip, FRAMES, 320, 85)
    before = files_under(live.data_dir, tmp)
    assert not any(JPEG_START in data for data in before.values())

    async def stream() -> tuple[int, int]:
        with_faces = captured = 0
        async with live_client(live, token=live.token) as client:
            assert (await client.call("capture_start", {"count": 5}))["ok"]
            for seq, frame in enumerate(frames, 1):
                name, payload = await client.ask(seq, frame)
                assert name == "faces", payload
                with_faces += bool(payload["faces"])
            while not client.notices.empty():
                kind, notice = client.notices.get_nowait()
                if kind == "capture":
                    captured = max(captured, int(notice["collected"]))
            # Frames held by the capture are dropped with it, never stored.
            assert (await client.call("capture_cancel"))["ok"]
        return with_faces, captured

    with_faces, captured = asyncio.run(stream())
    identify = live.http.post(f"{live.url}/api/identify", verify=False, timeout=120,
                              headers=live.viewer_headers,
                              files=[("image", ("f.jpg", frames[0], "image/jpeg"))])
    assert identify.status_code == 200, identify.text
    assert identify.json()["faces"], "the identify upload must show a face, or it proves little"
    assert with_faces >= FRAMES * 3 // 4 and captured >= 1

    after = files_under(live.data_dir, tmp)
    assert sorted(after) == sorted(before), "files appeared or vanished"
    assert digest(after) == digest(before), "a file changed without any enrolment"
    # (TMPDIR does hold files: TensorFlow's autograph writes the code of the graphs it traces
    # there at start-up. Code, before the first client; the comparison above covers it.)
    assert not any(JPEG_START in data for data in after.values()), "an image reached the disk"


def test_a_deleted_person_leaves_no_trace_in_any_file(
    server: tuple[LiveServer, Path], lfw_dir: Path
) -> None:
    live, _ = server
    photos = [(lfw_dir / "Colin_Powell" / f"Colin_Powell_{i:04d}.jpg").read_bytes()
              for i in range(1, 4)]
    added = changes(live, "Colin Powell", photos)
    assert added.status_code in (200, 201), added.text
    with Gallery.in_dir(live.data_dir, read_only=True) as gallery:
        stored = [e.patch.jpeg for e in gallery.examples()]
    assert len(stored) == 3
    # From each patch's entropy-coded end: JPEG header tables are the same in every file.
    probes = [jpeg[-300:-236] for jpeg in stored]

    def traces() -> int:
        return sum(probe in data for probe in probes
                   for data in files_under(live.data_dir).values())

    assert traces() >= 3, "the probes must be found while the person exists"
    gone = live.http.delete(f"{live.url}/api/people/Colin Powell", verify=False, timeout=60,
                            headers={"Authorization": f"Bearer {live.token}"})
    assert gone.status_code == 200, gone.text
    assert traces() == 0
    assert live.get("/api/people").json()["people"] == []
