"""Live server benchmark: frames per second and round-trip latency for 1, 4 and 8 clients.

    python bench/live.py [--json] [--clients 1,4,8] [--seconds 15] [--models-dir D] [--data DIR]

A real `facelive serve` subprocess on loopback (HTTPS, WebSocket), with the clip's speaker
enrolled from 10 of its frames (so that there is a name to hold); simulated clients send
640x480 JPEGs with one face (the talking-head clip, letterboxed), each waiting for the reply
before sending its next frame, as the page does. Round trip: from sending a frame to receiving
its `faces` reply. Label changes: per stream, how often the steady face's shown name changes
(its track's name, issue 11), per minute of streaming; target <= 1. Needs
FACELIVE_TEST_DATA (../shared/data) and fetched models.

Targets (2-core CPU): one client >= 15 fps with p95 <= 120 ms; 8 clients together >= 1.3x the
one-client rate. Issue 17 (the stream economy, on a quiet machine): one client >= 30 fps with
p95 <= 50 ms; 8 clients >= 1.5x one. `embedded_share`: faces embedded in their frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import socketio

from benchutil import machine, start_server, stop_server

REPO = Path(__file__).resolve().parents[1]
CLIP = "WDA_AlexandriaOcasioCortez_000.mp4"
WARM_UP_S = 3.0
TARGET_FPS_1, TARGET_P95_MS_1, TARGET_SCALING_8 = 15.0, 120.0, 1.3
TARGET_LABEL_CHANGES_PER_MIN = 1.0
TARGET_FPS_17, TARGET_P95_MS_17, TARGET_SCALING_17 = 30.0, 50.0, 1.5
SPEAKER = "Alexandria Ocasio-Cortez"


def frames_640x480(data: Path, count: int = 200, quality: int = 80) -> list[bytes]:
    """The clip's frames scaled to 480x480 and centred on a grey 640x480 canvas, as JPEG."""
    capture = cv2.VideoCapture(str(data / "video" / CLIP))
    out = []
    try:
        while len(out) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            frame = np.full((480, 640, 3), 110, np.uint8)
            frame[:, 80:560] = cv2.resize(bgr, (480, 480), interpolation=cv2.INTER_AREA)
            out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
                       .tobytes())
    finally:
        capture.release()
    if not out:
        raise SystemExit(f"bench: cannot read {data / 'video' / CLIP}")
    return out


class Client:
    """One simulated page: a frame out, its reply back, the next frame out."""

    def __init__(self, url: str, frames: list[bytes], offset: int) -> None:
        self.url = url
        self.frames = frames
        self.offset = offset
        self.sio = socketio.AsyncClient(ssl_verify=False, reconnection=False)
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sio.on("faces", self.replies.put_nowait)
        self.sio.on("error", lambda error: self.replies.put_nowait({"error": error}))
        self.seq = 0

    async def run(self, until: float, record_from: float) -> list[tuple[float, dict]]:
        """(round trip s, reply) for each frame sent after record_from, until `until`."""
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)
        out = []
        try:
            while time.perf_counter() < until:
                self.seq += 1
                frame = self.frames[(self.offset + self.seq) % len(self.frames)]
                sent = time.perf_counter()
                await self.sio.emit("frame", {"seq": self.seq, "image": frame})
                reply = await asyncio.wait_for(self.replies.get(), 60)
                if "error" in reply:
                    raise SystemExit(f"bench: the server answered an error: {reply['error']}")
                if sent >= record_from:
                    out.append((time.perf_counter() - sent, reply))
        finally:
            await self.sio.disconnect()
        return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def measure(url: str, frames: list[bytes], clients: int, seconds: float) -> dict:
    start = time.perf_counter()
    record_from, until = start + WARM_UP_S, start + WARM_UP_S + seconds
    spread = len(frames) // clients
    runs = await asyncio.gather(*(Client(url, frames, i * spread).run(until, record_from)
                                  for i in range(clients)))
    changes = [label_changes(run) * 60.0 / seconds for run in runs]
    samples = [sample for run in runs for sample in run]
    trips = [trip * 1000 for trip, _ in samples]
    replies = [reply for _, reply in samples]
    return {
        "clients": clients,
        "frames": len(samples),
        "fps": round(len(samples) / seconds, 1),
        "fps_per_client": round(len(samples) / seconds / clients, 1),
        "round_trip_ms_p50": round(percentile(trips, 50), 1),
        "round_trip_ms_p95": round(percentile(trips, 95), 1),
        "server_total_ms_p50": round(statistics.median(r["ms"]["total"] for r in replies), 1),
        "detect_ms_p50": round(statistics.median(r["ms"]["detect"] for r in replies), 1),
        "embed_ms_p50": round(statistics.median(r["ms"]["embed"] for r in replies), 1),
        "mean_batch": round(statistics.fmean(r["batch"] for r in replies), 2),
        "frames_with_a_face": round(sum(bool(r["faces"]) for r in replies) / len(replies), 3),
        "embedded_share": round(
            sum(bool(f.get("embedded", True)) for r in replies for f in r["faces"])
            / max(1, sum(len(r["faces"]) for r in replies)), 3),
        "named_share": round(sum(any(f["name"] == SPEAKER for f in r["faces"])
                                 for r in replies) / len(replies), 3),
        "label_changes_per_min": [round(c, 2) for c in changes],
    }


