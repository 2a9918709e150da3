"""Hostile Socket.IO traffic against one real `facelive serve` (real models, WSS).

Property-based (hypothesis): random `frame` payloads (non-dicts, wrong types, huge and
negative seq, random bytes and forged JPEG headers as images), random unknown or capture events,
floods of frames over the rate limit, and floods of connections over the client limit. After
each the server must still be alive, the connection still open, and a good frame on the same
connection must still get its `faces` reply; at the end the gallery must be as it was. Every
hostile message and connection attempt is counted in tally.TALLY (see test_hostile_total.py).

The server runs with the default frame rate limit; the tests' client paces its frames to it,
as the page does, so that each hostile frame is looked at rather than refused for its rate,
except in the flood test, which is about that refusal.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally import TALLY, gallery_digest

from facelive.app.protocol import frame_seq
from facelive.app.worker import RATE_BURST
from facelive.settings import Settings

# The harness lives beside the app tests (a module, not a package: see its docstring).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from live_harness import (  # noqa: E402
    VIDEO,
    LiveClient,
    LiveServer,
    connect_when_free,
    read_video_frames,
    start_server,
    stop_server,
)

MAX_FRAME_BYTES = 100_000  # small, so that "over the limit" frames stay cheap to send
# Few places, so that a flood of connections reaches the limit after a handful (the session's
# own connection takes one).
MAX_CLIENTS = 4
GOOD_SEQ_BASE = 10**12  # good frames use seqs no random payload is likely to pick
CHANNEL = "socket"


class Session:
    """One event loop and one connected client kept across all hypothesis examples (a new TLS
    connection per example would cost most of the time budget)."""

    def __init__(self, server: LiveServer, good: bytes) -> None:
        self.server = server
        self.good = good
        self.loop = asyncio.new_event_loop()
        self.max_fps = 0
        self.last_frame = 0.0
        self.client = self.connect()
        self.good_seq = GOOD_SEQ_BASE

    def connect(self) -> LiveClient:
        client = LiveClient(self.server, token=self.server.token)
        self.loop.run_until_complete(client.connect())
        hello = self.loop.run_until_complete(client.hello())
        self.max_fps = hello["max_client_fps"]
        return client

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def paced(self, payload: Any = None, *, bare: bool = False) -> None:
        """Send a `frame` no sooner than 1/max_fps after the last one, as the page paces itself
        (bare: the event without an argument)."""
        wait = self.last_frame + 1.0 / max(self.max_fps, 1) - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        self.last_frame = time.perf_counter()
        if bare:
            await self.client.sio.emit("frame")
        else:
            await self.client.sio.emit("frame", payload)

    def assert_still_serving(self, what: str) -> list[tuple[str, Any]]:
        """Alive, connected, and a good frame is answered with its faces. Returns the events
        that came before that reply (the hostile payload's answers, if any)."""
        assert self.server.proc.poll() is None, f"server died after {what}:\n" + "\n".join(
            self.server.output[-30:])
        assert self.client.sio.connected, f"connection dropped after {what}"

        async def served() -> tuple[dict[str, Any], list[tuple[str, Any]]]:
            self.good_seq += 1
            seq = self.good_seq
            await self.paced({"seq": seq, "image": self.good})
            stray: list[tuple[str, Any]] = []
            # Bounded: at most this many stray replies before ours, and rate-limited retries.
            for _ in range(100):
                name, payload = await self.client.next_event(timeout=60)
                if not (isinstance(payload, dict) and payload.get("seq") == seq):
                    stray.append((name, payload))
                    continue
                if name == "error" and payload.get("code") == "rate_limited":
                    # After a flood: wait as told, then the next frame (as the page does).
                    assert 1 <= payload["retry_ms"] <= 1000 / self.max_fps + 1, payload
                    await asyncio.sleep(payload["retry_ms"] / 1000)
                    self.good_seq += 1
                    seq = self.good_seq
                    await self.paced({"seq": seq, "image": self.good})
                    continue
                assert name == "faces", (what, payload)
                return payload, stray
            raise AssertionError(f"no reply to the good frame after {what}")

        reply, stray = self.run(served())
        assert isinstance(reply["faces"], list)
        for name, payload in stray:
            if name == "error" and "server error" in str(payload):
                TALLY.server_errors += 1  # an exception in a handler; asserted by the callers
        return stray

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def session(models_dir: Path, test_data: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    good = read_video_frames(test_data / VIDEO, count=1, size=320, quality=80)[0]
    assert len(good) < MAX_FRAME_BYTES
    server = start_server(models_dir, tmp_path_factory.mktemp("hostile-socket"),
                          env={"FACELIVE_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES),
                               "FACELIVE_MAX_CLIENTS": str(MAX_CLIENTS),
                               "FACELIVE_MAX_CLIENT_FPS": str(Settings().max_client_fps)})
    try:
        live = Session(server, good)
        try:
            live.assert_still_serving("start-up")
            start = (server.get("/api/people").json(), gallery_digest(server.data_dir))
            yield live
            check_at_the_end(live, start)
        finally:
            live.close()
    finally:
        stop_server(server)


def check_at_the_end(session: Session, start: tuple[Any, str]) -> None:
    """Alive and answering after everything; the gallery, listed and stored, as it was (this
    client has the token, and capture_save was among the events)."""
    TALLY.finished.add(CHANNEL)  # counted in the figure, whatever follows
    server = session.server
    alive = server.proc.poll() is None
    if alive:
        try:
            alive = server.get("/api/health").status_code == 200
            session.assert_still_serving("the end")
        except (requests.RequestException, AssertionError, TimeoutError):
            alive = False
    TALLY.crashes += not alive
    assert alive, "the server died or stopped answering:\n" + "\n".join(server.output[-30:])
    end = (server.get("/api/people").json(), gallery_digest(server.data_dir))
    TALLY.gallery_changes += end != start
    assert end == start, "hostile socket traffic changed the gallery"
    print(f"\nhostile socket: {TALLY.inputs[CHANNEL]} messages and connection attempts")


SOCKET_SETTINGS = settings(deadline=None, derandomize=True,
                           suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
           | st.binary(max_size=256))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
seqs = st.one_of(
    st.integers(), st.integers(min_value=2**53 - 2, max_value=2**70), st.just(-1),
    st.just(2**63), st.just(-(2**63)), st.floats(), st.booleans(), st.text(max_size=20),
    st.none(), values,
)
images = st.one_of(
    st.binary(max_size=4096),
    st.just(b""),
    # JPEG SOF0 headers claiming 65535x65535 and 0x0 pixels: only the header is read.
    st.just(b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff" + b"\x00" * 64),
    st.just(b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x00" + b"\x00" * 64),
    st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    st.just(b"\xff\xd8" + b"\x00" * MAX_FRAME_BYTES),  # just over the frame limit
    st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff" + b),
    values,
)
frames = st.one_of(
    st.fixed_dictionaries({"seq": seqs, "image": images}),
    st.fixed_dictionaries({"seq": st.integers(0, 1000)}),
    st.fixed_dictionaries({"image": images}),
    st.dictionaries(st.text(max_size=10), values, max_size=4),
    values,  # non-dicts: lists, strings, numbers, bytes, None
)


@settings(SOCKET_SETTINGS, max_examples=180)
@given(payload=frames)
def test_hostile_frames_are_answered_or_ignored(session: Session, payload: Any) -> None:
    if payload is None:
        # python-socketio sends `frame` with no argument at all for None: a different message,
        # with its own test at the end of this module.
        return
    TALLY.sent(CHANNEL)
    session.run(session.paced(payload))
    stray = session.assert_still_serving(f"frame {payload!r:.200}")
    # Answered with a protocol `error` {seq, message}, or (a valid frame by chance) `faces`.
    for name, reply in stray:
        assert name in ("error", "faces"), (name, reply)
        if name == "error":
            assert isinstance(reply.get("message"), str) and reply["message"], reply
            assert "server error" not in reply["message"], (payload, reply)  # an exception
    if not isinstance(payload, dict):
        assert [name for name, _ in stray] == ["error"], (payload, stray)


@settings(SOCKET_SETTINGS, max_examples=110)
@given(event=st.one_of(st.text(min_size=1, max_size=40),
                       st.sampled_from(["capture_start", "capture_save", "capture_cancel",
                                        "faces", "error", "hello", "people_changed"])),
       payload=values)
def test_unknown_and_capture_events_do_not_hurt(session: Session, event: str,
                                                payload: Any) -> None:
    # Socket.IO reserves these names client-side; emitting them raises before sending.
    if event in ("connect", "disconnect", "connect_error", "__disconnect_final"):
        return
    TALLY.sent(CHANNEL)
    if event == "frame":  # a frame all the same: paced like the others
        session.run(session.paced(payload))
    else:
        session.run(session.client.sio.emit(event, payload))
    # Capture events answer through acks, which emit() discards; cancel any capture begun, so
    # that later good frames are not captured.
    session.run(session.client.sio.emit("capture_cancel"))
    stray = session.assert_still_serving(f"event {event!r:.60} {payload!r:.200}")
    assert not any("server error" in str(reply) for _, reply in stray), stray


@settings(SOCKET_SETTINGS, max_examples=10)
@given(burst=st.lists(frames.filter(lambda p: p is not None), min_size=RATE_BURST + 15,
                      max_size=40))
def test_a_flood_of_frames_is_answered_rate_limited(session: Session, burst: list[Any]) -> None:
    """Frames sent back to back, far over the rate limit: the excess is answered at once with a
    `rate_limited` error carrying its seq and when to send again; each frame gets at most one
    reply; the good frame after it is served (once the client waits as told)."""
    TALLY.sent(CHANNEL, len(burst))

    async def flood() -> None:
        for payload in burst:
            await session.client.sio.emit("frame", payload)

    session.run(flood())
    stray = session.assert_still_serving(f"a flood of {len(burst)} frames")
    assert len(stray) <= len(burst), stray
    limited = [reply for name, reply in stray
               if name == "error" and reply.get("code") == "rate_limited"]
    # At most RATE_BURST frames, plus those the rate refills while the flood arrives, pass.
    assert len(limited) >= len(burst) - RATE_BURST - 5, (len(burst), stray)
    seqs = {frame_seq(payload) for payload in burst}
    for reply in limited:
        assert reply["seq"] in seqs, reply
        assert 1 <= reply["retry_ms"] <= 1000 / session.max_fps + 1, reply
        assert f"at most {session.max_fps} per second" in reply["message"], reply
    for name, reply in stray:
        assert name in ("error", "faces"), (name, reply)
        assert "server error" not in str(reply.get("message")), reply


def test_a_flood_of_connections_is_refused_beyond_the_limit(session: Session) -> None:
    """Twelve connections at once, then twenty connect-disconnect cycles: beyond MAX_CLIENTS
    each is refused with the reason; refusals and departures free their places (none leaks),
    and the session's own connection is served throughout."""
    attempts = 12

    async def flood() -> tuple[list[LiveClient], list[Any]]:
        clients = [LiveClient(session.server) for _ in range(attempts)]
        outcomes = await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
        accepted = [c for c, o in zip(clients, outcomes, strict=True) if o is c]
        refused = [c.refusals for c, o in zip(clients, outcomes, strict=True) if o is not c]
        return accepted, refused

    TALLY.sent(CHANNEL, attempts)
    accepted, refused = session.run(flood())
    try:
        assert len(accepted) == MAX_CLIENTS - 1, (len(accepted), refused)
        busy = (f"server busy: {MAX_CLIENTS} clients connected, the limit is {MAX_CLIENTS}; "
                "try again later")
        assert refused == [[{"message": busy}]] * (attempts - MAX_CLIENTS + 1), refused
        session.assert_still_serving("a flood of connections")
    finally:
        for client in accepted:
            session.run(client.close())

    async def churn(cycles: int) -> None:
        for _ in range(cycles):
            await (await connect_when_free(session.server)).close()

    TALLY.sent(CHANNEL, 20)
    session.run(churn(20))

    async def fill() -> list[LiveClient]:
        return [await connect_when_free(session.server) for _ in range(MAX_CLIENTS - 1)]

    # All the places but the session's are free again: no refusal or departure kept one.
    for client in session.run(fill()):
        session.run(client.close())
    session.assert_still_serving("connection churn")


def test_a_message_over_the_socket_buffer_drops_only_that_client(session: Session) -> None:
    """Over max_http_buffer_size (2 x max frame bytes + 64 KiB) the server closes that one
    connection; it must survive it and go on serving, the same client once it reconnects."""
    TALLY.sent(CHANNEL)
    huge = b"\xff\xd8" + b"\x00" * (3 * MAX_FRAME_BYTES + 128 * 1024)
    session.run(session.client.sio.emit("frame", {"seq": 1, "image": huge}))

    async def dropped() -> None:
        for _ in range(100):  # bounded wait for the server's close, up to 10 s
            if not session.client.sio.connected:
                return
            await asyncio.sleep(0.1)

    session.run(dropped())
    assert session.server.proc.poll() is None
    if not session.client.sio.connected:
        session.run(session.client.close())
        session.client = session.connect()
    session.assert_still_serving("an oversize socket message")


def test_no_handler_raised(session: Session) -> None:
    """Hostile input is refused by checks, not by exceptions the catch-all handler logs."""
    logged = "\n".join(session.server.output)
    assert "socket.io handler failed" not in logged and "Traceback" not in logged, logged[-3000:]


def test_frame_without_argument_is_a_protocol_error(session: Session) -> None:
    # Found by this suite: `frame` with no argument used to raise TypeError in the handler.
    TALLY.sent(CHANNEL)
    session.run(session.paced(bare=True))
    stray = session.assert_still_serving("a frame event without argument")
    assert [name for name, _ in stray] == ["error"], stray
    assert "server error" not in stray[0][1]["message"], stray


def test_the_view_token_and_no_token_change_nothing(session: Session) -> None:
    """A viewer (the view token) may watch, never capture or save, whatever it sends; without
    a token the connection is refused (viewing is closed by default)."""
    before = session.server.get("/api/people").json()

    async def scenario() -> tuple[list[Any], list[Any]]:
        viewer = await connect_when_free(session.server)  # the view token
        answers = []
        try:
            hello = await viewer.hello()
            assert hello["can_change"] is False and hello["role"] == "viewer"
            for event, payload in (
                ("capture_start", {}), ("capture_start", {"count": 10}),
                ("capture_save", {"name": "Mallory"}),
                ("capture_save", {"name": "Mallory", "add": True, "force": True}),
                ("capture_save", None), ("capture_cancel", "x" * 1000),
            ):
                TALLY.sent(CHANNEL)
                answers.append(await viewer.call(event, payload, timeout=30))
        finally:
            await viewer.close()
        anonymous = LiveClient(session.server, token=None)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await anonymous.connect()
        return answers, anonymous.refusals

    answers, refusals = session.run(scenario())
    assert [a["ok"] for a in answers] == [False] * 5 + [True], answers  # cancel: a no-op
    assert all("token" in a["error"] for a in answers[:5]), answers
    assert refusals == [{"message": "token required"}]
    assert session.server.get("/api/people").json() == before
