"""Hostile Socket.IO traffic against one real `facelive serve` (real models, WSS).

Property-based (hypothesis): random `frame` payloads (non-dicts, wrong types, huge and
negative seq, random bytes and forged JPEG headers as images) and random unknown or capture
events. After each one the server must still be alive, the connection still open, and a good
frame on the same connection must still get its `faces` reply.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The harness lives beside the app tests (a module, not a package: see its docstring).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from live_harness import (  # noqa: E402
    VIDEO,
    LiveClient,
    LiveServer,
    read_video_frames,
    start_server,
    stop_server,
)

MAX_FRAME_BYTES = 100_000  # small, so that "over the limit" frames stay cheap to send
GOOD_SEQ_BASE = 10**12  # good frames use seqs no random payload is likely to pick
COUNT: dict[str, int] = {"payloads": 0}


class Session:
    """One event loop and one connected client kept across all hypothesis examples (a new TLS
    connection per example would cost most of the time budget)."""

    def __init__(self, server: LiveServer, good: bytes) -> None:
        self.server = server
        self.good = good
        self.loop = asyncio.new_event_loop()
        self.client = self.connect()
        self.good_seq = GOOD_SEQ_BASE

    def connect(self) -> LiveClient:
        client = LiveClient(self.server, token=self.server.token)
        self.loop.run_until_complete(client.connect())
        self.loop.run_until_complete(client.hello())
        return client

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def assert_still_serving(self, what: str) -> list[tuple[str, Any]]:
        """Alive, connected, and a good frame is answered with its faces. Returns the events
        that came before that reply (the hostile payload's answers, if any)."""
        assert self.server.proc.poll() is None, f"server died after {what}:\n" + "\n".join(
            self.server.output[-30:])
        assert self.client.sio.connected, f"connection dropped after {what}"
        self.good_seq += 1
        seq = self.good_seq

        async def served() -> tuple[dict[str, Any], list[tuple[str, Any]]]:
            await self.client.send(seq, self.good)
            stray: list[tuple[str, Any]] = []
            for _ in range(50):  # bounded: at most this many stray replies before ours
                name, payload = await self.client.next_event(timeout=60)
                if isinstance(payload, dict) and payload.get("seq") == seq:
                    assert name == "faces", (what, payload)
                    return payload, stray
                stray.append((name, payload))
            raise AssertionError(f"no reply to the good frame after {what}")

        reply, stray = self.run(served())
        assert isinstance(reply["faces"], list)
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
                          env={"FACELIVE_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES)})
    live = Session(server, good)
    try:
        live.assert_still_serving("start-up")
        yield live
    finally:
        print(f"\nhostile socket: {COUNT['payloads']} payloads sent")
        live.close()
        stop_server(server)


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
        # with its own (currently failing) test at the end of this module.
        return
    COUNT["payloads"] += 1
    session.run(session.client.sio.emit("frame", payload))
    stray = session.assert_still_serving(f"frame {payload!r:.200}")
    # Answered with a protocol `error` {seq, message}, or (a valid frame by chance) `faces`.
    for name, reply in stray:
        assert name in ("error", "faces"), (name, reply)
        if name == "error":
            assert isinstance(reply.get("message"), str) and reply["message"], reply
            assert "server error" not in reply["message"], (payload, reply)  # an exception
    if not isinstance(payload, dict):
        assert [name for name, _ in stray] == ["error"], (payload, stray)


@settings(SOCKET_SETTINGS, max_examples=90)
@given(event=st.one_of(st.text(min_size=1, max_size=40),
                       st.sampled_from(["capture_start", "capture_save", "capture_cancel",
                                        "faces", "error", "hello", "people_changed"])),
       payload=values)
def test_unknown_and_capture_events_do_not_hurt(session: Session, event: str,
                                                payload: Any) -> None:
    # Socket.IO reserves these names client-side; emitting them raises before sending.
    if event in ("connect", "disconnect", "connect_error", "__disconnect_final"):
        return
    COUNT["payloads"] += 1
    session.run(session.client.sio.emit(event, payload))
    # Capture events answer through acks, which emit() discards; cancel any capture begun, so
    # that later good frames are not captured.
    session.run(session.client.sio.emit("capture_cancel"))
    session.assert_still_serving(f"event {event!r:.60} {payload!r:.200}")


def test_a_message_over_the_socket_buffer_drops_only_that_client(session: Session) -> None:
    """Over max_http_buffer_size (2 x max frame bytes + 64 KiB) the server closes that one
    connection; it must survive it and go on serving, the same client once it reconnects."""
    COUNT["payloads"] += 1
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
    COUNT["payloads"] += 1
    session.run(session.client.sio.emit("frame"))
    stray = session.assert_still_serving("a frame event without argument")
    assert [name for name, _ in stray] == ["error"], stray
    assert "server error" not in stray[0][1]["message"], stray
