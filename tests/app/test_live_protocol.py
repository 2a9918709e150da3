"""The frame protocol's checks and reply shapes, without a server."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelive.app.protocol import (
    MAX_SEQ,
    FrameError,
    error_reply,
    face_json,
    faces_reply,
    parse_frame,
)

LIMIT_BYTES, LIMIT_PIXELS = 100_000, 640 * 480


def _jpeg(width: int, height: int) -> bytes:
    image = np.full((height, width, 3), 128, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _parse(message: object) -> object:
    return parse_frame(message, 1.5, LIMIT_BYTES, LIMIT_PIXELS)


def test_a_good_frame_is_kept_as_bytes_with_its_arrival_time() -> None:
    data = _jpeg(64, 48)
    frame = _parse({"seq": 7, "image": bytearray(data)})
    assert (frame.seq, frame.data, frame.received) == (7, data, 1.5)
    assert isinstance(frame.data, bytes)


@pytest.mark.parametrize(
    ("message", "seq", "expected"),
    [
        ([1, 2], None, "must be an object"),
        ({"image": b"x"}, None, "seq must be an integer"),
        ({"seq": 1.0, "image": b"x"}, None, "seq must be an integer"),
        ({"seq": False, "image": b"x"}, None, "seq must be an integer"),
        ({"seq": MAX_SEQ + 1, "image": b"x"}, MAX_SEQ + 1, "seq must be in"),
        ({"seq": 3, "image": None}, 3, "got missing"),
        ({"seq": 3, "image": [255, 216]}, 3, "got list"),
        ({"seq": 3, "image": b""}, 3, "empty"),
        ({"seq": 3, "image": b"\xff\xd8" + b"\0" * LIMIT_BYTES}, 3, "too large"),
        ({"seq": 3, "image": b"%PDF-1.4 not an image"}, 3, "not a supported image"),
        ({"seq": 3, "image": b"\xff\xd8\xff"}, 3, "broken JPEG"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(message: object, seq: int | None,
                                              expected: str) -> None:
    with pytest.raises(FrameError, match=expected) as caught:
        _parse(message)
    assert caught.value.seq == seq


def test_a_frame_with_too_many_pixels_is_refused_before_decoding() -> None:
    # 2000x2000 pixels in a small file: the header alone gives it away.
    with pytest.raises(FrameError, match="2000x2000 pixels"):
        _parse({"seq": 0, "image": _jpeg(2000, 2000)})


def test_face_json_turns_corners_into_x_y_w_h() -> None:
    landmarks = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], np.float32)
    face = face_json(np.array([10.04, 20.0, 50.0, 80.06]), np.float32(0.99991), landmarks)
    assert face == {
        "box": [10.0, 20.0, 40.0, 60.1],
        "score": 0.9999,
        "landmarks": [[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]],
        "name": "unknown",
        "distance": None,
        "confidence": None,
    }
    named = face_json([0, 0, 1, 1], 0.5, landmarks, "Ada", 0.31234, 0.87654)
    assert (named["name"], named["distance"], named["confidence"]) == ("Ada", 0.3123, 0.8765)


def test_records_keep_corners_and_the_json_gets_x_y_w_h() -> None:
    """Inside Python a face's box is corners; only its JSON (and message) is [x, y, w, h]."""
    from facelive.recognition.results import Picked, RecognizedFace, corners_of
    from facelive.recognition.tracks import Observation, Tracker

    corners = corners_of(np.array([10.04, 20.0, 50.0, 80.06], np.float32))
    landmarks = ((10.0, 20.0), (30.0, 20.0), (20.0, 30.0), (12.0, 40.0), (28.0, 40.0))
    face = RecognizedFace(corners, landmarks, 0.99991, "unknown", None, 0.0)
    assert face.box == pytest.approx((10.04, 20.0, 50.0, 80.06))
    assert face.to_dict()["box"] == [10.0, 20.0, 40.0, 60.1]
    (shown,) = Tracker().update(0, [Observation(face.box, "unknown")])
    assert shown.box == pytest.approx(face.box)  # the tracker's box is corners too
    picked = Picked(0, 2, (100.0, 50.0, 180.0, 150.0))
    assert picked.message == "2 faces found; took the largest, at x 100, y 50 (80x100 px)"


def test_replies_have_every_timing_field() -> None:
    reply = faces_reply(4, [], {"detect": 12.345, "total": 20}, batch=2)
    assert reply == {"seq": 4, "batch": 2, "faces": [], "ms": {
        "decode": 0.0, "detect": 12.3, "embed": 0.0, "knn": 0.0, "total": 20.0}}
    assert error_reply("nope", 4) == {"seq": 4, "message": "nope"}
