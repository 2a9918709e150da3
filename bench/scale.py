"""Scale-out benchmark (issue 13): workers on one PostgreSQL gallery and one Redis, behind nginx.

    python bench/scale.py [--json] [--clients 8] [--seconds 45] [--changes 20]
                          [--models-dir D] [--data DIR] [--gallery-sizes 10000,30000]

Starts everything itself (tests/services.py): PostgreSQL (initdb in a temporary folder),
Redis, two `facelive serve` workers on loopback and Debian's nginx with docker/nginx.conf.

1. served fps: --clients pages stream 640x480 frames of the WDA_*.mp4 clips for --seconds,
   each sending its next frame when the last one is answered (as the page does), through
   nginx to one worker, then to two. nginx's ip_hash keys on a client's first three octets,
   so the clients bind to source addresses 127.0.N.1 chosen (by a probe request each, read
   back from nginx's access log) to split them evenly between the workers, as cameras on
   different networks would be.
2. commit to effect: a page streams an LFW face to worker B while worker A's REST API enrols
   that person (then deletes them), --changes times; the time from A's answer to the first
   reply of B that follows the change. Also the bare notice: a commit on one connection until
   another's listener has heard it.
3. PostgreSQL: enrolments (one example each, a real-sized face patch) committed per second by
   one writer and by two at once; a delete (its purge included) and a full reload of every
   vector at each --gallery-sizes, which is what each worker does after every change.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))
from benchutil import machine, report, start_server, stop_server  # noqa: E402
from load import LoadClient, load_frames, pct, rss_kib  # noqa: E402
from services import start_nginx, start_postgres, start_redis  # noqa: E402

PERSON = "George_W_Bush"


class BoundClient(LoadClient):
    """A LoadClient whose connections leave from `source` (a loopback address)."""

    def __init__(self, url: str, frames: list[bytes], offset: int, source: str) -> None:
        super().__init__(url, frames, offset)
        self.source = source

    async def run(self, start: float, until: float) -> Any:
        import aiohttp
        import socketio

        connector = aiohttp.TCPConnector(local_addr=(self.source, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            self.sio = socketio.AsyncClient(ssl_verify=False, reconnection=False,
                                            http_session=session)
            self.sio.on("faces", lambda p: self.replies.put_nowait(("faces", p)))
            self.sio.on("error", lambda p: self.replies.put_nowait(("error", p)))
            self.sio.on("disconnect", self._lost)
            return await super().run(start, until)


async def probe_sources(proxy: Any, candidates: list[str]) -> dict[str, str]:
    """source address -> the worker (host:port) nginx sends it to."""
    import aiohttp

    for source in candidates:
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=False)
        async with aiohttp.ClientSession(connector=connector) as session, \
                session.get(f"{proxy.url}/api/health?probe={source}") as response:
            await response.read()
    await asyncio.sleep(0.5)  # the access log is written after the response
    seen: dict[str, str] = {}
    for client, worker, _status, path in proxy.upstreams_seen():
        if "probe=" in path:
            seen[client] = worker
    return seen


async def stream_fps(proxy: Any, frames: list[bytes], clients: int, seconds: float,
                     workers: int) -> dict[str, Any]:
    candidates = [f"127.0.{n}.1" for n in range(1, 64)]
    routes = await probe_sources(proxy, candidates)
    by_worker: dict[str, list[str]] = {}
    for source in candidates:
        if source in routes:
            by_worker.setdefault(routes[source], []).append(source)
    if len(by_worker) < workers:
        raise SystemExit(f"scale: nginx sent every probe to {sorted(by_worker)}")
    per = [clients // workers + (i < clients % workers) for i in range(workers)]
    sources = [s for (_, found), n in zip(sorted(by_worker.items()), per, strict=False)
               for s in found[:n]]
    spread = max(1, len(frames) // clients)
    start = time.perf_counter()
    until = start + seconds
    tallies = await asyncio.gather(*(
        BoundClient(proxy.url, frames, i * spread, source).run(start, until)
        for i, source in enumerate(sources)))
    elapsed = time.perf_counter() - start
    trips = [ms for t in tallies for _, ms in t.samples]
    answered = {}
    for source, tally in zip(sources, tallies, strict=True):
        answered[routes[source]] = answered.get(routes[source], 0) + len(tally.samples)
    return {"workers": workers, "clients": clients, "seconds": round(elapsed, 1),
            "served_fps": round(len(trips) / elapsed, 2),
            "fps_by_worker": {w: round(n / elapsed, 2) for w, n in sorted(answered.items())},
            "round_trip_ms": {"p50": pct(trips, 50), "p95": pct(trips, 95)},
            "dropped": sum(t.dropped for t in tallies), "errors": sum(t.errors for t in tallies),
            "disconnects": sum(t.disconnects for t in tallies),
            "connect_failures": sum(t.connect_failures for t in tallies)}


def owner_request(server: Any, method: str, path: str, **kwargs: Any) -> Any:
    import requests

    return requests.request(method, server.url + path, verify=False, timeout=120,
                            headers={"Authorization": f"Bearer {server.token}"}, **kwargs)


async def commit_to_effect(a: Any, b: Any, photos: list[bytes], probe: bytes,
                           changes: int) -> dict[str, Any]:
    """Enrol through A, time until B's live replies name the face; delete through A, time
    until B's replies call it unknown."""
    import socketio

    client = socketio.AsyncClient(ssl_verify=False, reconnection=False)
    replies: asyncio.Queue[Any] = asyncio.Queue()
    client.on("faces", replies.put_nowait)
    await client.connect(b.url, transports=["websocket"], wait_timeout=30)
    names: list[tuple[float, str | None]] = []
    stop = asyncio.Event()

    async def stream() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            await client.emit("frame", {"seq": seq, "image": probe})
            reply = await asyncio.wait_for(replies.get(), 60)
            faces = reply["faces"]
            name = max(faces, key=lambda f: f["box"][2] * f["box"][3])["name"] if faces else None
            names.append((time.perf_counter(), name))

    async def effect(after: float, expected: str) -> float:
        """ms from `after` to the first reply of B that shows `expected`."""
        while True:
            hit = next((t for t, n in names if t > after and n == expected), None)
            if hit is not None:
                return (hit - after) * 1e3
            if time.perf_counter() - after > 30:
                raise SystemExit(f"scale: B never showed {expected!r}")
            await asyncio.sleep(0.02)

    streaming = asyncio.create_task(stream())
    enrol_ms, delete_ms = [], []
    try:
        for i in range(changes):
            name = f"Bench {i:03d}"
            files = [("images", (f"{k}.jpg", data, "image/jpeg")) for k, data in enumerate(photos)]
            response = await asyncio.to_thread(owner_request, a, "POST",
                                               f"/api/people/{quote(name)}/examples",
                                               files=files)
            done = time.perf_counter()
            if response.status_code != 200:
                raise SystemExit(f"scale: enrolment refused: {response.text}")
            enrol_ms.append(await effect(done, name))
            response = await asyncio.to_thread(owner_request, a, "DELETE",
                                               f"/api/people/{quote(name)}")
            done = time.perf_counter()
            delete_ms.append(await effect(done, "unknown"))
    finally:
        stop.set()
        await streaming
        await client.disconnect()
    trips = [later - earlier for (earlier, _), (later, _) in zip(names, names[1:], strict=False)]
    return {"changes": changes,
            "enrol_to_named_ms": summary(enrol_ms), "delete_to_unknown_ms": summary(delete_ms),
            "b_frame_interval_ms": round(statistics.median(trips) * 1e3, 1) if trips else None}


