"""The live server end to end: a real `facelive serve` subprocess over HTTPS on loopback, real
models, real video frames, a real Socket.IO client over WebSocket."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import socketio
from cryptography import x509
from live_harness import LiveClient, LiveServer, live_client, live_server_fixture, read_video_frames

from conftest import skip_or_fail
from facelive import __version__

VIDEO = "video/WDA_AlexandriaOcasioCortez_000.mp4"
MAX_FRAME_BYTES = 1024 * 1024  # the server's default limit


# No frame rate limit (test_live_limits.py tests it): these tests flood on purpose, to see the
# worker keep only the latest frame, and stream back to back, which on a fast machine would
# pass the limit.
live_server = live_server_fixture("serve-data", {"FACELIVE_MAX_CLIENT_FPS": "0"},
                                  name="live_server")


@pytest.fixture(scope="module")
def video_path(test_data: Path) -> Path:
    path = test_data / VIDEO
    if not path.is_file():
        skip_or_fail(f"test video not found: {path}")
    return path


@pytest.fixture(scope="module")
def video_frames(video_path: Path) -> list[bytes]:
    """200 frames of a 512x512 talking-head video, sent at 320x320 as the page sends frames
    downscaled."""
    return read_video_frames(video_path, 200, 320, 80)


# ------------------------------------------------------------------ streaming
def test_stream_of_200_frames_gets_one_reply_per_frame_in_order(
    live_server: LiveServer, video_frames: list[bytes], capsys: pytest.CaptureFixture
) -> None:
    async def stream() -> tuple[list[dict], list[float], float]:
        replies, round_trips = [], []
        async with live_client(live_server) as client:
            start = time.perf_counter()
            for seq, jpeg in enumerate(video_frames):
                sent = time.perf_counter()
                event, reply = await client.ask(seq, jpeg)
                round_trips.append(time.perf_counter() - sent)
                assert event == "faces", reply
                assert reply["seq"] == seq
                replies.append(reply)
            elapsed = time.perf_counter() - start
            assert await client.no_more_events(), "a frame got more than one reply"
        return replies, round_trips, elapsed

    replies, round_trips, elapsed = asyncio.run(stream())
    # One person talking: a face in (nearly) every frame, inside the 320x320 frame.
    with_face = [r for r in replies if r["faces"]]
    assert len(with_face) >= 0.95 * len(replies)
    for reply in with_face:
        face = max(reply["faces"], key=lambda f: f["box"][2] * f["box"][3])
        x, y, w, h = face["box"]
        assert -20 < x < 320 and -20 < y < 320 and 40 < w < 340 and 40 < h < 340
        assert face["score"] > 0.9
        assert len(face["landmarks"]) == 5
        # The server starts with an empty gallery: nobody to recognise.
        assert face["name"] == "unknown" and face["distance"] is None
        assert face["confidence"] is None or 0 <= face["confidence"] <= 1
    for reply in replies:
        assert set(reply["ms"]) == {"decode", "detect", "embed", "knn", "total"}
        assert reply["ms"]["total"] >= reply["ms"]["detect"] > 0

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    with capsys.disabled():
        print(
            f"\n[live stream] 200 frames 320x320: {len(replies) / elapsed:.1f} fps; round trip "
            f"median {median(round_trips) * 1000:.0f} ms, p95 "
            f"{sorted(round_trips)[189] * 1000:.0f} ms; server median: total "
            f"{median([r['ms']['total'] for r in replies]):.0f} ms, detect "
            f"{median([r['ms']['detect'] for r in replies]):.0f} ms, embed "
            f"{median([r['ms']['embed'] for r in replies]):.0f} ms, decode "
            f"{median([r['ms']['decode'] for r in replies]):.1f} ms"
        )


def test_two_clients_are_both_served_and_share_batches(
    live_server: LiveServer, video_frames: list[bytes]
) -> None:
    async def stream(frames: list[bytes]) -> list[dict]:
        replies = []
        async with live_client(live_server) as client:
            for seq, jpeg in enumerate(frames):
                event, reply = await client.ask(seq, jpeg)
                assert event == "faces" and reply["seq"] == seq, reply
                replies.append(reply)
        return replies

    async def both() -> list[list[dict]]:
        return await asyncio.gather(stream(video_frames[:40]), stream(video_frames[40:80]))

    first, second = asyncio.run(both())
    assert [len(first), len(second)] == [40, 40]
    # While one client's frame is being worked on the other's waits, so they meet in a batch.
    batches = [r["batch"] for r in first + second]
    assert max(batches) == 2, batches


def test_flooding_client_gets_only_latest_frames_and_memory_stays_flat(
    live_server: LiveServer, video_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Large frames (640x640, JPEG quality 95), so that holding on to them would show in RSS.
    frames = read_video_frames(video_path, 100, 640, 95)

    async def flood(client: LiveClient, first_seq: int, count: int) -> list[int]:
        """Send `count` frames without waiting; the seqs answered, once the last one is."""
        for k in range(count):
            await client.send(first_seq + k, frames[k % len(frames)])
        last, answered = first_seq + count - 1, []
        while not answered or answered[-1] != last:
            event, reply = await client.next_event(timeout=120)
            assert event == "faces", reply
            answered.append(reply["seq"])
        assert await client.no_more_events()
        return answered

    async def scenario() -> tuple[list[int], int, int]:
        async with live_client(live_server) as client:
            event, _ = await client.ask(0, frames[0])  # a new frame size traces the detector
            assert event == "faces"
            await flood(client, 1, 100)  # warm: buffers and allocator reach working size
            await asyncio.sleep(1.0)
            before = live_server.rss_kib()
            answered = await flood(client, 101, 300)
            await asyncio.sleep(1.0)
            return answered, before, live_server.rss_kib()

    answered, before, after = asyncio.run(scenario())
    sent_mib = sum(len(frames[k % len(frames)]) for k in range(300)) / 2**20
    with capsys.disabled():
        print(
            f"\n[flood] 300 frames of 640x640 ({sent_mib:.0f} MiB) sent at once: "
            f"{len(answered)} answered; server RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB"
        )
    assert answered == sorted(set(answered)), "replies out of order or repeated"
    assert answered[-1] == 400, "the last frame sent must be answered"
    assert len(answered) < 300, "a flood must be thinned out, not queued"
    # Keeping the flood's frames (a queue) would add at least sent_mib; decoded, ten times it.
    growth_mib = (after - before) / 1024
    assert growth_mib < min(24.0, 0.5 * sent_mib), f"RSS grew by {growth_mib:.1f} MiB"


def test_inference_does_not_block_the_event_loop(
    live_server: LiveServer, video_path: Path
) -> None:
    """While frames are being analysed (on the worker's OS thread), the server still answers
    HTTP at once: were the event loop blocked, a request would wait on average for half of a
    frame's analysis."""
    big = read_video_frames(video_path, 1, 2000, 80)[0]  # 2000x2000: slow enough to measure
    # Its negative after it: every frame a scene cut, so each gets the full detector (the
    # same frame again would be followed cheaply at the tracks, too fast to measure against).
    negative = cv2.imencode(".jpg", 255 - cv2.imdecode(np.frombuffer(big, np.uint8),
                                                       cv2.IMREAD_COLOR))[1].tobytes()

    async def scenario() -> tuple[list[float], list[float]]:
        async with live_client(live_server) as client:
            await client.ask(0, big)  # the first frame of a new size traces the detector

            async def stream() -> list[float]:
                totals = []
                for seq in range(1, 9):
                    event, reply = await client.ask(seq, negative if seq % 2 else big)
                    assert event == "faces", reply
                    totals.append(reply["ms"]["total"] / 1000)
                return totals

            streaming = asyncio.create_task(stream())
            waits = []
            while not streaming.done():
                start = time.perf_counter()
                health = await asyncio.to_thread(live_server.get, "/api/health")
                waits.append(time.perf_counter() - start)
                assert health.status_code == 200
                await asyncio.sleep(0.037)  # out of step with the frames
            return await streaming, waits

    totals, waits = asyncio.run(scenario())
    frame_s, wait_s = sorted(totals)[len(totals) // 2], sorted(waits)[len(waits) // 2]
    assert len(waits) >= 5, waits
    assert wait_s < 0.25 * frame_s, f"health median {wait_s:.3f} s, frame median {frame_s:.3f} s"


# ------------------------------------------------------------------ refusals
def test_malformed_frames_get_an_error_and_change_nothing(
    live_server: LiveServer, video_frames: list[bytes]
) -> None:
    jpeg = video_frames[0]
    bad_messages = [
        ("not a frame", "must be an object"),
        ({"image": jpeg}, "seq must be an integer"),
        ({"seq": "1", "image": jpeg}, "seq must be an integer"),
        ({"seq": True, "image": jpeg}, "seq must be an integer"),
        ({"seq": -1, "image": jpeg}, "seq must be in"),
        ({"seq": 1}, "binary JPEG data, got missing"),
        ({"seq": 1, "image": "data:image/jpeg;base64,AAAA"}, "binary JPEG data, got str"),
        ({"seq": 1, "image": b""}, "empty"),
        ({"seq": 1, "image": b"GIF89a" + b"\0" * 100}, "not a supported image"),
        ({"seq": 1, "image": b"\xff\xd8" + b"\x00garbage" * 20}, "broken JPEG"),
        ({"seq": 1, "image": b"\xff\xd8" + b"\0" * MAX_FRAME_BYTES}, "too large"),
    ]

    async def scenario() -> None:
        async with live_client(live_server) as client:
            for message, expected in bad_messages:
                await client.sio.emit("frame", message)
                event, reply = await client.next_event(timeout=30)
                assert event == "error", (expected, reply)
                assert expected in reply["message"], reply
            # A JPEG whose header is fine but which has no image data fails later, on the
            # worker; the error still names its seq so that a waiting client can go on.
            header_only = jpeg[: jpeg.index(b"\xff\xda")]  # everything before the scan
            event, reply = await client.ask(5, header_only)
            assert event == "error" and reply["seq"] == 5, reply
            assert "cannot decode" in reply["message"]
            # Nothing was queued or broken: the next good frame is answered, once.
            event, reply = await client.ask(6, jpeg)
            assert event == "faces" and reply["seq"] == 6 and reply["faces"]
            event, reply = await client.ask(6, jpeg)
            assert event == "error" and "stale frame" in reply["message"]
            assert await client.no_more_events()

    asyncio.run(scenario())


def test_foreign_origin_is_refused(live_server: LiveServer) -> None:
    async def scenario() -> dict:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await LiveClient(live_server, origin="https://evil.example").connect()
        # The page's own origin is welcome.
        async with live_client(live_server, origin=live_server.url) as client:
            return await client.hello()

    assert asyncio.run(scenario())["version"] == __version__
    # Long-polling, the other transport, refuses it too.
    response = live_server.get(
        "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 400


def test_token_gives_change_rights_and_a_wrong_one_is_refused(live_server: LiveServer) -> None:
    async def can_change(token: str | None) -> bool:
        async with live_client(live_server, token=token) as client:
            return (await client.hello())["can_change"]

    async def scenario() -> None:
        assert await can_change(live_server.view_token) is False  # the view token watches
        assert await can_change(live_server.token) is True
        # Viewing is closed by default: no token, no connection.
        anonymous = LiveClient(live_server, token=None)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await anonymous.connect()
        assert anonymous.refusals == [{"message": "token required"}]
        intruder = LiveClient(live_server, token="not-the-token")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await intruder.connect()
        assert intruder.refusals == [{"message": "invalid token"}]

    asyncio.run(scenario())
    for name, token in (("token", live_server.token), ("view_token", live_server.view_token)):
        token_file = live_server.data_dir / name
        assert token_file.read_text().strip() == token
        assert token_file.stat().st_mode & 0o777 == 0o600
    # Both URLs printed; the access log has lines, never a token.
    printed = "\n".join(live_server.output)
    assert "view-only URL" in printed
    assert "absl::InitializeLog" not in printed and "oneDNN" not in printed  # TF kept quiet
    assert live_server.get("/api/people?token=" + live_server.token).status_code == 200
    deadline = time.monotonic() + 10
    while not any(" GET /api/people 200 " in line for line in live_server.output):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.05)
    start = next(i for i, line in enumerate(live_server.output) if "Access log below" in line)
    logged = live_server.output[start + 1:]
    assert all(live_server.token not in line and live_server.view_token not in line
               for line in logged)


# ------------------------------------------------------------------ HTTP
def test_health_answers(live_server: LiveServer) -> None:
    async def hello() -> dict:
        async with live_client(live_server) as client:
            return await client.hello()

    response = live_server.get("/api/health")
    assert response.status_code == 200
    health = response.json()
    # An empty gallery: the open-set rule's loosest threshold (one person's, from the built-in
    # table) and nobody to be mistaken for, so no stranger can be named yet.
    assert health == {"version": __version__, "embedder": asyncio.run(hello())["embedder"],
                      "gallery_size": 0, "people": 0, "target_far": 0.009, "expected_far": 0.0,
                      "threshold": health["threshold"], "threshold_source": "built-in table"}
    assert health["embedder"] in ("facenet", "dlib-resnet")
    assert 0.3 < health["threshold"] < 0.5


def test_page_and_its_modules_are_served(live_server: LiveServer) -> None:
    page = live_server.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/js/main.js">' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("main", "camera", "overlay", "socket"):
        script = live_server.get(f"/js/{name}.js")
        assert script.status_code == 200, name
        assert script.headers["Content-Type"].startswith("text/javascript")
    assert live_server.get("/style.css").status_code == 200
    assert live_server.get("/package.json").status_code == 404
    assert live_server.get("/js/../package.json").status_code == 404
    client_lib = live_server.get("/vendor/socket.io/socket.io.esm.min.js")
    if client_lib.status_code == 404:
        skip_or_fail("web/node_modules missing: run `npm ci --prefix web`")
    assert client_lib.status_code == 200 and "export{" in client_lib.text
    assert live_server.get("/vendor/socket.io/socket.io.js").status_code == 404


def test_certificate_is_self_signed_for_this_machine_with_a_private_key(
    live_server: LiveServer,
) -> None:
    pem = ssl.get_server_certificate(("127.0.0.1", live_server.port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert cert.issuer == cert.subject
    key = live_server.data_dir / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    # Verified against its own certificate (no verify=False), the connection is trusted.
    response = requests.get(
        live_server.url + "/api/health", verify=str(live_server.data_dir / "tls" / "cert.pem"),
        timeout=30,
    )
    assert response.status_code == 200
