"""Writing a file so that no reader, crash or Ctrl+C ever sees it half-written: the bytes go to
a temporary file beside the target, which is renamed over it when complete (a rename within one
file system is atomic). The one place FaceLive does this; imports nothing of FaceLive."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE = 0o600  # the mode of secrets (token, TLS key): the owner's only, from the start


@contextmanager
def atomic_path(
    target: str | Path,
    *,
    suffix: str | None = None,
    mode: int | None = None,
    sync: bool = False,
    cannot_create: Callable[[str], Exception] | None = None,
) -> Iterator[Path]:
    """Yield a new, empty temporary path beside `target` (`.NAME.RANDOM.partSUFFIX`); when the
    block succeeds it is renamed to `target`, on any error (or Ctrl+C) it is removed.

    suffix: the temporary name's ending (default: target's), for writers that pick the format
    from the name (cv2.VideoWriter, np.savez). mode: the file's permissions (e.g. 0o600 for
    secrets: never wider for an instant); default the umask's usual ones. sync: fsync before
    the rename, so the new content survives a power cut. cannot_create: makes the exception to
    raise, from a one-line message, when the temporary file cannot be created (default: the
    OSError itself)."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    ending = target.suffix if suffix is None else suffix
    tmp = parent / f".{target.name}.{secrets.token_hex(4)}.part{ending}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never someone else's file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        os.close(fd)
    except OSError as exc:
        if cannot_create is None:
            raise
        raise cannot_create(f"{target}: cannot write here: {exc.strerror or exc}") from None
    try:
        yield tmp
        if sync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(
    target: str | Path,
    data: bytes | str,
    *,
    mode: int | None = None,
    sync: bool = False,
    cannot_create: Callable[[str], Exception] | None = None,
) -> None:
    """Write `data` (str as UTF-8) to `target` whole or not at all; see atomic_path."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(target, mode=mode, sync=sync, cannot_create=cannot_create) as tmp:
        tmp.write_bytes(raw)
