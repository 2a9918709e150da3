"""Turn untrusted bytes into an RGB image, or a clear error, without unbounded memory.

The pixel count is read from the file header and checked before anything is decoded, so a
small file that claims 20000x20000 pixels (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

# OpenCV's own guard is 2^30 pixels; ours (below) is tighter, this is a second line of defence.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 27))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facelive.errors import FaceLiveError

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class ImageError(FaceLiveError, ValueError):
    """The input is not an image we can use; the message says why in one line."""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def image_size_from_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the first bytes of an encoded image.

    Raises ImageError for formats we do not accept or headers we cannot read.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("broken PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:2] == b"\xff\xd8":
        size = _jpeg_size(data)
        if size is None:
            raise ImageError("truncated or broken JPEG (no frame header)")
        return "jpeg", size[0], size[1]
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return "bmp", abs(width), abs(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", *_webp_size(data)
    raise ImageError("not a supported image (JPEG, PNG, BMP or WebP expected)")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageError("broken WebP header")


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """Encoded bytes -> RGB uint8 array (H, W, 3). Raises ImageError with a one-line reason."""
    if not data:
        raise ImageError("empty file")
    if len(data) > max_bytes:
        raise ImageError(f"file too large ({len(data)} bytes, limit {max_bytes})")
    fmt, width, height = image_size_from_header(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"{fmt} header gives an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"image too large ({width}x{height} pixels, limit {max_pixels} pixels)"
        )
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise ImageError(f"cannot decode this {fmt} file (truncated or corrupt)")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """A file -> RGB uint8 array (H, W, 3). Raises ImageError (also for unreadable files)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"file too large ({size} bytes, limit {max_bytes})")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    return decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
