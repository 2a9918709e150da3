"""HTTP downloads for the model store, with the standard library only.

A body is streamed into a temporary file beside its destination (`.NAME.*.part`), never past a
byte cap, hashed on the way, and renamed into place only once its sha256 matches: a failed,
corrupt or interrupted download is deleted and never looks complete.

Google Drive answers a large file with an HTML "can't scan for viruses" page instead of the
file; `download_to_temp` recognises the two known variants and submits the confirmation:
  1. older: a `download_warning*` cookie and/or a link carrying `confirm=TOKEN`;
  2. current: `<form id="download-form" action="https://drive.usercontent.google.com/download"
     method="get">` whose hidden inputs (id, export, confirm, uuid) are sent back as a GET.
Any other HTML answer where a binary was expected (a quota page, a captive portal) is an
`UnexpectedHtmlError` with a message saying so.

URL rewrites map a URL prefix to another (`{"https://drive.google.com": "http://127.0.0.1:8000/
drive"}`): a mirror, or a test server imitating the real hosts. They apply to every request,
redirects included; pages are interpreted against the original ("logical") URL, so a relative
link on a rewritten page still resolves to the right place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from typing import BinaryIO

from facelive.errors import FaceLiveError

# progress(bytes so far, total bytes when the server declared it)
Progress = Callable[[int, int | None], None]
UrlRewrites = Mapping[str, str]

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 60.0
# Cap for a download whose size the manifest does not give (e.g. an archive).
DEFAULT_MAX_BYTES = 1 << 30
# An HTML page is read into memory to look for Drive's confirmation; real ones are ~10 KB.
HTML_PAGE_CAP = 2 << 20
# Drive needs one confirmation; more than this means it is looping, not converging.
MAX_CONFIRM_HOPS = 3
# A temp file not written to for this long belongs to a fetch that died.
STALE_TEMP_SECONDS = 15 * 60
USER_AGENT = "facelive-models-fetch/1 (python-urllib)"
DRIVE_HOSTS = frozenset({"drive.google.com", "drive.usercontent.google.com"})
MANUAL_HINT = (
    "download it by hand and point FACELIVE_MODELS_SOURCE at the folder holding it, "
    "then run `facelive models fetch` again"
)


class DownloadError(FaceLiveError, RuntimeError):
    """A download did not yield the expected file; the message says why, for a user."""

    kind = "unavailable"


class UnexpectedHtmlError(DownloadError):
    """An HTML page arrived where a binary file was expected."""


class TooLargeError(DownloadError):
    """The server sent (or announced) more bytes than the file may have."""


class IncompleteDownloadError(DownloadError):
    """The connection ended before the announced length arrived."""


class DigestMismatchError(DownloadError):
    """The bytes arrived but are not the file the manifest describes."""


class ArchiveError(DownloadError):
    """A downloaded archive is unreadable, lacks the wanted member, or the member is too big."""


# ---------------------------------------------------------------------------- URL rewriting


def _prefix_matches(url: str, prefix: str) -> bool:
    """`prefix` matches at a URL boundary, so "https://drive.google.com" does not match
    "https://drive.google.com.example"."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    return not rest or prefix.endswith("/") or rest[0] in "/?#"


def _swap_prefix(url: str, pairs: list[tuple[str, str]]) -> str:
    # Longest prefix first, so a more specific mapping wins.
    for old, new in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
        if _prefix_matches(url, old):
            return new + url[len(old) :]
    return url


def rewrite_url(url: str, rewrites: UrlRewrites | None) -> str:
    """The URL actually requested for the logical `url`."""
    return _swap_prefix(url, list((rewrites or {}).items()))


def unrewrite_url(url: str, rewrites: UrlRewrites | None) -> str:
    """The logical URL behind a requested one (inverse of `rewrite_url`)."""
    return _swap_prefix(url, [(new, old) for old, new in (rewrites or {}).items()])


