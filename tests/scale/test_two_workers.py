"""Two `facelive serve` workers on loopback sharing one real PostgreSQL gallery and one real
Redis (tests/services.py), driven as a page and a REST client would: a change committed
through one worker reaches the other's KNN (LISTEN/NOTIFY) and the pages connected to it
(Socket.IO's message queue), and killing one worker loses nothing committed."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from live_harness import LiveServer, live_client, start_server, stop_server  # noqa: E402

OWNER, VIEWER = "owner-token-scale-13", "viewer-token-scale-13"
PERSON = "Colin_Powell"
# kill -9 rounds of worker A. Each costs a worker start (~25 s on the busy 2-core machine),
# so CI runs 5; FACELIVE_SCALE_KILLS=20 is the full count (run and recorded in
# BENCHMARKS.md).
KILLS = int(os.environ.get("FACELIVE_SCALE_KILLS", "5"))


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    env: dict[str, str]
    models_dir: Path
    photos: list[bytes]


def start_worker(models_dir: Path, data_dir: Path, env: dict[str, str]) -> LiveServer:
    return start_server(models_dir, data_dir, env)


@pytest.fixture(scope="module")
def cluster(
    postgres: Any, redis_url: str, models_dir: Path, lfw_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    env = {"FACELIVE_DATABASE_URL": postgres.create_database("workers"),
           "FACELIVE_MESSAGE_QUEUE": redis_url, "FACELIVE_TOKEN": OWNER,
           "FACELIVE_VIEW_TOKEN": VIEWER, "FACELIVE_ACCESS_LOG": "0"}
    dirs = [tmp_path_factory.mktemp(name) for name in ("worker-a", "worker-b")]
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda d: start_worker(models_dir, d, env), dirs)
    photos = [p.read_bytes() for p in sorted((lfw_dir / PERSON).glob("*.jpg"))[:12]]
    cluster = Cluster(a, b, env, models_dir, photos)
    yield cluster
    for server in (cluster.a, cluster.b):
        stop_server(server)


def enrol(server: LiveServer, name: str, images: list[bytes]) -> requests.Response:
    return server.http.post(
        f"{server.url}/api/people/{quote(name)}/examples", headers=server.owner_headers,
        files=[("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)],
        verify=False, timeout=120,
    )


def main_name(reply: dict[str, Any]) -> str | None:
    faces = reply["faces"]
    if not faces:
        return None
    return max(faces, key=lambda f: f["box"][2] * f["box"][3])["name"]


def people(server: LiveServer) -> dict[str, int]:
    response = server.get("/api/people")
    response.raise_for_status()
    return {p["name"]: p["examples"] for p in response.json()["people"]}


def test_enrolment_through_a_is_named_in_b_live_replies_within_1_s(cluster: Cluster) -> None:
    a, b, probe = cluster.a, cluster.b, cluster.photos[-1]

    async def scenario() -> tuple[float, int]:
        async with live_client(b) as client:
            event, reply = await client.ask_paced(1, probe)
            assert event == "faces" and main_name(reply) == "unknown"
            response = await asyncio.to_thread(enrol, a, "Colin Powell", cluster.photos[:3])
            committed = time.monotonic()
            assert response.status_code == 200, response.text
            seq, named_after, frames = 2, None, 0
            while True:
                sent = time.monotonic()
                event, reply = await client.ask_paced(seq, probe)
                seq, frames = seq + 1, frames + 1
                name = main_name(reply)
                if name == "Colin Powell" and named_after is None:
                    named_after = time.monotonic() - committed
                if sent >= committed + 1.0:  # sent a second after the commit: must be named
                    assert name == "Colin Powell", reply
                    return named_after or 0.0, frames
                assert name in ("unknown", "Colin Powell"), reply

    named_after, frames = asyncio.run(scenario())
    print(f"named in B's replies {named_after * 1000:.0f} ms after A's commit ({frames} frames)")
    assert named_after < 1.0


def test_rename_and_delete_through_b_reach_a_page_on_a_and_a_follows(cluster: Cluster) -> None:
    a, b, probe = cluster.a, cluster.b, cluster.photos[-2]
    if "Colin Powell" not in people(b):
        assert enrol(a, "Colin Powell", cluster.photos[:3]).status_code == 200

    async def follow(client: Any, seq: int, expected: str) -> int:
        """Stream to A until it names the face `expected`; within 1 s of the notice."""
        deadline = time.monotonic() + 1.0
        while True:
            event, reply = await client.ask_paced(seq, probe)
            seq += 1
            if main_name(reply) == expected:
                return seq
            assert time.monotonic() < deadline, reply

    async def scenario() -> None:
        async with live_client(a) as page:
            seq = await follow(page, 1, "Colin Powell")
            response = await asyncio.to_thread(
                b.http.patch, f"{b.url}/api/people/Colin%20Powell", json={"name": "Gen. Powell"},
                headers=b.owner_headers, verify=False, timeout=60)
            assert response.status_code == 200, response.text
            name, payload = await page.next_notice(timeout=5)
            assert name == "people_changed" and "gallery_size" in payload
            seq = await follow(page, seq, "Gen. Powell")
            response = await asyncio.to_thread(
                b.http.delete, f"{b.url}/api/people/gen.%20powell", headers=b.owner_headers,
                verify=False, timeout=60)
            assert response.status_code == 200, response.text
            name, _ = await page.next_notice(timeout=5)
            assert name == "people_changed"
            await follow(page, seq, "unknown")

    asyncio.run(scenario())
    assert "Gen. Powell" not in people(a) and people(a) == people(b)


def test_one_address_in_front_of_both_workers(cluster: Cluster) -> None:
    """docker/nginx.conf (on Debian's nginx): REST and the live stream through one address,
    WebSocket upgraded, and a Socket.IO session that starts on long-polling (a client behind a
    proxy that blocks WebSocket) kept on one worker for every request."""
    from conftest import skip_or_fail
    from services import start_nginx

    try:
        proxy = start_nginx([cluster.a.port, cluster.b.port], cluster.a.data_dir / "tls")
    except FileNotFoundError as exc:
        skip_or_fail(str(exc))
    try:
        front = LiveServer(proc=cluster.a.proc, url=proxy.url, port=proxy.port, token=OWNER,
                           view_token=VIEWER, data_dir=cluster.a.data_dir)
        assert people(front) == people(cluster.b)

        async def scenario() -> None:
            async with live_client(front) as client:
                event, reply = await client.ask_paced(1, cluster.photos[-1])
                assert event == "faces" and reply["faces"], reply
            polling = socketio.AsyncClient(ssl_verify=False, reconnection=False)
            answers: asyncio.Queue[Any] = asyncio.Queue()
            polling.on("faces", answers.put_nowait)
            await polling.connect(proxy.url, transports=["polling", "websocket"],
                                  auth={"token": VIEWER}, wait_timeout=20)
            for seq in range(1, 4):
                await polling.emit("frame", {"seq": seq, "image": cluster.photos[-1]})
                assert (await asyncio.wait_for(answers.get(), 60))["seq"] == seq
            await polling.disconnect()

        asyncio.run(scenario())
        time.sleep(1.0)  # nginx logs a request when it ends
        seen = proxy.upstreams_seen()
        live = [worker for _, worker, *rest in seen if any("/socket.io/" in r for r in rest)]
        assert len(live) >= 3 and len(set(live)) == 1, seen  # sticky: one worker
    finally:
        proxy.stop()


@pytest.mark.slow
def test_kill_9_of_a_during_enrolments_loses_nothing_and_b_keeps_answering(
    cluster: Cluster,
) -> None:
    rng = random.Random(13)
    committed: dict[str, int] = {}  # enrolments A answered 200: must survive everything
    gaps: list[float] = []

    def enrol_until_killed(server: LiveServer, round_: int) -> None:
        for k in range(100):
            name = f"Kill {round_:02d}-{k:02d}"
            images = rng.sample(cluster.photos[:10], 2)
            try:
                response = enrol(server, name, images)
            except requests.RequestException:
                return  # killed mid-request: this one may or may not have committed
            if response.status_code == 200:
                committed[name] = response.json()["examples_added"]

    async def scenario() -> None:
        async with live_client(cluster.b) as client:
            stop = asyncio.Event()

            async def stream_b() -> None:
                seq, last = 1, time.monotonic()
                while not stop.is_set():
                    event, reply = await client.ask_paced(seq, cluster.photos[-1], timeout=60)
                    assert event == "faces", reply
                    now = time.monotonic()
                    gaps.append(now - last)
                    last, seq = now, seq + 1
                    # A camera's pace, not a flood: A's restarts need the CPUs too.
                    await asyncio.sleep(0.1)

            streaming = asyncio.create_task(stream_b())
            for round_ in range(KILLS):
                a = cluster.a
                writer = asyncio.create_task(asyncio.to_thread(enrol_until_killed, a, round_))
                await asyncio.sleep(rng.uniform(0.3, 2.5))
                a.proc.kill()  # SIGKILL: no cleanup, no rollback
                await asyncio.to_thread(a.proc.wait)
                await writer
                assert not streaming.done(), streaming
                cluster.a = await asyncio.to_thread(
                    start_worker, cluster.models_dir, a.data_dir, cluster.env)
                await asyncio.to_thread(check_consistent, cluster, committed)
            stop.set()
            await streaming

    asyncio.run(scenario())
    print(f"{KILLS} kills, {len(committed)} enrolments committed, B answered {len(gaps)} "
          f"frames, longest wait {max(gaps):.2f} s")
    assert len(committed) >= KILLS  # the kills landed among enrolments, not before them
    assert max(gaps) < 20.0  # B answered throughout (while A's restarts took the CPUs)


def check_consistent(cluster: Cluster, committed: dict[str, int]) -> None:
    on_b = people(cluster.b)
    assert people(cluster.a) == on_b
    for name, count in committed.items():
        assert on_b.get(name) == count, (name, on_b.get(name))
    # An enrolment killed mid-request is all there or not at all.
    assert all(count == 2 for name, count in on_b.items() if name.startswith("Kill")), on_b
    deadline = time.monotonic() + 5
    while True:  # both KNNs hold the same examples (B reloads at its next frame)
        sizes = [s.get("/api/health").json()["gallery_size"] for s in (cluster.a, cluster.b)]
        if sizes[0] == sizes[1] == sum(on_b.values()):
            return
        assert time.monotonic() < deadline, (sizes, sum(on_b.values()))
        time.sleep(0.1)
