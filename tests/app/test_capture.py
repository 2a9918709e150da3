"""Capture Examples over the live socket, end to end: a real server, real video frames. The
server picks the examples out of the stream, says why it skips frames, and enrols them under
the name sent; the very next frame is named."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from live_harness import LiveClient, LiveServer, live_client, live_server_fixture, read_video_frames

from conftest import skip_or_fail
from facelive.app.capture import HINT_NO_FACE, HINT_SAME_POSE, MIN_GAP_S

# No frame rate limit (test_live_limits.py tests it): frames go back to back, which on a fast
# machine would pass it.
server = live_server_fixture("capture-data", {"FACELIVE_MAX_CLIENT_FPS": "0"})


def _video(test_data: Path, clip: str) -> list[bytes]:
    path = test_data / "video" / f"{clip}.mp4"
    if not path.is_file():
        skip_or_fail(f"test video not found: {path}")
    return read_video_frames(path, 200, 320, 80)


@pytest.fixture(scope="module")
def alexandria(test_data: Path) -> list[bytes]:
    return _video(test_data, "WDA_AlexandriaOcasioCortez_000")


@pytest.fixture(scope="module")
def katie(test_data: Path) -> list[bytes]:
    return _video(test_data, "WDA_KatieHill_000")


@pytest.fixture(scope="module")
def couple(test_data: Path) -> bytes:
    path = test_data / "group" / "couple.jpg"
    if not path.is_file():
        skip_or_fail(f"group photo not found: {path}")
    image = cv2.imread(str(path))
    scale = 640 / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image)[1].tobytes()


WALL = cv2.imencode(".jpg", np.full((320, 320, 3), 128, np.uint8))[1].tobytes()


class Stream:
    """One client's frames with increasing seq numbers, each answered before the next."""

    def __init__(self, client: LiveClient) -> None:
        self.client = client
        self.seq = 0

    async def send(self, jpeg: bytes) -> dict[str, Any]:
        self.seq += 1
        event, reply = await self.client.ask(self.seq, jpeg)
        assert event == "faces", reply
        return reply

    async def send_and_hear(self, jpeg: bytes) -> dict[str, Any]:
        """Send a frame during a capture: the `capture` progress that follows its reply."""
        await self.send(jpeg)
        name, progress = await self.client.next_notice(timeout=30)
        assert name == "capture", (name, progress)
        return progress


def test_capture_picks_frames_then_enrols_them_under_the_name(
    server: LiveServer, alexandria: list[bytes], katie: list[bytes], couple: bytes
) -> None:
    async def scenario() -> None:
        async with live_client(server) as viewer, live_client(server, server.token) as writer:
            await viewer.hello()
            await writer.hello()
            refused = await viewer.call("capture_start", {"count": 10})
            assert refused["ok"] is False and "token" in refused["error"]
            early = await writer.call("capture_save", {"name": "Alexandria"})
            assert early["ok"] is False and "nothing captured" in early["error"]
            for bad in (0, 31, "10", True, None):
                answer = await writer.call("capture_start", {"count": bad})
                assert answer["ok"] is False and "count" in answer["error"], bad
            assert await writer.call("capture_start", {"count": 10}) == {"ok": True, "target": 10}

            stream = Stream(writer)
            # Frames that cannot be examples are refused, each with a hint.
            progress = await stream.send_and_hear(WALL)
            assert progress == {"collected": 0, "target": 10, "done": False,
                                "hint": HINT_NO_FACE}
            progress = await stream.send_and_hear(couple)
            assert progress["collected"] == 0 and progress["hint"].startswith("2 faces")
            # The same picture twice is one example, not two.
            assert (await stream.send_and_hear(alexandria[0]))["collected"] == 1
            await asyncio.sleep(MIN_GAP_S)
            progress = await stream.send_and_hear(alexandria[0])
            assert progress["collected"] == 1 and progress["hint"] == HINT_SAME_POSE

            # A talking head: frames that differ enough are taken, spread over time.
            sent, started = 0, time.monotonic()
            while not progress["done"]:
                sent += 1
                progress = await stream.send_and_hear(alexandria[sent % len(alexandria)])
                assert sent < 400, progress
            took = time.monotonic() - started
            assert progress["collected"] == 10 and progress["hint"] is None
            assert took >= 8 * MIN_GAP_S
            await stream.send(alexandria[0])
            assert await writer.no_more_events(0.3)
            assert writer.notices.empty(), "progress after the capture was done"

            # A refused name keeps the frames: the name can be corrected.
            bad = await writer.call("capture_save", {"name": "Unknown"})
            assert bad["ok"] is False and "reserved" in bad["error"]
            saved = await writer.call("capture_save", {"name": "Alexandria"})
            assert saved == {"ok": True, "name": "Alexandria", "examples_added": 10,
                             "rejected": [], "picked": [], "warnings": [],
                             "rejected_summary": None, "lookalike_summary": None}
            for client in (viewer, writer):
                assert await client.next_notice() == ("people_changed", {"gallery_size": 10})
            again = await writer.call("capture_save", {"name": "Alexandria"})
            assert again["ok"] is False  # the capture was used up

            faces = (await stream.send(alexandria[123]))["faces"]
            assert [f["name"] for f in faces] == ["Alexandria"]
            faces = (await Stream(viewer).send(katie[50]))["faces"]
            assert [f["name"] for f in faces] == ["unknown"]
            print(f"\n[capture] 10 examples from {sent + 3} frames in {took:.1f} s")

    asyncio.run(scenario())
    people = server.get("/api/people").json()["people"]
    assert [(p["name"], p["examples"]) for p in people] == [("Alexandria", 10)]


def test_cancel_and_disconnect_drop_the_capture(
    server: LiveServer, alexandria: list[bytes]
) -> None:
    async def scenario() -> None:
        async with live_client(server, server.token) as writer:
            await writer.hello()
            assert (await writer.call("capture_start", {}))["target"] == 10  # the default
            stream = Stream(writer)
            assert (await stream.send_and_hear(alexandria[0]))["collected"] == 1
            assert await writer.call("capture_cancel") == {"ok": True}
            await stream.send(alexandria[60])
            assert await writer.no_more_events(0.3) and writer.notices.empty()
            answer = await writer.call("capture_save", {"name": "Someone"})
            assert answer["ok"] is False

    asyncio.run(scenario())
