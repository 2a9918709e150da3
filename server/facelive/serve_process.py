"""`facelive serve` as a child process on a free loopback port: started, waited for until its
banner gives the port and the tokens, and stopped. The one launcher of the tests (through
tests/app/live_harness.py) and of the benchmarks (bench/benchutil.py); in the package, not in
tests/ or bench/, so that both import it the same way and neither imports the other.

Standard library only: importing it loads nothing of the server (the child does that).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The start-up banner's URL lines: the owner's, then (viewing closed, the default) the view
# URL under a line naming it.
URL_LINE = re.compile(r"https://127\.0\.0\.1:(\d+)/\?token=(\S+)")
VIEW_LINE = re.compile(r"view-only URL")
OPEN_VIEWING_LINE = "Viewing is open"
# TensorFlow's import and the models' warm-up on a busy 2-core machine.
START_TIMEOUT_S = 240.0
# Settings from the caller's environment that would move the server off loopback, off the
# port it picks, or off its own certificate and tokens.
_DROPPED = ("FACELIVE_TOKEN", "FACELIVE_VIEW_TOKEN", "FACELIVE_HOST", "FACELIVE_PORT",
            "FACELIVE_CERTFILE", "FACELIVE_KEYFILE", "FACELIVE_ALLOWED_ORIGINS")


class ServeFailed(RuntimeError):
    """The server exited, or gave no banner in time; the message ends with its last output."""


@dataclass
class ServeProcess:
    """A running `facelive serve`: url (https://127.0.0.1:PORT), the owner's token, the view
    token ("" when viewing is open), and every line it has printed so far (kept up to date by
    a reader thread)."""

    proc: subprocess.Popen[str]
    url: str
    port: int
    token: str
    view_token: str = ""
    output: list[str] = field(default_factory=list)


def _pump(stream: Iterable[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


def _wait(proc: subprocess.Popen[str], output: list[str], found: Callable[[], object],
          deadline: float, what: str) -> None:
    while not found():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise ServeFailed(f"facelive serve gave no {what}:\n" + "\n".join(output[-30:]))
        time.sleep(0.05)


def start_serve(
    data_dir: Path,
    models_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> ServeProcess:
    """Start `python -m facelive.cli.serve` on 127.0.0.1, port chosen by the server, and wait
    for its banner. models_dir: None for the settings' default. env: extra variables (limits,
    FACELIVE_OPEN_VIEWING...), over the caller's environment less the ones in _DROPPED."""
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    for name in _DROPPED:
        environ.pop(name, None)
    environ.update(env or {})
    command = [sys.executable, "-m", "facelive.cli.serve", "--host", "127.0.0.1", "--port", "0",
               "--data-dir", str(data_dir)]
    if models_dir:
        command += ["--models-dir", str(models_dir)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=environ)
    output: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, output), daemon=True).start()
    deadline = time.monotonic() + timeout_s

    def url_match() -> re.Match[str] | None:
        return next((m for m in map(URL_LINE.search, list(output)) if m), None)

    _wait(proc, output, url_match, deadline, "URL")
    match = url_match()
    assert match is not None
    port, token = int(match.group(1)), match.group(2)

    def viewing_told() -> bool:
        return any(OPEN_VIEWING_LINE in line or VIEW_LINE.search(line) for line in output)

    _wait(proc, output, viewing_told, deadline, "viewing line")
    lines = list(output)
    view_at = next((i for i, line in enumerate(lines) if VIEW_LINE.search(line)), None)
    view_token = ""
    if view_at is not None:
        _wait(proc, output, lambda: len(output) > view_at + 1, deadline, "view URL")
        view = URL_LINE.search(output[view_at + 1])
        if view is None:
            proc.kill()
            proc.wait()
            raise ServeFailed(f"no view URL after {output[view_at]!r}: {output[view_at + 1]!r}")
        view_token = view.group(2)
    return ServeProcess(proc, f"https://127.0.0.1:{port}", port, token, view_token, output)


def stop_serve(server: ServeProcess, timeout_s: float = 30.0) -> None:
    """SIGTERM (the server's clean shutdown), then SIGKILL if it has not gone in timeout_s."""
    server.proc.terminate()
    try:
        server.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