def summary(values: list[float]) -> dict[str, float | None]:
    return {"median": round(statistics.median(values), 1) if values else None,
            "p95": pct(values, 95), "max": round(max(values), 1) if values else None}


# ---------------------------------------------------------------- PostgreSQL alone
def notice_latency(url: str, repeat: int = 50) -> dict[str, Any]:
    from facelive.recognition.gallery_pg import PgGallery

    out = []
    with PgGallery(url) as writer, PgGallery(url) as reader:
        reader.listen()
        for i in range(repeat):
            reader.changed_elsewhere()
            start = time.perf_counter()
            writer.add_person(f"Notice {i}")
            while not reader.changed_elsewhere():
                time.sleep(0.0005)
            out.append((time.perf_counter() - start) * 1e3)
        writer.clear()
    return summary(out)


def write_rate(url: str, patch: Any, vector: np.ndarray, count: int) -> dict[str, Any]:
    from facelive.recognition.gallery_pg import PgGallery

    def writer(tag: str, n: int) -> None:
        with PgGallery(url) as g:
            for i in range(n):
                g.add_examples(f"Writer {tag} {i}", [patch], vector[None], "dlib-resnet",
                               "upload")

    start = time.perf_counter()
    writer("one", count)
    one = count / (time.perf_counter() - start)
    start = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(tag, count // 2)) for tag in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = (count // 2 * 2) / (time.perf_counter() - start)
    return {"enrolments_per_s_one_writer": round(one, 1),
            "enrolments_per_s_two_writers": round(two, 1), "patch_bytes": len(patch.jpeg)}


def gallery_sizes(url: str, patch: Any, sizes: list[int]) -> list[dict[str, Any]]:
    """Fill the gallery to each size (bulk SQL), then time what every worker does after a
    change (a full reload of the vectors) and a delete with its VACUUM FULL."""
    import psycopg

    from facelive.recognition.gallery_pg import PgGallery

    rng = np.random.default_rng(13)
    out = []
    with PgGallery(url) as g:
        g.clear()
        have = 0
        for size in sizes:
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                while have < size:
                    batch = min(5000, size - have)
                    vectors = rng.normal(size=(batch, 128)).astype("<f4")
                    cur.execute("INSERT INTO facelive.people (name, key, created) "
                                "SELECT 'Bulk ' || g, 'bulk ' || g, 0 FROM generate_series("
                                "%s::int, %s::int) g", (have, have + batch - 1))
                    cur.execute("SELECT id FROM facelive.people WHERE name LIKE 'Bulk %%' "
                                "ORDER BY id DESC LIMIT %s", (batch,))
                    people = [r[0] for r in cur.fetchall()][::-1]
                    with cur.copy("COPY facelive.examples (person, source, created, crop, "
                                  "box, landmarks, digest) FROM STDIN") as copy:
                        for k, person in enumerate(people):
                            copy.write_row((person, "import", 0.0, patch.jpeg,
                                            np.asarray(patch.box, "<f4").tobytes(),
                                            np.asarray(patch.landmarks, "<f4").tobytes(),
                                            f"bulk{have + k}"))
                    cur.execute("SELECT id FROM facelive.examples WHERE digest LIKE 'bulk%%' "
                                "ORDER BY id DESC LIMIT %s", (batch,))
                    examples = [r[0] for r in cur.fetchall()][::-1]
                    with cur.copy("COPY facelive.embeddings (example, embedder, dim, vector) "
                                  "FROM STDIN") as copy:
                        for example, row in zip(examples, vectors, strict=True):
                            copy.write_row((example, "dlib-resnet", 128, row.tobytes()))
                    have += batch
                cur.execute("VACUUM ANALYZE facelive.examples")
            start = time.perf_counter()
            stored = g.vectors("dlib-resnet")
            reload_ms = (time.perf_counter() - start) * 1e3
            knn = knn_cost(stored)
            g.add_examples("To delete", [patch], stored.matrix[:1], "dlib-resnet", "upload")
            start = time.perf_counter()
            g.delete("To delete")
            delete_ms = (time.perf_counter() - start) * 1e3
            with psycopg.connect(url) as conn:
                db_bytes = conn.execute("SELECT pg_database_size(current_database())"
                                        ).fetchone()[0]
            out.append({"examples": size, "full_reload_ms": round(reload_ms, 1),
                        "knn_matrix_mib": round(stored.matrix.nbytes / 2**20, 1), **knn,
                        "delete_ms": round(delete_ms, 1),
                        "database_mib": round(db_bytes / 2**20, 1)})
    return out


def knn_cost(stored: Any) -> dict[str, Any]:
    """What a worker's in-graph KNN costs at this size: resident memory added by loading the
    vectors, the load itself, and one face's query (brute force over every row)."""
    from facelive.recognition.knn import KnnIndex

    before = rss_kib(os.getpid()) or 0
    start = time.perf_counter()
    index = KnnIndex(stored.matrix.shape[1], k=5)
    index.replace_all(stored.matrix, stored.labels, stored.example_ids)
    load_ms = (time.perf_counter() - start) * 1e3
    grown = ((rss_kib(os.getpid()) or 0) - before) / 1024
    probe = stored.matrix[:1] + 0.01
    for _ in range(3):
        index.query(probe, 0.5)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        index.query(probe, 0.5)
        times.append((time.perf_counter() - start) * 1e3)
    return {"knn_load_ms": round(load_ms, 1), "knn_rss_growth_mib": round(grown, 1),
            "knn_query_one_face_ms": round(statistics.median(times), 2), "knn_search": index.search}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--gallery-sizes", default="10000,30000")
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    import urllib3

    urllib3.disable_warnings()
    data = Path(args.data)
    frames = load_frames(data)
    lfw = sorted((data / "lfw" / PERSON).glob("*.jpg"))
    photos, probe = [p.read_bytes() for p in lfw[:3]], lfw[10].read_bytes()
    postgres, redis = start_postgres(durable=True), start_redis()
    servers: list[Any] = []
    proxy = None
    results: dict[str, Any] = {}
    try:
        url = postgres.create_database("bench")
        env = {"FACELIVE_DATABASE_URL": url, "FACELIVE_MESSAGE_QUEUE": redis.url,
               "FACELIVE_TOKEN": "bench-owner-token", "FACELIVE_ACCESS_LOG": "0",
               "FACELIVE_MAX_CLIENT_FPS": "0"}
        dirs = [Path(tempfile.mkdtemp(prefix=f"scale-{n}-")) for n in "ab"]
        with ThreadPoolExecutor(2) as pool:
            servers = list(pool.map(lambda d: start_server(d, args.models_dir, env), dirs))
        a, b = servers
        ports = [int(s.url.rsplit(":", 1)[1]) for s in servers]
        for count in (1, 2):
            proxy = start_nginx(ports[:count], dirs[0] / "tls")
            results[f"fps_{count}_worker{'s' if count > 1 else ''}"] = asyncio.run(
                stream_fps(proxy, frames, args.clients, args.seconds, count))
            proxy.stop()
            proxy = None
        results["commit_to_effect"] = asyncio.run(
            commit_to_effect(a, b, photos, probe, args.changes))
        results["worker_rss_mib"] = [round((rss_kib(s.proc.pid) or 0) / 1024, 1)
                                     for s in servers]
        for server in servers:
            stop_server(server)
        servers = []
        from facelive.recognition.patches import make_patch
        from facelive.vision.image import decode_image

        image = decode_image(photos[0], 40_000_000, 20 * 1024 * 1024)
        box = np.array([70, 70, 180, 180], np.float32)
        marks = np.array([[100, 110], [150, 110], [125, 135], [105, 160], [145, 160]],
                         np.float32)
        patch = make_patch(image, box, marks)
        vector = np.random.default_rng(1).normal(size=128).astype(np.float32)
        results["notice_ms"] = notice_latency(url)
        results["postgres_writes"] = write_rate(url, patch, vector, args.writes)
        results["gallery_sizes"] = gallery_sizes(
            url, patch, [int(s) for s in args.gallery_sizes.split(",") if s])
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            stop_server(server)
        redis.stop()
        postgres.stop()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = {"machine": machine(load=load), **results}
    return report(out, args.json)


if __name__ == "__main__":
    sys.exit(main())
