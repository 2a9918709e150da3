"""The HTTP side of model downloads, with the standard library only: one session (cookies,
timeout) whose requests and redirects go through the URL rewrites.

URL rewrites map a URL prefix to another (`{"https://drive.google.com": "http://127.0.0.1:8000/
drive"}`): a mirror, or a test server imitating the real hosts. They apply to every request,
redirects included; pages are interpreted against the original ("logical") URL, so a relative
link on a rewritten page still resolves to the right place.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from http.cookiejar import CookieJar

from facelive.models.download_errors import DownloadError, IncompleteDownloadError

UrlRewrites = Mapping[str, str]
DEFAULT_TIMEOUT = 60.0
USER_AGENT = "facelive-models-fetch/1 (python-urllib)"


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

    def redirect_request(self, req, fp, code, msg, headers, newurl):
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


def read_some(response: http.client.HTTPResponse, n: int, url: str) -> bytes:
    """One read, with socket and protocol failures turned into DownloadError."""
    try:
        return response.read(n)
    except TimeoutError as exc:
        raise DownloadError(f"{url}: timed out while downloading") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise IncompleteDownloadError(f"{url}: connection failed mid-download ({exc})") from exc


def declared_length(headers: Message) -> int | None:
    raw = headers.get("Content-Length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
