"""The tools' progress bar: rich's (a pinned runtime dependency) on stderr when it is a terminal;
elsewhere (a log, CI, a pipe) no bar, only one final line, so logs stay readable."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """`with Progress(total, label) as bar: ... bar.advance()`; counts items, not bytes."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar: RichProgress | None = None
        if self._tty:
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TimeRemainingColumn(),
                console=Console(file=self.stream), transient=False,
            )
            self._task = self._bar.add_task(label, total=self.total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            elapsed = time.monotonic() - self.started
            self.stream.write(f"{self.label}: {self.done}/{self.total} in {elapsed:.1f}s\n")
