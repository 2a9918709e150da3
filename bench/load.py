"""Sustained-load benchmark: N simulated pages stream real video frames to one live server.

    python bench/load.py [--json] [--clients 16] [--minutes 2] [--models-dir D] [--data DIR]

A real `facelive serve` subprocess on 127.0.0.1 (HTTPS, WebSocket, empty gallery). Each client
sends 640x480 JPEGs of the WDA_*.mp4 clips and sends its next frame only when the reply to the
last one arrived, as the page does. Reports served fps, round-trip p50/p95/p99, dropped frames
(no reply within REPLY_TIMEOUT_S), error replies, disconnects, the server's RSS sampled every
RSS_EVERY_S from /proc/PID/status, and the first- vs last-minute p95 (does it degrade?).
Everything is bounded by --minutes: the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import socketio

# bench/live.py already knows how to start the server and wait for its URL line.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import machine, start_server, stop_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPLY_TIMEOUT_S = 15.0  # a reply later than this counts as a dropped frame
RSS_EVERY_S = 2.0
FRAMES_PER_CLIP = 150  # enough variety; more only costs start-up time and memory


def load_frames(data: Path, per_clip: int = FRAMES_PER_CLIP, quality: int = 80) -> list[bytes]:
    """Frames of every WDA_*.mp4 clip, resized to 640x480, as JPEG bytes."""
    clips = sorted((data / "video").glob("WDA_*.mp4"))
    if not clips:
        raise SystemExit(f"load: no WDA_*.mp4 under {data / 'video'}")
    out: list[bytes] = []
    for clip in clips:
        capture = cv2.VideoCapture(str(clip))
        try:
            for _ in range(per_clip):  # bounded: a broken clip cannot loop forever
                ok, bgr = capture.read()
                if not ok:
                    break
                frame = cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)
                ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                if ok:
                    out.append(jpeg.tobytes())
        finally:
            capture.release()
    if not out:
        raise SystemExit("load: could not decode any frame")
    return out


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Tally:
    """What one client saw: (send time since start, round trip ms) per answered frame."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    sent: int = 0
    dropped: int = 0
    errors: int = 0
    disconnects: int = 0
    connect_failures: int = 0


class LoadClient:
    def __init__(self, url: str, frames: list[bytes], offset: int) -> None:
        self.url = url
        self.frames = frames
        self.offset = offset
        self.tally = Tally()
        self.sio = socketio.AsyncClient(ssl_verify=False, reconnection=False)
        self.replies: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.sio.on("faces", lambda payload: self.replies.put_nowait(("faces", payload)))
        self.sio.on("error", lambda payload: self.replies.put_nowait(("error", payload)))
        self.sio.on("disconnect", self._lost)
        self.closing = False  # set before our own goodbye, which is not a lost connection

    def _lost(self, *_: Any) -> None:
        if not self.closing:
            self.tally.disconnects += 1

    async def _reply_to(self, seq: int, deadline: float) -> tuple[str, Any] | None:
        """The reply carrying `seq`; a stale reply (to a frame already counted as dropped) is
        skipped. None when nothing arrives before the deadline."""
        while (left := deadline - time.perf_counter()) > 0:
            try:
                name, payload = await asyncio.wait_for(self.replies.get(), left)
            except TimeoutError:
                return None
            if isinstance(payload, dict) and payload.get("seq") == seq:
                return name, payload
        return None

    async def run(self, start: float, until: float) -> Tally:
        try:
            await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)
        except Exception:  # noqa: BLE001 - a refused connection is a figure, not a crash
            self.tally.connect_failures += 1
            return self.tally
        seq = 0
        try:
            while time.perf_counter() < until and self.sio.connected:
                seq += 1
                frame = self.frames[(self.offset + seq) % len(self.frames)]
                sent = time.perf_counter()
                await self.sio.emit("frame", {"seq": seq, "image": frame})
                self.tally.sent += 1
                reply = await self._reply_to(seq, min(sent + REPLY_TIMEOUT_S, until + 30))
                if reply is None:
                    self.tally.dropped += 1
                elif reply[0] == "error":
                    self.tally.errors += 1
                else:
                    self.tally.samples.append((sent - start, (time.perf_counter() - sent) * 1e3))
        finally:
            self.closing = True
            if self.sio.connected:
                await self.sio.disconnect()
        return self.tally


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 1) if values else None