class _RewritingRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects resolved against the logical URL, then rewritten like any request."""

    def __init__(self, rewrites: dict[str, str]) -> None:
        self._rewrites = rewrites

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        location = headers.get("location") or headers.get("uri")
        if location:
            logical = urllib.parse.urljoin(unrewrite_url(req.full_url, self._rewrites), location)
            newurl = rewrite_url(logical, self._rewrites)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpClient:
    """One download session: a cookie jar (Drive's older confirmation relies on a cookie), the
    URL rewrites, and the socket timeout (seconds, per connect or read, not for the whole
    transfer)."""

    def __init__(
        self, rewrites: UrlRewrites | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.rewrites = dict(rewrites or {})
        self.timeout = timeout
        self.cookies = CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _RewritingRedirects(self.rewrites)
        )

    def open(self, url: str) -> http.client.HTTPResponse:
        """GET the logical `url`; DownloadError for HTTP errors and unreachable hosts."""
        actual = rewrite_url(url, self.rewrites)
        if urllib.parse.urlsplit(actual).scheme not in ("http", "https"):
            raise DownloadError(f"refusing to download {actual!r}: not an http(s) URL")
        request = urllib.request.Request(actual, headers={"User-Agent": USER_AGENT})
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise DownloadError(f"{url}: cannot connect ({exc.reason})") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc

    def logical_url(self, response: http.client.HTTPResponse) -> str:
        """The logical URL a response came from (after redirects)."""
        return unrewrite_url(response.geturl(), self.rewrites)


def _read(response: http.client.HTTPResponse, n: int, url: str) -> bytes:
    """One read, with socket and protocol failures turned into DownloadError."""
    try:
        return response.read(n)
    except TimeoutError as exc:
        raise DownloadError(f"{url}: timed out while downloading") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise IncompleteDownloadError(f"{url}: connection failed mid-download ({exc})") from exc


def _declared_length(headers: Message) -> int | None:
    raw = headers.get("Content-Length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------- HTML pages


def _looks_like_html(headers: Message, head: bytes) -> bool:
    """HTML by its Content-Type or by its first bytes (no model file starts like that)."""
    if "html" in (headers.get_content_type() or ""):
        return True
    start = head[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


@dataclass
class _Form:
    attrs: dict[str, str]
    inputs: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects what a Drive confirmation page may carry: forms with their named inputs,
    link targets, and the title (for error messages)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.links: list[str] = []
        self.title = ""
        self._in_form: _Form | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = _Form(values)
            self.forms.append(self._in_form)
        elif tag == "input" and self._in_form is not None and values.get("name"):
            self._in_form.inputs[values["name"]] = values.get("value", "")
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _parse_page(page: bytes) -> tuple[_PageParser, str]:
    text = page.decode("utf-8", errors="replace")
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    return parser, text


def _is_drive(url: str) -> bool:
    return (urllib.parse.urlsplit(url).hostname or "") in DRIVE_HOSTS


def _with_query(url: str, **params: str) -> str:
    """`url` with the given query parameters set (replacing any of the same name)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in params]
    query += list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _warning_cookie_token(headers: Message) -> str | None:
    """The token of Drive's older `download_warning*` cookie, read from Set-Cookie directly
    (the jar sends the cookie back, but its policy may not show it to us)."""
    for header in headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        if name.strip().startswith("download_warning"):
            return rest.split(";", 1)[0].strip() or None
    return None


def drive_confirmation_url(page: bytes, page_url: str, headers: Message) -> str | None:
    """Where to go to get past Drive's "can't scan for viruses" page, or None when `page` is
    not such a page. `page_url` is the logical URL the page came from."""
    parser, text = _parse_page(page)
    candidates: list[str] = []
    # Current variant: the download form, submitted as a GET with its (hidden) inputs.
    for form in parser.forms:
        if form.attrs.get("id") == "download-form" or "confirm" in form.inputs:
            if form.attrs.get("method", "get").lower() != "get":
                continue
            action = urllib.parse.urljoin(page_url, form.attrs.get("action") or page_url)
            candidates.append(_with_query(action, **form.inputs))
    # Older variant: a "download anyway" link carrying confirm=TOKEN ...
    candidates += [
        urllib.parse.urljoin(page_url, href) for href in parser.links if "confirm=" in href
    ]
    # ... or only the cookie, or the token somewhere in the page's script.
    token = _warning_cookie_token(headers)
    if token is None:
        found = re.search(r"confirm=([0-9A-Za-z_-]+)", text)
        token = found.group(1) if found else None
    if token is not None:
        candidates.append(_with_query(page_url, confirm=token))
    # Never let a page send us off Drive.
    return next((url for url in candidates if _is_drive(url)), None)


def _html_error(url: str, page: bytes) -> UnexpectedHtmlError:
    parser, text = _parse_page(page)
    title = " ".join(parser.title.split()) or "untitled"
    lowered = text.lower()
    if "quota" in lowered or "too many users" in lowered:
        why = "Google Drive's download quota for this file is exceeded; try again in a day, or "
    else:
        why = "the host may be blocking automated downloads or be behind a login; "
    return UnexpectedHtmlError(
        f"{url} answered with an HTML page ({title!r}) instead of the file: {why}{MANUAL_HINT}"
    )


# ---------------------------------------------------------------------------- streaming


