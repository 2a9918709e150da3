"""Uploaded image files: the limits, and reading them out of a multipart request.

Over a limit is 413 and nothing changes: the request is refused before anything is enrolled.
The body's size is checked against the Content-Length before it is read, the file count and
each file's size as the form is parsed (files over 500 KB are spooled to disk by Werkzeug, so
a big upload never sits in memory whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Request

from facelive.app.people import Refusal, Upload
from facelive.settings import Settings

# Room for the multipart framing and a small form field (a name) around the files.
FORM_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """max_files per request; max_file_bytes per file; max_request_bytes for a whole body."""

    max_files: int
    max_file_bytes: int
    max_request_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        files = settings.max_upload_files
        total = settings.max_upload_bytes
        per_file = settings.max_image_bytes
        return cls(files, per_file, min(total, files * per_file + FORM_OVERHEAD_BYTES))

    def describe(self) -> dict[str, Any]:
        return {"max_files": self.max_files, "max_file_bytes": self.max_file_bytes,
                "max_request_bytes": self.max_request_bytes}


def read_files(request: Request, field: str, limits: UploadLimits, max_files: int) -> list[Upload]:
    """The files of multipart field `field`, at most `max_files` (<= limits.max_files).
    Refusal 400 when there are none, 413 when over a limit."""
    # Checked against the Content-Length before the body is read (Flask raises 413).
    request.max_content_length = min(
        limits.max_request_bytes, max_files * limits.max_file_bytes + FORM_OVERHEAD_BYTES
    )
    request.max_form_parts = max_files + 16  # a flood of tiny parts is refused while parsing
    files = [f for f in request.files.getlist(field) if f.filename or f.content_length]
    if not files:
        raise Refusal(400, f"no file: send the image{'s' if max_files > 1 else ''} as "
                           f"multipart/form-data field {field!r}")
    if len(files) > max_files:
        raise Refusal(413, f"too many files ({len(files)}): at most {max_files} per request")
    uploads = []
    for number, storage in enumerate(files, 1):
        data = storage.read(limits.max_file_bytes + 1)
        name = storage.filename or f"file {number}"
        if len(data) > limits.max_file_bytes:
            raise Refusal(413, f"{name}: file too large (limit {limits.max_file_bytes} bytes)")
        uploads.append(Upload(name, data))
    return uploads
