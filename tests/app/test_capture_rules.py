"""The rules by which Capture Examples takes or skips a frame (app/capture.py), on the
detector's reply shapes: pose from the five landmarks, one face, size, time between takes."""

from __future__ import annotations

from typing import Any

import pytest

from facelive.app.capture import (
    HINT_NO_FACE,
    HINT_SAME_POSE,
    HINT_SMALL,
    CaptureSession,
    pose_descriptor,
    pose_distance,
)

# Eyes, nose, mouth corners of a frontal face, in pixels.
FRONTAL = [[100.0, 100.0], [160.0, 100.0], [130.0, 135.0], [108.0, 165.0], [152.0, 165.0]]
TURNED = [[100.0, 100.0], [160.0, 100.0], [145.0, 135.0], [115.0, 165.0], [158.0, 165.0]]


def face(landmarks: list[list[float]], size: float = 120.0, score: float = 0.99) -> dict:
    return {"box": [80.0, 60.0, size, size * 1.2], "score": score, "landmarks": landmarks}


def moved(landmarks: list[list[float]], dx: float, dy: float, scale: float) -> list:
    return [[x * scale + dx, y * scale + dy] for x, y in landmarks]


def test_pose_ignores_where_the_face_is_and_how_big() -> None:
    base = pose_descriptor(FRONTAL)
    assert pose_distance(base, pose_descriptor(moved(FRONTAL, 37, -12, 1.6))) < 1e-9
    # The nose 15 px to the side, with eyes 60 px apart: a quarter of an eye distance.
    assert pose_distance(base, pose_descriptor(TURNED)) == pytest.approx(0.25)


def test_frames_are_taken_only_with_one_clear_face_in_a_new_pose() -> None:
    session = CaptureSession(target=3, min_gap_s=0.2, novelty=0.05)
    offers: list[tuple[list[dict[str, Any]], float, bool, str | None]] = [
        ([], 0.0, False, HINT_NO_FACE),
        ([face(FRONTAL), face(TURNED)], 0.1, False, "2 faces in view"),
        ([face(FRONTAL, size=40)], 0.2, False, HINT_SMALL),
        ([face(FRONTAL, score=0.5)], 0.3, False, HINT_SMALL),
        ([face(FRONTAL)], 0.4, True, None),
        ([face(TURNED)], 0.5, False, None),  # too soon after the last: silently skipped
        ([face(moved(FRONTAL, 5, 5, 1.1))], 0.7, False, HINT_SAME_POSE),  # same pose
        ([face(TURNED)], 0.8, True, None),
        ([face(moved(TURNED, 1, 0, 1.0))], 1.1, False, HINT_SAME_POSE),
    ]
    for faces, now, taken, hint in offers:
        assert session.offer(b"jpeg %f" % now, faces, now) is taken, (faces, now)
        assert (session.hint or "").startswith(hint or ""), (session.hint, hint)
        assert (session.hint is None) == (hint is None)
    assert session.images == [b"jpeg 0.400000", b"jpeg 0.800000"]
    assert session.progress() == {"collected": 2, "target": 3, "done": False,
                                  "hint": HINT_SAME_POSE}
    nodding = [[x, y + (12.0 if i >= 2 else 0.0)] for i, (x, y) in enumerate(FRONTAL)]
    assert session.offer(b"last", [face(nodding)], 1.5) is True
    assert session.done and session.progress()["hint"] is None
    assert session.offer(b"more", [face(moved(TURNED, 0, 30, 1.0))], 9.0) is False
    assert session.collected == 3