def label_changes(run: list[tuple[float, dict]]) -> int:
    """How often the main (largest) face's shown name changes over one stream's replies;
    frames without a face do not count either way."""
    shown = [max(r["faces"], key=lambda f: f["box"][2] * f["box"][3])["name"]
             for _, r in run if r["faces"]]
    return sum(a != b for a, b in zip(shown, shown[1:], strict=False))


def enrol_speaker(url: str, token: str, frames: list[bytes]) -> None:
    import requests

    files = [("images", (f"frame{i}.jpg", frames[i], "image/jpeg"))
             for i in range(0, len(frames), max(1, len(frames) // 10))][:10]
    response = requests.post(f"{url}/api/people/{SPEAKER}/examples", files=files, verify=False,
                             headers={"Authorization": f"Bearer {token}"}, timeout=300)
    if response.status_code != 200:
        raise SystemExit(f"bench: enrolling failed: {response.status_code} {response.text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--clients", default="1,4,8", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per count")
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    frames = frames_640x480(Path(args.data))
    with tempfile.TemporaryDirectory(prefix="facelive-bench-") as data_dir:
        # The bench measures what the server can do: a fast machine (a GPU) would otherwise
        # be capped by the per-client frame rate limit, whose replies count as errors here.
        server = start_server(Path(data_dir), args.models_dir,
                              env={"FACELIVE_MAX_CLIENT_FPS": "0"})
        url = server.url
        try:
            import requests
            import urllib3

            urllib3.disable_warnings()
            enrol_speaker(url, server.token, frames)
            health = requests.get(url + "/api/health", verify=False, timeout=30).json()
            load_before = os.getloadavg()[0]
            rows = [asyncio.run(measure(url, frames, n, args.seconds)) for n in counts]
            load_after = os.getloadavg()[0]
        finally:
            stop_server(server)
    by_count = {row["clients"]: row for row in rows}
    results: dict[str, Any] = {
        "machine": machine(),
        "embedder": health["embedder"],
        "frame": "640x480 JPEG (quality 80), one face",
        "seconds_per_count": args.seconds,
        # Other work on the machine skews every figure: compare the load with the core count.
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "results": rows,
    }
    if 1 in by_count:
        one = by_count[1]
        checks = {"one_client_fps>=15": one["fps"] >= TARGET_FPS_1,
                  "one_client_p95<=120ms": one["round_trip_ms_p95"] <= TARGET_P95_MS_1,
                  "label_changes_per_min<=1": all(
                      c <= TARGET_LABEL_CHANGES_PER_MIN
                      for row in rows for c in row["label_changes_per_min"]),
                  "issue17_one_client_fps>=30": one["fps"] >= TARGET_FPS_17,
                  "issue17_one_client_p95<=50ms": one["round_trip_ms_p95"] <= TARGET_P95_MS_17}
        if 8 in by_count:
            scaling = by_count[8]["fps"] / one["fps"]
            results["scaling_8_vs_1"] = round(scaling, 2)
            checks["8_clients>=1.3x"] = scaling >= TARGET_SCALING_8
            checks["issue17_8_clients>=1.5x"] = scaling >= TARGET_SCALING_17
        results["targets_met"] = checks
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for row in rows:
            print(f"{row['clients']} client(s): {row['fps']} fps ({row['fps_per_client']} each), "
                  f"round trip p50 {row['round_trip_ms_p50']} ms p95 "
                  f"{row['round_trip_ms_p95']} ms, mean batch {row['mean_batch']}, label "
                  f"changes/min {row['label_changes_per_min']}")
        for key in ("scaling_8_vs_1", "targets_met"):
            if key in results:
                print(f"{key}: {results[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
