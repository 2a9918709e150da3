"""The count of one test run's hostile inputs and of the harm they did, shared by the hostile
modules of tests/hardening and checked by test_hostile_total.py, which pytest runs after them
(files run in name order).

A plain module, not a conftest.py: tests do `from conftest import ...`, which a second
conftest.py would shadow. The modules import it by name (pytest puts this folder on sys.path
for the test modules in it), so they all share the one TALLY.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

GALLERY_FILE = "gallery.sqlite3"


@dataclass
class Tally:
    # Hostile inputs sent, by channel: REST requests; Socket.IO messages and connection attempts.
    inputs: dict[str, int] = field(default_factory=lambda: {"REST": 0, "socket": 0})
    # Channels whose module finished and checked its server at the end (alive, answering).
    finished: set[str] = field(default_factory=set)
    crashes: int = 0  # a server found dead or not answering
    http_5xx: int = 0  # REST responses 5xx
    server_errors: int = 0  # socket replies from the catch-all handler ("server error ...")
    gallery_changes: int = 0  # a refused or unauthorised input that changed the gallery

    def sent(self, channel: str, count: int = 1) -> None:
        self.inputs[channel] += count

    @property
    def total(self) -> int:
        return sum(self.inputs.values())

    def line(self) -> str:
        by_channel = ", ".join(f"{name} {count}" for name, count in self.inputs.items())
        return (
            f"hostile inputs: {self.total} ({by_channel}): {self.crashes} crashes, "
            f"{self.http_5xx} 5xx, {self.server_errors} server-error replies, "
            f"{self.gallery_changes} gallery changes"
        )


TALLY = Tally()


def gallery_digest(data_dir: Path) -> str:
    """SHA-256 of the gallery database's content (every table, as SQL), read beside the running
    server: its WAL makes the file's bytes a poor witness, the content is exact."""
    path = data_dir / GALLERY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no gallery database at {path}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump = "\n".join(connection.iterdump())
    finally:
        connection.close()
    return hashlib.sha256(dump.encode()).hexdigest()
