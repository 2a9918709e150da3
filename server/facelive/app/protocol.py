"""The live frame protocol, as plain functions: check an incoming `frame` message, and shape the
`faces` and `error` replies.

    client -> server  frame  {seq: int, image: bytes (JPEG)}
    server -> client  faces  {seq, batch, faces: [face...], ms: {decode, detect, embed, knn,
                              total}}
    server -> client  error  {seq: int | None, message: str, code?: str, retry_ms?: int}

An error with code "rate_limited" is not a failure: the frame came faster than the client's
frame rate limit (`max_client_fps` in `hello`) and was not looked at; the client waits
`retry_ms` and sends its next frame.

A face is {box: [x, y, w, h], score, landmarks: [[x, y] x 5], name, distance, confidence,
track}, in pixels of the frame as sent. `track` is the same while the face stays in view of this
connection, and `name` is the track's, decided over its frames (recognition/tracks.py);
distance and confidence are this frame's. `total` runs from the frame's arrival to its reply, so it
includes the wait for the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from facelive import wire
from facelive.errors import FaceLiveError
from facelive.vision.image import ImageError, image_size_from_header

# JavaScript numbers are exact up to 2^53; a larger seq could not round-trip through the page.
MAX_SEQ = 2**53 - 1


class FrameError(FaceLiveError, ValueError):
    """A `frame` message that cannot be used; the message is shown to the client as is."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq

    def reply(self) -> dict[str, Any]:
        """The `error` event that answers the frame."""
        return error_reply(str(self), self.seq)


class RateLimited(FrameError):
    """A frame over the client's frame rate: answered (the page waits for the reply to its
    seq before it sends again) but not looked at."""

    kind = "rate_limited"

    CODE = "rate_limited"

    def __init__(self, fps: float, retry_ms: int, seq: int | None = None) -> None:
        super().__init__(
            f"too many frames: at most {fps:g} per second; send the next one in {retry_ms} ms",
            seq,
        )
        self.retry_ms = retry_ms

    def reply(self) -> dict[str, Any]:
        return error_reply(str(self), self.seq, code=self.CODE, retry_ms=self.retry_ms)


def frame_seq(message: Any) -> int | None:
    """The seq of a `frame` message when it has a usable one, else None; for answering a
    message before (or without) checking the rest of it."""
    seq = message.get("seq") if isinstance(message, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ:
        return seq
    return None


@dataclass(frozen=True)
class Frame:
    """A checked frame: seq, the encoded bytes (decoded later, on the worker thread), and when
    it arrived (time.perf_counter seconds)."""

    seq: int
    data: bytes
    received: float


def parse_frame(
    message: Any, received: float, max_bytes: int, max_pixels: int
) -> Frame:
    """Check a `frame` message without decoding the image: only its header is read, so a
    malformed or oversized frame costs microseconds. Raises FrameError saying what is wrong."""
    if not isinstance(message, dict):
        raise FrameError(
            f"frame must be an object {{seq, image}}, got {type(message).__name__}"
        )
    seq = message.get("seq")
    # bool is an int subclass; `true` as a sequence number is a client bug, not seq 1.
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise FrameError("frame.seq must be an integer")
    if not 0 <= seq <= MAX_SEQ:
        raise FrameError(f"frame.seq must be in 0..{MAX_SEQ}", seq)
    image = message.get("image")
    if not isinstance(image, (bytes, bytearray, memoryview)):
        kind = "missing" if image is None else type(image).__name__
        raise FrameError(f"frame.image must be binary JPEG data, got {kind}", seq)
    data = bytes(image)
    if not data:
        raise FrameError("frame.image is empty", seq)
    if len(data) > max_bytes:
        raise FrameError(f"frame.image too large ({len(data)} bytes, limit {max_bytes})", seq)
    try:
        fmt, width, height = image_size_from_header(data)
    except ImageError as exc:
        raise FrameError(f"frame.image: {exc}", seq) from None
    if width <= 0 or height <= 0:
        raise FrameError(f"frame.image: {fmt} header gives an empty image", seq)
    if width * height > max_pixels:
        raise FrameError(
            f"frame.image too large ({width}x{height} pixels, limit {max_pixels})", seq
        )
    return Frame(seq=seq, data=data, received=received)


def face_json(
    box: Sequence[float],
    score: float,
    landmarks: Sequence[Sequence[float]],
    name: str = "unknown",
    distance: float | None = None,
    confidence: float | None = None,
) -> dict[str, Any]:
    """One face as sent to the page. box: (x1, y1, x2, y2) corners in pixels, sent as
    [x, y, w, h]; landmarks: five (x, y) points (eyes, nose, mouth corners)."""
    return {**wire.face_json(box, score, landmarks), "name": name,
            "distance": wire.rounded(distance), "confidence": wire.rounded(confidence)}


def faces_reply(
    seq: int, faces: list[dict[str, Any]], ms: dict[str, float], batch: int
) -> dict[str, Any]:
    """The `faces` event: `batch` says how many frames (of all clients) shared the work."""
    timings = {key: round(float(ms.get(key, 0.0)), 1)
               for key in ("decode", "detect", "embed", "knn", "total")}
    return {"seq": seq, "batch": batch, "faces": faces, "ms": timings}


def error_reply(
    message: str, seq: int | None = None, code: str | None = None, retry_ms: int | None = None
) -> dict[str, Any]:
    """The `error` event; `code` and `retry_ms` only where a client should act on them."""
    reply: dict[str, Any] = {"seq": seq, "message": message}
    if code is not None:
        reply["code"] = code
    if retry_ms is not None:
        reply["retry_ms"] = retry_ms
    return reply
