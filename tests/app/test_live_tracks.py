"""A live stream as an outside program meets it: a real `facelive serve` at its defaults (rate
limit on, default threshold), a person enrolled over REST from 10 video frames, and a
python-socketio 5.x client (the asyncio one, see docs/tracks.md "Clients") that streams 600
frames one at a time, each after the last one's answer. Every frame must be answered; faces
carry a stable `track`; the enrolled person is named on her frames and a stranger never is."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from live_harness import LiveServer, live_client, live_server_fixture, read_video_frames

from conftest import skip_or_fail

pytestmark = pytest.mark.slow

HER, STRANGER = "WDA_AlexandriaOcasioCortez_000.mp4", "WDA_KatieHill_000.mp4"
NAME = "Alexandria Ocasio-Cortez"
SIZE = 320  # the page sends frames downscaled; 512x512 clips at 320x320


def ping_pong(frames: list[bytes], count: int) -> list[bytes]:
    """The clip forward then backward, to `count` frames: a steady face, no jump."""
    out = list(frames)
    while len(out) < count:
        out += frames[::-1] if len(out) // len(frames) % 2 else frames
    return out[:count]


server = live_server_fixture("tracks-data")


def test_600_frames_one_at_a_time_all_answered_and_named_by_track(
    server: LiveServer, test_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [test_data / "video" / name for name in (HER, STRANGER)]
    if not all(p.is_file() for p in paths):
        skip_or_fail(f"test videos not found: {paths}")
    hers = read_video_frames(paths[0], 200, SIZE, 80)
    theirs = read_video_frames(paths[1], 200, SIZE, 80)
    enrol = [(f"frame{i}.jpg", hers[i]) for i in range(0, 200, 20)]
    added = server.http.post(
        f"{server.url}/api/people/{NAME}/examples", verify=False, timeout=120,
        headers={"Authorization": f"Bearer {server.token}"},
        files=[("images", (f, data, "image/jpeg")) for f, data in enrol])
    assert added.status_code == 200 and added.json()["examples_added"] == 10, added.text
    stream = ping_pong(hers, 300) + ping_pong(theirs, 300)

    async def run() -> tuple[list[list[dict]], int, int, float]:
        replies: list[list[dict]] = []
        refused = disconnects = 0
        async with live_client(server) as client:
            client.sio.on("disconnect", lambda *_: None)
            hello = await client.hello()
            gap = 1.0 / hello["max_client_fps"] if hello["max_client_fps"] else 0.0
            seq, last_sent, start = 0, 0.0, time.perf_counter()
            for jpeg in stream:
                while True:  # a rate-limited frame is answered; the client sends it again
                    await asyncio.sleep(max(0.0, last_sent + gap - time.perf_counter()))
                    seq += 1
                    last_sent = time.perf_counter()
                    event, reply = await client.ask(seq, jpeg, timeout=30)
                    assert reply["seq"] == seq, (event, reply)
                    if event == "error" and reply.get("code") == "rate_limited":
                        refused += 1
                        await asyncio.sleep(reply["retry_ms"] / 1000)
                        continue
                    assert event == "faces", reply
                    replies.append(reply["faces"])
                    break
            elapsed = time.perf_counter() - start
            disconnects += not client.sio.connected
        return replies, refused, disconnects, elapsed

    replies, refused, disconnects, elapsed = asyncio.run(run())
    assert len(replies) == 600 and disconnects == 0
    assert all(isinstance(f["track"], int) for faces in replies for f in faces)
    # Issue 17: each face says whether it was embedded in its frame; a steady face mostly not.
    assert all(isinstance(f["embedded"], bool) for faces in replies for f in faces)
    embedded = sum(f["embedded"] for faces in replies[:300] for f in faces)
    assert 1 <= embedded <= 0.5 * 300, embedded
    her_named = sum(any(f["name"] == NAME for f in faces) for faces in replies[:300])
    stranger_named = [f for faces in replies[300:] for f in faces if f["name"] != "unknown"]
    assert her_named >= 0.99 * 300, her_named
    assert not stranger_named, stranger_named[:3]
    # One steady face each: her track is not continued onto the stranger's face.
    her_tracks = {f["track"] for faces in replies[:300] for f in faces if f["name"] == NAME}
    their_tracks = {f["track"] for faces in replies[300:] for f in faces}
    assert not her_tracks & their_tracks
    with capsys.disabled():
        print(f"\n[live tracks] 600 frames {SIZE}x{SIZE} in {elapsed:.1f} s; answered 600, "
              f"lost 0, rate-limited and re-sent {refused}; her frames named {her_named}/300, "
              f"stranger's named 0/300; her tracks {sorted(her_tracks)}")


def test_a_gallery_change_reaches_the_tracks_of_a_live_connection(
    server: LiveServer, test_data: Path
) -> None:
    path = test_data / "video" / HER
    if not path.is_file():
        skip_or_fail(f"test video not found: {path}")
    frames = read_video_frames(path, 40, SIZE, 80)
    auth = {"Authorization": f"Bearer {server.token}"}

    def rest(method: str, route: str, **kwargs: object) -> dict:
        response = server.http.request(method, server.url + route, headers=auth, verify=False,
                                       timeout=120, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return response.json()

    rest("DELETE", "/api/people")  # whoever the other test left
    rest("POST", "/api/people/Sandy/examples",
         files=[("images", (f"{i}.jpg", frames[i], "image/jpeg")) for i in (0, 10)])

    async def run() -> list[str]:
        shown = []
        async with live_client(server) as client:
            for seq, jpeg in enumerate(frames[:30], 1):
                if seq == 11:
                    await asyncio.to_thread(rest, "PATCH", "/api/people/Sandy",
                                            json={"name": "Sandra"})
                if seq == 21:
                    await asyncio.to_thread(rest, "DELETE", "/api/people/Sandra")
                await asyncio.sleep(0.05)  # under the default rate limit
                event, reply = await client.ask(seq, jpeg, timeout=30)
                assert event == "faces", reply
                shown.append(reply["faces"][0]["name"] if reply["faces"] else "-")
        return shown

    shown = asyncio.run(run())
    assert set(shown[1:10]) == {"Sandy"}, shown
    assert set(shown[10:20]) == {"Sandra"}, shown  # renamed: the track follows at once
    assert set(shown[20:]) == {"unknown"}, shown  # deleted: the name does not linger


def test_a_connections_tracks_go_with_it() -> None:
    from facelive.app.protocol import Frame
    from facelive.app.worker import LiveWorker

    worker = LiveWorker(emit=lambda *_: None, spawn=lambda _fn: None, recognizer=lambda _: [],
                        max_pixels=1, max_bytes=1)
    worker.submit("a", Frame(1, b"x", 0.0))
    worker.submit("b", Frame(1, b"x", 0.0))
    assert worker.streams == 2
    worker.forget("a")
    assert worker.streams == 1
