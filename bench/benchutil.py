"""What every benchmark records next to its figures: the machine it ran on."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
