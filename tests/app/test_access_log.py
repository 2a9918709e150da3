"""The access log line: method, path, status, time; never the query string (the token)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from facelive.app.access_log import access_log, request_line


def _app(status: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [b"image bytes never logged"]

    return app


def test_one_line_per_request_without_query_or_body(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/people/Zoë/examples".encode()
               .decode("latin-1"), "QUERY_STRING": "token=s3cret-token&add=true",
               "HTTP_AUTHORIZATION": "Bearer s3cret-token"}
    wrapped = access_log(_app("413 Request Entity Too Large"))
    with caplog.at_level(logging.INFO, logger="facelive.access"):
        body = wrapped(environ, lambda *args: None)
        assert list(body) == [b"image bytes never logged"]
        body.close()  # type: ignore[attr-defined]
    [record] = caplog.records
    line = record.getMessage()
    assert line.startswith("POST /api/people/Zo%C3%AB/examples 413 ") and line.endswith(" ms")
    assert "s3cret" not in line and "image" not in line


def test_hostile_urls_are_cut_short() -> None:
    line = request_line({"REQUEST_METHOD": "GET", "PATH_INFO": "/" + "x" * 70_000}, "404 x", 1)
    assert len(line) < 400 and " 404 " in line
