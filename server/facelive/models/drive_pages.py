"""Google Drive's "can't scan for viruses" page, and other HTML where a file was expected.

Drive answers a large file with an HTML page instead of the file; `drive_confirmation_url`
recognises the two known variants and says where the confirmation goes:
  1. older: a `download_warning*` cookie and/or a link carrying `confirm=TOKEN`;
  2. current: `<form id="download-form" action="https://drive.usercontent.google.com/download"
     method="get">` whose hidden inputs (id, export, confirm, uuid) are sent back as a GET.
Any other HTML answer where a binary was expected (a quota page, a captive portal) is an
`UnexpectedHtmlError` with a message saying so (`html_error`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser

from facelive.models.download_errors import UnexpectedHtmlError

# An HTML page is read into memory to look for Drive's confirmation; real ones are ~10 KB.
HTML_PAGE_CAP = 2 << 20
DRIVE_HOSTS = frozenset({"drive.google.com", "drive.usercontent.google.com"})
MANUAL_HINT = (
    "download it by hand and point FACELIVE_MODELS_SOURCE at the folder holding it, "
    "then run `facelive models fetch` again"
)


def looks_like_html(headers: Message, head: bytes) -> bool:
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


def is_drive(url: str) -> bool:
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
    return next((url for url in candidates if is_drive(url)), None)


def html_error(url: str, page: bytes) -> UnexpectedHtmlError:
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
