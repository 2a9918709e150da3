"""What the benchmarks share: the machine they ran on, a timing helper, and a real
`facelive serve` on loopback (facelive.serve_process)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelive.serve_process import ServeFailed, ServeProcess, start_serve, stop_serve


def machine(**extra: Any) -> dict[str, Any]:
    """CPU model, core count and Python version, plus any `extra` (e.g. library versions)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **extra}


def report(results: dict[str, Any], as_json: bool) -> int:
    """Print a bench's results (indented JSON with --json, else a line a key); exit status 0."""
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


def timings_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> dict[str, float]:
    """Median and 90th percentile of `repeat` timed calls, in ms, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median": round(statistics.median(times), 2),
            "p90": round(times[min(len(times) - 1, int(0.9 * len(times)))], 2)}


Server = ServeProcess


def start_server(data_dir: Path, models_dir: str | None,
                 env: dict[str, str] | None = None) -> Server:
    """`facelive serve` on a free loopback port (facelive.serve_process, the tests' launcher
    too), viewing open: the benches' stream clients connect without a token, as viewers, since
    a token check costs nothing worth measuring. env: extra variables for the server."""
    try:
        return start_serve(data_dir, models_dir, {"FACELIVE_OPEN_VIEWING": "1", **(env or {})})
    except ServeFailed as exc:
        raise SystemExit(f"bench: the server did not start: {exc}") from None


def stop_server(server: Server) -> None:
    stop_serve(server)
