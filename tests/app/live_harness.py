"""Test harness for the live server: `facelive serve` as a subprocess on a free loopback port
(facelive.serve_process), over HTTPS with its own self-signed certificate, on the real models;
the one live-server fixture (live_server_fixture); and a python-socketio client for it. (A
module, not a conftest.py: other tests do `from conftest import ...`, which a second
conftest.py would shadow.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import cv2
import pytest
import requests
import socketio

from facelive.serve_process import ServeFailed, ServeProcess, start_serve, stop_serve

VIDEO = "video/WDA_AlexandriaOcasioCortez_000.mp4"
# A LiveClient's default token: the server's view token (viewing is closed by default).
VIEW = "<view token>"


@dataclass
class LiveServer(ServeProcess):
    """A running `facelive serve` (facelive.serve_process, the benches' launcher too) with the
    tests' conveniences: its data dir, a kept-alive HTTPS session, the token headers."""

    data_dir: Path = Path()
    http: requests.Session = field(default_factory=requests.Session)

    def rss_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET over a kept-alive connection (a new TLS connection costs the client tens of ms
        loading CA certificates). verify=False per request: a session-wide False would lose to
        $REQUESTS_CA_BUNDLE. Sends the view token (reading needs one) unless headers are given."""
        if "headers" not in kwargs and self.view_token:
            kwargs["headers"] = self.viewer_headers
        return self.http.get(self.url + path, verify=False, timeout=30, **kwargs)

    @property
    def viewer_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.view_token}"}

    @property
    def owner_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def start_server(
    models_dir: Path, data_dir: Path, env: dict[str, str] | None = None
) -> LiveServer:
    """Start `facelive serve` on a free loopback port and wait for its banner (the port,
    chosen by the server, and the tokens it made). env: extra variables (limits, say)."""
    try:
        started = start_serve(data_dir, models_dir, env)
    except ServeFailed as exc:
        raise RuntimeError(str(exc)) from None
    return LiveServer(**{f.name: getattr(started, f.name) for f in fields(started)},
                      data_dir=data_dir)


def stop_server(server: LiveServer) -> None:
    stop_serve(server, timeout_s=20)


def live_server_fixture(
    folder: str, env: dict[str, str] | None = None, name: str = "server"
) -> Any:
    """The one live-server fixture: module-scoped, a fresh data dir `folder` under pytest's
    temporary root, `env` for the server, stopped after the module's last test. A module
    takes it as `server = live_server_fixture("rest-data", {...})`."""

    @pytest.fixture(scope="module", name=name)
    def serve(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
        live = start_server(models_dir, tmp_path_factory.mktemp(folder), env=env)
        try:
            yield live
        finally:
            stop_server(live)

    return serve


class LiveClient:
    """An asyncio Socket.IO client of the live protocol, over WebSocket like the page. Every
    `faces`, `error` and `hello` event lands in one queue, in arrival order.

    Asyncio (aiohttp) rather than the threaded client: that one reads and writes one TLS
    socket from two threads at once, which Python's ssl does not support, and drops wss://
    connections at random (python-socketio issues 1568 and 1577)."""

    def __init__(
        self, server: LiveServer, token: str | None = VIEW, origin: str | None = None
    ) -> None:
        """token: VIEW (the default) the server's view token, None no token at all."""
        if token == VIEW:
            token = server.view_token or None
        # aiohttp sends no Origin header unless given one, like a non-browser client.
        extra = {"origin": origin} if origin else {}
        self.sio = socketio.AsyncClient(
            ssl_verify=False, reconnection=False, websocket_extra_options=extra
        )
        self.server = server
        self.token = token
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("faces", "error", "hello"):
            self.sio.on(name, self._recorder(name, self.events))
        # Capture progress and gallery news, apart: tests of frames never see them.
        self.notices: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("capture", "people_changed"):
            self.sio.on(name, self._recorder(name, self.notices))
        self.refusals: list[Any] = []  # why the server refused to connect, if it did
        self.sio.on("connect_error", self.refusals.append)

    @staticmethod
    def _recorder(name: str, queue: asyncio.Queue[tuple[str, Any]]) -> Any:
        async def record(payload: Any) -> None:
            queue.put_nowait((name, payload))

        return record

    async def connect(self) -> LiveClient:
        auth = {"token": self.token} if self.token is not None else None
        await self.sio.connect(
            self.server.url, transports=["websocket"], auth=auth, wait_timeout=20
        )
        return self

    async def next_event(self, timeout: float = 60) -> tuple[str, Any]:
        """The next faces/error event (hello is skipped). TimeoutError when none comes."""
        while True:
            name, payload = await asyncio.wait_for(self.events.get(), timeout)
            if name != "hello":
                return name, payload

    async def hello(self, timeout: float = 20) -> dict[str, Any]:
        while True:
            name, payload = await asyncio.wait_for(self.events.get(), timeout)
            if name == "hello":
                return payload

    async def send(self, seq: Any, image: Any) -> None:
        await self.sio.emit("frame", {"seq": seq, "image": image})

    async def ask(self, seq: int, image: bytes, timeout: float = 60) -> tuple[str, Any]:
        """Send one frame and wait for the event that answers it."""
        await self.send(seq, image)
        return await self.next_event(timeout)

    async def ask_paced(self, seq: int, image: bytes, timeout: float = 60) -> tuple[str, Any]:
        """`ask`, re-sending after the wait the server names when it refuses the frame for
        the per-client rate limit (as the page does): a fast server answers a client that
        sends the next frame at once past that limit."""
        while True:
            event, reply = await self.ask(seq, image, timeout)
            if not (event == "error" and isinstance(reply, dict)
                    and reply.get("code") == "rate_limited"):
                return event, reply
            await asyncio.sleep(max(1, int(reply.get("retry_ms", 1))) / 1000)

    async def call(self, event: str, data: Any = None, timeout: float = 120) -> Any:
        """An event answered by the server's ack (capture_start, capture_save...)."""
        return await self.sio.call(event, data, timeout=timeout)

    async def next_notice(self, timeout: float = 60) -> tuple[str, Any]:
        """The next `capture` or `people_changed` event. TimeoutError when none comes."""
        return await asyncio.wait_for(self.notices.get(), timeout)

    async def no_more_events(self, wait_s: float = 0.5) -> bool:
        try:
            await self.next_event(timeout=wait_s)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@contextlib.asynccontextmanager
async def live_client(
    server: LiveServer, token: str | None = VIEW, origin: str | None = None
) -> AsyncIterator[LiveClient]:
    client = LiveClient(server, token=token, origin=origin)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def connect_when_free(
    server: LiveServer, token: str | None = VIEW, within_s: float = 10.0
) -> LiveClient:
    """A connected client, trying again while the server refuses it (all its places taken):
    the server learns of a departure only a moment after the client has left."""
    deadline = time.monotonic() + within_s
    while True:
        client = LiveClient(server, token=token)
        try:
            return await client.connect()
        except socketio.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def read_video_frames(path: Path, count: int, size: int, quality: int) -> list[bytes]:
    """The first `count` frames of a video, resized to size x size, as JPEG bytes."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            frames.append(jpeg.tobytes())
    finally:
        capture.release()
    if len(frames) < count:
        raise RuntimeError(f"{path}: only {len(frames)} frames, {count} wanted")
    return frames
