"""Writing outputs so that an interrupted job never leaves a file that looks finished: every
file is written under a temporary name in the same folder and renamed into place at the end
(a rename within one file system is atomic)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ToolError(ValueError):
    """A batch job cannot run on this input; the message says why in one line."""


@contextmanager
def atomic_output(target: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed to `target`, on any
    error (or Ctrl-C) it is removed. `suffix` (default: target's) matters to writers that pick
    the format from the name (cv2.VideoWriter, np.savez)."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    tmp = parent / f".{target.name}.{secrets.token_hex(4)}.partial{suffix or target.suffix}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # Created here ("x": never someone else's file) with the umask's usual permissions,
        # which mkstemp's 0600 would not give the finished file.
        tmp.open("x").close()
    except OSError as exc:
        raise ToolError(f"{target}: cannot write here: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
