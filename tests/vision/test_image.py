"""Untrusted image bytes: decoded when sound, one clear ImageError otherwise, never a bomb."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.vision.image import ImageError, decode_image, image_size_from_header, read_image


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def test_real_lfw_jpeg_decodes_to_rgb(lfw_dir: Path) -> None:
    path = lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    image = read_image(path)
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8
    bgr = cv2.imread(str(path))
    assert np.array_equal(image, bgr[:, :, ::-1])
    assert image_size_from_header(path.read_bytes()) == ("jpeg", 250, 250)


def test_png_round_trip() -> None:
    rgb = np.zeros((7, 9, 3), np.uint8)
    rgb[..., 0] = 200  # red
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    out = decode_image(png.tobytes())
    assert out.shape == (7, 9, 3) and out[0, 0].tolist() == [200, 0, 0]


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    with pytest.raises(ImageError, match="too large.*20000x20000"):
        decode_image(_png_header_only(20000, 20000))


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is a text file, not an image\n", "not a supported image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated or broken JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "broken PNG"),
    ],
)
def test_bad_bytes_give_one_clear_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_truncated_real_jpeg(lfw_dir: Path) -> None:
    data = (lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").read_bytes()
    # Cut before the frame header: nothing to decode. Cut later: OpenCV may still return a
    # partly grey image, which is acceptable (it is an image); it must never raise otherwise.
    with pytest.raises(ImageError):
        decode_image(data[:100])
    try:
        partial = decode_image(data[: len(data) // 2])
        assert partial.shape == (250, 250, 3)
    except ImageError:
        pass


def test_size_and_file_limits(tmp_path: Path) -> None:
    ok, png = cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ImageError, match="too large"):
        decode_image(png.tobytes(), max_pixels=5000)
    with pytest.raises(ImageError, match="too large"):
        decode_image(png.tobytes(), max_bytes=10)
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path)


def test_one_pixel_image_decodes() -> None:
    ok, png = cv2.imencode(".png", np.full((1, 1, 3), 128, np.uint8))
    assert decode_image(png.tobytes()).shape == (1, 1, 3)