@dataclass(frozen=True)
class Downloaded:
    """A body saved to a temporary file; whoever gets one deletes or renames it."""

    path: Path
    size: int
    sha256: str


def temp_prefix(dest: Path) -> str:
    """Temp files for `dest` are `.{name}.*.part` beside it: hidden, and never its name."""
    return f".{dest.name}."


def _new_temp(dest: Path) -> tuple[BinaryIO, Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=temp_prefix(dest), suffix=".part")
    return os.fdopen(fd, "wb"), Path(name)


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
    declared = _declared_length(response.headers)
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
        block = _read(response, min(CHUNK, max_bytes + 1 - done), url)
    # http.client does not complain when a Content-Length body is cut short; we must.
    if declared is not None and done != declared:
        raise IncompleteDownloadError(
            f"{url}: connection closed after {done} of {declared} bytes; try again"
        )
    return done, digest.hexdigest()


def download_to_temp(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    client: HttpClient | None = None,
    progress: Progress | None = None,
) -> Downloaded:
    """GET `url` (getting past Drive's confirmation page) into a new temp file beside `dest`.

    Refuses an announced length over `max_bytes` before reading and stops reading one byte
    past it. UnexpectedHtmlError when an HTML page arrives instead of a file.
    """
    client = client or HttpClient()
    current = url
    for _hop in range(MAX_CONFIRM_HOPS + 1):
        with client.open(current) as response:
            declared = _declared_length(response.headers)
            if declared is not None and declared > max_bytes:
                raise TooLargeError(
                    f"{url}: the server announces {declared} bytes, more than the {max_bytes} "
                    "allowed; not downloading"
                )
            first = _read(response, min(CHUNK, max_bytes + 1), url)
            if _looks_like_html(response.headers, first):
                page = first + _read(response, max(HTML_PAGE_CAP - len(first), 0), url)
                logical = client.logical_url(response)
                following = (
                    drive_confirmation_url(page, logical, response.headers)
                    if _is_drive(logical)
                    else None
                )
                if following is None:
                    raise _html_error(url, page)
                current = following
                continue
            out, path = _new_temp(dest)
            try:
                with out:
                    size, digest = _stream_body(
                        response, first, out, url=url, max_bytes=max_bytes, progress=progress
                    )
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return Downloaded(path, size, digest)
    raise UnexpectedHtmlError(
        f"{url}: Google Drive kept answering with a confirmation page after "
        f"{MAX_CONFIRM_HOPS} confirmations; {MANUAL_HINT}"
    )


def _verify(got: Downloaded, sha256: str, size: int | None, what: str) -> None:
    if size is not None and got.size != size:
        raise DigestMismatchError(f"{what}: got {got.size} bytes, expected {size}; not installed")
    if got.sha256 != sha256:
        raise DigestMismatchError(
            f"{what}: sha256 {got.sha256} does not match the expected {sha256}; not installed"
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
) -> Path:
    """Download `url` to `dest`, verified: sha256 (and size) are checked before the atomic
    rename, and on any failure nothing is left at `dest` or beside it. The cap is `size` when
    known, else `max_bytes`."""
    cap = size if size is not None else max_bytes
    got = download_to_temp(url, dest, max_bytes=cap, client=client, progress=progress)
    try:
        _verify(got, sha256, size, url)
        os.replace(got.path, dest)
    finally:
        got.path.unlink(missing_ok=True)
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
            out, path = _new_temp(dest)
            try:
                with out, zf.open(info) as source:
                    got_size, digest = _copy_capped(source, out, cap, what)
                _verify(Downloaded(path, got_size, digest), sha256, size, what)
                os.replace(path, dest)
            finally:
                path.unlink(missing_ok=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"{archive.name} is not a readable zip archive ({exc})") from exc
    return dest


def _copy_capped(source: BinaryIO, out: BinaryIO, cap: int, what: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    done = 0
    while block := source.read(min(CHUNK, cap + 1 - done)):
        done += len(block)
        if done > cap:
            raise TooLargeError(f"{what} decompresses to more than {cap} bytes; stopped")
        digest.update(block)
        out.write(block)
    return done, digest.hexdigest()


def download_archive_member(
    url: str,
    dest: Path,
    *,
    member: str,
    sha256: str,
    size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    client: HttpClient | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download the zip at `url` (capped at `max_bytes`), extract and verify `member` into
    `dest`, and delete the archive whatever happens."""
    got = download_to_temp(url, dest, max_bytes=max_bytes, client=client, progress=progress)
    try:
        return extract_member(got.path, member, dest, sha256=sha256, size=size)
    finally:
        got.path.unlink(missing_ok=True)