async def sample_rss(pid: int, until: float, start: float, out: list[tuple[float, int]]) -> None:
    while time.perf_counter() < until:
        kib = rss_kib(pid)
        if kib is None:
            return
        out.append((round(time.perf_counter() - start, 1), kib))
        await asyncio.sleep(RSS_EVERY_S)


async def measure(url: str, pid: int, frames: list[bytes], clients: int,
                  seconds: float) -> dict[str, Any]:
    start = time.perf_counter()
    until = start + seconds
    rss: list[tuple[float, int]] = []
    spread = max(1, len(frames) // clients)
    workers = [LoadClient(url, frames, i * spread) for i in range(clients)]
    sampler = asyncio.create_task(sample_rss(pid, until, start, rss))
    tallies = await asyncio.gather(*(w.run(start, until) for w in workers))
    await sampler
    elapsed = time.perf_counter() - start
    samples = [s for t in tallies for s in t.samples]
    trips = [ms for _, ms in samples]
    first = [ms for at, ms in samples if at < 60]
    last = [ms for at, ms in samples if at >= seconds - 60]
    kib = [k for _, k in rss]
    minutes = int(seconds // 60) or 1
    by_minute = [pct([ms for at, ms in samples if m * 60 <= at < (m + 1) * 60], 95)
                 for m in range(minutes)]
    first_p95, last_p95 = pct(first, 95), pct(last, 95)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "frames_sent": sum(t.sent for t in tallies),
        "frames_answered": len(samples),
        "served_fps": round(len(samples) / elapsed, 2),
        "round_trip_ms": {"p50": pct(trips, 50), "p95": pct(trips, 95), "p99": pct(trips, 99),
                          "max": round(max(trips), 1) if trips else None},
        "first_minute_p95_ms": first_p95,
        "last_minute_p95_ms": last_p95,
        # The hardening issue's criteria: last minute's p95 within 1.5x of the first's...
        "p95_last_over_first": round(last_p95 / first_p95, 3) if first_p95 and last_p95
        else None,
        "p95_by_minute_ms": by_minute,
        "dropped_frames": sum(t.dropped for t in tallies),
        "error_replies": sum(t.errors for t in tallies),
        "disconnects": sum(t.disconnects for t in tallies),
        "connect_failures": sum(t.connect_failures for t in tallies),
        "server_rss_mib": {
            "start": round(kib[0] / 1024, 1) if kib else None,
            "end": round(kib[-1] / 1024, 1) if kib else None,
            "max": round(max(kib) / 1024, 1) if kib else None,
            # ...and growth under 100 MB, from the server ready (warmed up) to the end.
            "growth": round((kib[-1] - kib[0]) / 1024, 1) if kib else None,
            "samples": [[at, round(k / 1024, 1)] for at, k in rss[:: max(1, len(rss) // 30)]],
        },
        "server_alive_after": rss_kib(pid) is not None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    if args.clients < 1 or not 0 < args.minutes <= 60:
        parser.error("--clients >= 1 and 0 < --minutes <= 60")
    frames = load_frames(Path(args.data))
    with tempfile.TemporaryDirectory(prefix="facelive-load-") as data_dir:
        server = start_server(Path(data_dir), args.models_dir)
        try:
            load_before = os.getloadavg()[0]
            result = asyncio.run(measure(server.url, server.proc.pid, frames, args.clients,
                                         args.minutes * 60))
            load_after = os.getloadavg()[0]
            result["server_exit_code_during_run"] = server.proc.poll()
        finally:
            stop_server(server)
    result = {"machine": machine(), "frame": "640x480 JPEG (quality 80), WDA_*.mp4 clips",
              "distinct_frames": len(frames),
              # Other work on the machine skews every figure: compare with the core count.
              "load_average_1min": {"before": round(load_before, 2),
                                    "after": round(load_after, 2)},
              **result}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if result["server_alive_after"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
