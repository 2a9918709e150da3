"""The live server's per-client frame rate limit and its limit on clients: the token bucket on
its own (explicit times), then a real `facelive serve` on loopback with real Socket.IO clients
over WebSocket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import socketio
from live_harness import (
    VIDEO,
    LiveClient,
    LiveServer,
    connect_when_free,
    live_client,
    live_server_fixture,
    read_video_frames,
)

from conftest import skip_or_fail
from facelive.app.protocol import RateLimited, error_reply
from facelive.app.worker import RATE_BURST, FrameRate, LiveWorker

FPS = 5  # low, so that a few frames sent at once are far over it
MAX_CLIENTS = 2


# ------------------------------------------------------------------ the token bucket
def test_a_burst_passes_then_one_frame_per_interval() -> None:
    rate = FrameRate(10, burst=3)
    assert [rate.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rate.take("a", 0.0) == pytest.approx(0.1)
    assert rate.take("a", 0.05) == pytest.approx(0.05)  # a refusal spends nothing
    assert rate.take("a", 0.1) == 0.0
    assert rate.take("a", 0.1) > 0.0
    assert rate.take("b", 0.1) == 0.0  # every client has its own allowance


def test_a_client_sending_without_pause_gets_the_rate() -> None:
    rate = FrameRate(10, burst=RATE_BURST)
    admitted = sum(rate.take("a", i * 0.001) == 0.0 for i in range(3001))  # 1000 fps, 3 s
    assert admitted == RATE_BURST + 10 * 3


def test_the_allowance_refills_to_the_burst_only_and_is_forgotten() -> None:
    rate = FrameRate(10, burst=2)
    assert rate.take("a", 0.0) == 0.0
    assert [rate.take("a", 100.0) for _ in range(3)][-1] > 0.0  # a long pause: still 2 at most
    rate.forget("a")
    assert rate.take("a", 100.0) == 0.0 and rate.take("a", 100.0) == 0.0


def test_the_worker_refuses_over_the_rate_with_the_frames_seq() -> None:
    worker = LiveWorker(emit=lambda *_: None, spawn=lambda _fn: None, recognizer=lambda _: [],
                        max_pixels=1, max_bytes=1, max_fps=2)
    worker.admit("a", {"seq": 1}, 0.0)
    for seq in range(2, RATE_BURST + 1):
        worker.admit("a", {"seq": seq}, 0.0)
    with pytest.raises(RateLimited) as refused:
        worker.admit("a", {"seq": 9, "image": b""}, 0.1)
    assert refused.value.reply() == {
        "seq": 9, "code": "rate_limited", "retry_ms": 400,
        "message": "too many frames: at most 2 per second; send the next one in 400 ms",
    }
    with pytest.raises(RateLimited) as refused:
        worker.admit("a", "not even a frame", 0.2)
    assert refused.value.seq is None and refused.value.retry_ms == 300
    worker.forget("a")  # a new connection starts with a full allowance
    worker.admit("a", {"seq": 10}, 0.2)
    for no_limit in (None, 0):  # FACELIVE_MAX_CLIENT_FPS=0
        unlimited = LiveWorker(emit=lambda *_: None, spawn=lambda _fn: None,
                               recognizer=lambda _: [], max_pixels=1, max_bytes=1,
                               max_fps=no_limit)
        for _ in range(100):
            unlimited.admit("a", {"seq": 1}, 0.0)


def test_other_errors_keep_their_shape() -> None:
    assert error_reply("frame.seq must be an integer") == {
        "seq": None, "message": "frame.seq must be an integer"}


# ------------------------------------------------------------------ a real server
server = live_server_fixture("limits-data", {"FACELIVE_MAX_CLIENT_FPS": str(FPS),
                                             "FACELIVE_MAX_CLIENTS": str(MAX_CLIENTS)})


@pytest.fixture(scope="module")
def frames(test_data: Path) -> list[bytes]:
    path = test_data / VIDEO
    if not path.is_file():
        skip_or_fail(f"test video not found: {path}")
    return read_video_frames(path, 20, 320, 80)


def _rate_limited(event: str, reply: dict[str, Any]) -> bool:
    return event == "error" and reply.get("code") == "rate_limited"


def test_frames_over_the_rate_are_answered_rate_limited_and_others_are_unaffected(
    server: LiveServer, frames: list[bytes]
) -> None:
    flood = 15

    async def flooder() -> tuple[dict[int, tuple[str, dict]], tuple[str, dict]]:
        async with live_client(server) as client:
            assert (await client.hello())["max_client_fps"] == FPS
            for seq in range(1, flood + 1):
                await client.send(seq, frames[seq % len(frames)])
            replies: dict[int, tuple[str, dict]] = {}

            def complete() -> bool:
                # Every frame over the rate answered, and the last admitted one: the worker
                # keeps only the latest waiting frame, so earlier admitted ones may get none.
                admitted = [s for s in range(1, flood + 1)
                            if not (s in replies and _rate_limited(*replies[s]))]
                return flood in replies and admitted[-1] in replies

            while not complete():
                event, reply = await client.next_event(timeout=60)
                assert reply["seq"] not in replies, f"two replies to {reply['seq']}"
                replies[reply["seq"]] = (event, reply)
            assert await client.no_more_events()
            # Waiting as told, the next frame is taken.
            wait_ms = max((r["retry_ms"] for e, r in replies.values() if _rate_limited(e, r)),
                          default=0)
            await asyncio.sleep(wait_ms / 1000)
            return replies, await client.ask(flood + 1, frames[0])

    async def calm() -> list[str]:
        """Meanwhile another client sends at exactly the limit, as the page paces itself."""
        async with live_client(server) as client:
            await client.hello()
            events, start = [], time.perf_counter()
            for seq in range(1, 9):
                await asyncio.sleep(max(0.0, start + seq / FPS - time.perf_counter()))
                event, reply = await client.ask(seq, frames[seq])
                events.append(event if event == "faces" else reply["message"])
            return events

    async def both() -> tuple[Any, list[str]]:
        return await asyncio.gather(flooder(), calm())

    (replies, after), calm_events = asyncio.run(both())
    limited = sorted(s for s, (e, r) in replies.items() if _rate_limited(e, r))
    admitted = sorted(set(range(1, flood + 1)) - set(limited))
    # The burst passes, and whatever the rate refilled while the flood arrived (a frame or so).
    assert admitted[:RATE_BURST] == list(range(1, RATE_BURST + 1)), replies
    assert RATE_BURST <= len(admitted) <= RATE_BURST + 2, admitted
    for seq in limited:
        reply = replies[seq][1]
        assert reply["message"] == (f"too many frames: at most {FPS} per second; send the "
                                    f"next one in {reply['retry_ms']} ms")
        assert 1 <= reply["retry_ms"] <= 1000 / FPS, reply
    for seq in admitted:  # answered normally, or not at all (replaced by a later one)
        assert replies.get(seq, ("faces",))[0] == "faces", replies[seq]
    assert after[0] == "faces" and after[1]["seq"] == flood + 1, after
    assert calm_events == ["faces"] * 8, calm_events


def test_a_client_waiting_as_told_is_never_refused_twice_and_gets_the_rate(
    server: LiveServer, frames: list[bytes]
) -> None:
    """Send at once after each reply, wait `retry_ms` after a refusal (what the page does
    when it outpaces the limit): the frame after a wait is always taken, and about FPS frames a
    second are answered."""
    seconds = 3.0

    async def scenario() -> tuple[int, int]:
        async with live_client(server) as client:
            await client.hello()
            answered = refused = seq = 0
            waited = False
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                seq += 1
                event, reply = await client.ask(seq, frames[seq % len(frames)])
                if _rate_limited(event, reply):
                    assert not waited, f"refused again after waiting as told: {reply}"
                    refused += 1
                    waited = True
                    await asyncio.sleep(reply["retry_ms"] / 1000)
                else:
                    assert event == "faces", reply
                    answered += 1
                    waited = False
            return answered, refused

    answered, refused = asyncio.run(scenario())
    assert refused > 0, "a client faster than the limit was never refused"
    assert answered <= FPS * seconds + RATE_BURST + 1, answered
    assert answered >= FPS * seconds * 0.6, answered  # each refusal's wait is exact, not longer


def test_connections_beyond_the_limit_are_refused_until_one_leaves(server: LiveServer) -> None:
    busy = (f"server busy: {MAX_CLIENTS} clients connected, the limit is {MAX_CLIENTS}; "
            "try again later")

    async def refused() -> list[Any]:
        client = LiveClient(server)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect()
        return client.refusals

    async def scenario() -> None:
        # connect_when_free: the other tests' clients may still be on their way out.
        first = await connect_when_free(server)
        second = await connect_when_free(server, token=server.token)
        assert (await first.hello())["can_change"] is False
        for _ in range(5):  # refused ones take no place
            assert await refused() == [{"message": busy}]
        await first.close()
        third = await connect_when_free(server)  # first's place, once the server has seen it go
        assert await refused() == [{"message": busy}]
        # Full, but the owner still gets in (and takes a place: a viewer is still refused).
        owner = await LiveClient(server, token=server.token).connect()
        assert (await owner.hello())["can_change"] is True
        over = busy.replace(f"{MAX_CLIENTS} clients", f"{MAX_CLIENTS + 1} clients")
        assert await refused() == [{"message": over}]
        await owner.close()
        await second.close()
        await third.close()
        # Both places free again: no refusal or departure kept one.
        again = [await connect_when_free(server) for _ in range(MAX_CLIENTS)]
        assert await refused() == [{"message": busy}]
        for client in again:
            await client.close()

    asyncio.run(scenario())
