"""HTTP downloads for the model store, with the standard library only.

A body is streamed into a temporary file beside its destination (`.NAME.*.part`, atomic.py),
never past a byte cap, hashed on the way, and renamed into place only once its sha256 matches:
a failed, corrupt or interrupted download is deleted and never looks complete. Google Drive's
confirmation page is got past on the way (drive_pages.py); the session, its cookies and URL
rewrites are http_client.py's.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

from facelive.atomic import atomic_path
from facelive.models.download_errors import (
    ArchiveError,
    DigestMismatchError,
    DownloadError,
    IncompleteDownloadError,
    TooLargeError,
    UnexpectedHtmlError,
)
from facelive.models.drive_pages import (
    HTML_PAGE_CAP,
    MANUAL_HINT,
    drive_confirmation_url,
    html_error,
    is_drive,
    looks_like_html,
)
from facelive.models.http_client import (
    DEFAULT_TIMEOUT,
    HttpClient,
    UrlRewrites,
    declared_length,
    read_some,
    rewrite_url,
    unrewrite_url,
)

__all__ = [
    "CHUNK", "DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "MAX_CONFIRM_HOPS", "ArchiveError",
    "DigestMismatchError", "DownloadError", "HttpClient", "IncompleteDownloadError", "Progress",
    "TooLargeError", "UnexpectedHtmlError", "UrlRewrites", "download_file", "download_into",
    "drive_confirmation_url", "extract_member", "remove_stale_temps", "rewrite_url",
    "temp_prefix", "unrewrite_url",
]

# progress(bytes so far, total bytes when the server declared it)
Progress = Callable[[int, int | None], None]

CHUNK = 1 << 16
# Cap for a download whose size the manifest does not give (e.g. an archive).
DEFAULT_MAX_BYTES = 1 << 30
# Drive needs one confirmation; more than this means it is looping, not converging.
MAX_CONFIRM_HOPS = 3
# A temp file not written to for this long belongs to a fetch that died.
STALE_TEMP_SECONDS = 15 * 60


# ---------------------------------------------------------------------------- streaming


def temp_prefix(dest: Path) -> str:
    """Temp files for `dest` are `.{name}.*.part` beside it (atomic.py's names): hidden, and
    never its name."""
    return f".{dest.name}."


def remove_stale_temps(dest: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temp files of `dest` left by a fetch that died (not written to for a while,
    so a concurrent download's file survives). Returns what was removed."""
    removed = []
    cutoff = time.time() - older_than
    for path in dest.parent.glob(f"{temp_prefix(dest)}*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def _stream_body(
    response: http.client.HTTPResponse,
    first: bytes,
    out: BinaryIO,
    *,
    url: str,
    max_bytes: int,
    progress: Progress | None,
) -> tuple[int, str]:
    """Copy the body (its first block already read) to `out`; (size, sha256 hex)."""
    declared = declared_length(response.headers)
    digest = hashlib.sha256()
    done = 0
    block = first
    while block:
        done += len(block)
        if done > max_bytes:
            raise TooLargeError(f"{url}: more than {max_bytes} bytes arrived; download stopped")
        digest.update(block)
        out.write(block)
        if progress is not None:
            progress(done, declared)
        # Never ask for more than one byte past the cap: a hostile server cannot make us
        # buffer or store beyond it.
        block = read_some(response, min(CHUNK, max_bytes + 1 - done), url)
    # http.client does not complain when a Content-Length body is cut short; we must.
    if declared is not None and done != declared:
        raise IncompleteDownloadError(
            f"{url}: connection closed after {done} of {declared} bytes; try again"
        )
    return done, digest.hexdigest()


def download_into(
    url: str,
    out: BinaryIO,
    *,
    max_bytes: int,
    client: HttpClient | None = None,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """GET `url` (getting past Drive's confirmation page) and write its body to `out`;
    returns (size, sha256 hex).

    Refuses an announced length over `max_bytes` before reading and stops reading one byte
    past it. UnexpectedHtmlError when an HTML page arrives instead of a file.
    """
    client = client or HttpClient()
    current = url
    for _hop in range(MAX_CONFIRM_HOPS + 1):
        with client.open(current) as response:
            declared = declared_length(response.headers)
            if declared is not None and declared > max_bytes:
                raise TooLargeError(
                    f"{url}: the server announces {declared} bytes, more than the {max_bytes} "
                    "allowed; not downloading"
                )
            first = read_some(response, min(CHUNK, max_bytes + 1), url)
            if looks_like_html(response.headers, first):
                page = first + read_some(response, max(HTML_PAGE_CAP - len(first), 0), url)
                logical = client.logical_url(response)
                following = (
                    drive_confirmation_url(page, logical, response.headers)
                    if is_drive(logical)
                    else None
                )
                if following is None:
                    raise html_error(url, page)
                current = following
                continue
            return _stream_body(
                response, first, out, url=url, max_bytes=max_bytes, progress=progress
            )
    raise UnexpectedHtmlError(
        f"{url}: Google Drive kept answering with a confirmation page after "
        f"{MAX_CONFIRM_HOPS} confirmations; {MANUAL_HINT}"
    )


def _verify(got: tuple[int, str], sha256: str, size: int | None, what: str) -> None:
    got_size, got_sha256 = got
    if size is not None and got_size != size:
        raise DigestMismatchError(f"{what}: got {got_size} bytes, expected {size}; not installed")
    if got_sha256 != sha256:
        raise DigestMismatchError(
            f"{what}: sha256 {got_sha256} does not match the expected {sha256}; not installed"
        )


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str,
    size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    client: HttpClient | None = None,
    progress: Progress | None = None,
    member: str | None = None,
) -> Path:
    """Download `url` to `dest`, verified: sha256 (and size) are checked before the atomic
    rename, and on any failure nothing is left at `dest` or beside it. The cap is `size` when
    known, else `max_bytes`.

    member: `url` is a zip (capped at `max_bytes`) and this member of it is the file; the
    archive is deleted whatever happens."""
    if member is not None:
        return _download_member(url, dest, member, sha256=sha256, size=size,
                                max_bytes=max_bytes, client=client, progress=progress)
    cap = size if size is not None else max_bytes
    with atomic_path(dest, suffix="") as tmp:
        with tmp.open("wb") as out:
            got = download_into(url, out, max_bytes=cap, client=client, progress=progress)
        _verify(got, sha256, size, url)
    return dest


# ---------------------------------------------------------------------------- archives


def extract_member(
    archive: Path,
    member: str,
    dest: Path,
    *,
    sha256: str,
    size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Extract the one `member` of the zip `archive` to `dest`, verified like a download.

    Only that member is read, and it is written to `dest`, never to a path taken from the
    archive (no traversal). Its decompressed size is capped at `size` (else `max_bytes`), both
    from its header before reading and by counting while reading, so a zip bomb stops early.
    """
    cap = size if size is not None else max_bytes
    what = f"{member} in {archive.name}"
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                names = ", ".join(zf.namelist()[:5])
                raise ArchiveError(f"{archive.name} has no {member} (it holds: {names})") from None
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{what} is encrypted")
            if info.file_size > cap:
                raise TooLargeError(f"{what} is {info.file_size} bytes, more than {cap}")
            with atomic_path(dest, suffix="") as tmp:
                with tmp.open("wb") as out, zf.open(info) as source:
                    got = _copy_capped(source, out, cap, what)
                _verify(got, sha256, size, what)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"{archive.name} is not a readable zip archive ({exc})") from exc
    return dest


def _copy_capped(source: IO[bytes], out: BinaryIO, cap: int, what: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    done = 0
    while block := source.read(min(CHUNK, cap + 1 - done)):
        done += len(block)
        if done > cap:
            raise TooLargeError(f"{what} decompresses to more than {cap} bytes; stopped")
        digest.update(block)
        out.write(block)
    return done, digest.hexdigest()


def _download_member(
    url: str,
    dest: Path,
    member: str,
    *,
    sha256: str,
    size: int | None,
    max_bytes: int,
    client: HttpClient | None,
    progress: Progress | None,
) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A scratch file, never renamed into place: named like dest's temps, so that a fetch
    # that dies leaves it to remove_stale_temps.
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=temp_prefix(dest), suffix=".part")
    scratch = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            download_into(url, out, max_bytes=max_bytes, client=client, progress=progress)
        return extract_member(scratch, member, dest, sha256=sha256, size=size)
    finally:
        scratch.unlink(missing_ok=True)
