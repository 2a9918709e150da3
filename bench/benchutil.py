"""What every benchmark records next to its figures: the machine it ran on."""

from __future__ import annotations

import os
import platform
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
