"""What the benchmarks share: the machine they ran on, a timing helper, and a real
`facelive serve` on loopback."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The start-up banner's URL: its port and the access token.
URL_LINE = re.compile(r"https://127\.0\.0\.1:(\d+)/\?token=(\S+)")
START_TIMEOUT_S = 240


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


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    token: str
    lines: list[str] = field(default_factory=list)


def start_server(data_dir: Path, models_dir: str | None,
                 env: dict[str, str] | None = None) -> Server:
    """`facelive serve` on a free loopback port; waits for its URL line (port and token).
    env: extra variables for the server."""
    command = [sys.executable, "-m", "facelive.cli.serve", "--host", "127.0.0.1", "--port",
               "0", "--data-dir", str(data_dir)]
    if models_dir:
        command += ["--models-dir", models_dir]
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    for name in ("FACELIVE_PORT", "FACELIVE_HOST", "FACELIVE_TOKEN"):
        environ.pop(name, None)
    # The benches' stream clients connect without a token, as viewers: viewing is closed by
    # default since issue 16, and a token check costs nothing worth measuring.
    environ["FACELIVE_OPEN_VIEWING"] = "1"
    environ.update(env or {})
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=environ)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        match = next((m for m in map(URL_LINE.search, list(lines)) if m), None)
        if match:
            return Server(proc, f"https://127.0.0.1:{match.group(1)}", match.group(2), lines)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("bench: the server did not start:\n" + "".join(lines[-20:]))
        time.sleep(0.1)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
