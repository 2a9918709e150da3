"""The face tracker of `facelive video`: box matching, steady names, carried boxes, cuts."""

from __future__ import annotations

import pytest

from facelive.tools.tracking import Observation, Tracker, iou


def obs(x: float, name: str, y: float = 50.0) -> Observation:
    return Observation((x, y, 40.0, 50.0), name, 0.3, 0.8)


def test_iou() -> None:
    import numpy as np

    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert iou(a, a) == 1.0
    assert iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(50 / 150)
    assert iou(a, np.array([20.0, 20.0, 30.0, 30.0])) == 0.0


def test_tracks_follow_boxes_and_names_hold_steady() -> None:
    tracker = Tracker(window=5)
    names = ["Ann", "Ann", "unknown", "Ann", "Bob", "Ann", "Ann"]
    shown = []
    for frame, name in enumerate(names):
        # Ann drifts right 3 px a frame; a stranger stays put far to the left.
        faces = tracker.update(frame, [obs(200 + 3 * frame, name), obs(10, "unknown")])
        assert faces[0].track == 1 and faces[1].track == 2  # same tracks throughout
        shown.append(faces[0].name)
        assert faces[1].name == "unknown"
    assert shown == ["Ann"] * len(names)  # single-frame slips do not show


def test_vote_switches_on_a_majority_and_keeps_the_name_on_a_tie() -> None:
    tracker = Tracker(window=4)
    shown = [tracker.update(f, [obs(100, n)])[0].name
             for f, n in enumerate(["unknown", "Ann", "Ann", "unknown", "Ann"])]
    # 1-0 unknown; 1-1 tie keeps unknown; 2-1 Ann; 2-2 tie keeps Ann; 3-1 Ann.
    assert shown == ["unknown", "unknown", "Ann", "Ann", "Ann"]


def test_carry_moves_boxes_between_detections() -> None:
    tracker = Tracker()
    tracker.update(0, [obs(100, "Ann")])
    tracker.update(2, [obs(110, "Ann")])  # 5 px per frame
    (carried,) = tracker.carry(3)
    assert not carried.detected and carried.box[0] == pytest.approx(112.5)  # smoothed: 2.5 px
    assert tracker.update(4, []) == []
    assert tracker.carry(5) == []  # not found at the last detection: not drawn


def test_reset_and_age_end_tracks() -> None:
    tracker = Tracker(max_age=3)
    tracker.update(0, [obs(100, "Ann")])
    tracker.reset()
    assert tracker.update(1, [obs(100, "unknown")])[0].track == 2  # a new face after a cut
    tracker.update(2, [])
    assert tracker.update(9, [obs(100, "unknown")])[0].track == 3  # too long unseen
