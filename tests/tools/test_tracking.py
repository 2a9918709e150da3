"""The face tracker shared by `facelive video` and the live server: box and look matching,
names decided per track with hysteresis, gallery changes, carried boxes, cuts."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.recognition.tracks import Observation, Tracker, iou

ANN, BOB = 1, 2
NAMES = {ANN: "Ann", BOB: "Bob"}


def obs(x: float, who: int | None, y: float = 50.0, look: np.ndarray | None = None,
        sure: bool = False, quality: float = 1.0) -> Observation:
    name = "unknown" if who is None else NAMES[who]
    return Observation((x, y, x + 40.0, y + 50.0), name, 0.3, 0.8, who, look, quality, sure)


def unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float64)
    return v / np.linalg.norm(v)


def test_iou() -> None:
    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert iou(a, a) == 1.0
    assert iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(50 / 150)
    assert iou(a, np.array([20.0, 20.0, 30.0, 30.0])) == 0.0


def test_a_named_track_does_not_flip_on_poor_frames() -> None:
    tracker = Tracker()
    verdicts = [ANN, ANN, None, ANN, BOB, ANN, None, None, ANN, ANN]
    shown = []
    for frame, who in enumerate(verdicts):
        # Ann drifts right 3 px a frame; a stranger stays put far to the left.
        faces = tracker.update(frame, [obs(200 + 3 * frame, who), obs(10, None)], NAMES)
        assert faces[0].track == 1 and faces[1].track == 2
        shown.append(faces[0].name)
        assert faces[1].name == "unknown"
    # Named from the second agreeing frame on; the slips (one Bob, two unknowns) never show.
    assert shown == ["unknown"] + ["Ann"] * (len(verdicts) - 1)
    assert tracker.label_changes == 1


def test_an_unknown_track_is_not_named_on_one_lucky_frame() -> None:
    tracker = Tracker()
    verdicts = [None, None, None, BOB, None, None, BOB, None, None, None]
    shown = [tracker.update(f, [obs(100, who)], NAMES)[0].name for f, who in enumerate(verdicts)]
    assert shown == ["unknown"] * len(verdicts)


def test_a_sure_first_frame_is_named_at_once_and_a_long_change_is_followed() -> None:
    tracker = Tracker()
    assert tracker.update(0, [obs(100, ANN, sure=True)], NAMES)[0].name == "Ann"
    first = tracker.update(1, [obs(100, ANN)], NAMES)[0]
    shown = [tracker.update(f, [obs(100, None)], NAMES)[0].name for f in range(2, 14)]
    assert first.name == "Ann" and shown[:3] == ["Ann"] * 3  # hysteresis...
    assert shown[-1] == "unknown"  # ...but a face that stays unknown becomes unknown


def test_low_quality_frames_count_for_less() -> None:
    tracker = Tracker()
    shown = [tracker.update(f, [obs(100, BOB, quality=0.2)], NAMES)[0].name for f in range(6)]
    assert shown == ["unknown"] * 6  # six blurred "Bob" frames do not add up to a name


def test_a_new_face_in_the_same_place_is_a_new_track() -> None:
    tracker = Tracker()
    ann, bob = unit(1, 0, 0), unit(0, 1, 0)
    for f in range(3):
        assert tracker.update(f, [obs(100, ANN, look=ann)], NAMES)[0].track == 1
    changed = tracker.update(3, [obs(100, BOB, look=bob, sure=True)], NAMES)[0]
    assert changed.track == 2 and changed.name == "Bob"  # Ann's name is not carried onto Bob


def test_faces_are_compared_on_the_first_link_dims_values() -> None:
    """The fused embedder's trackers link on its dlib-resnet half (link_dims): a face whose
    other half is missing (zero: a small face) or different still continues its track, while
    a face that differs in the linked half starts a new one."""
    whole = np.concatenate([unit(1, 0, 0), unit(0, 0, 1)]) / np.sqrt(2)
    half_only = np.concatenate([unit(1, 0, 0), np.zeros(3)])
    tracker = Tracker(link_dims=3)
    assert tracker.update(0, [obs(100, ANN, look=whole)], NAMES)[0].track == 1
    assert tracker.update(1, [obs(100, ANN, look=half_only)], NAMES)[0].track == 1
    other = np.concatenate([unit(0, 1, 0), unit(0, 0, 1)]) / np.sqrt(2)
    assert tracker.update(2, [obs(100, ANN, look=other)], NAMES)[0].track == 2
    # On the whole vectors, the same face without its second half looks like another one.
    plain = Tracker()
    plain.update(0, [obs(100, ANN, look=whole)], NAMES)
    assert plain.update(1, [obs(100, ANN, look=half_only)], NAMES)[0].track == 2


def test_a_gallery_change_is_honoured() -> None:
    tracker = Tracker()
    for f in range(3):
        tracker.update(f, [obs(100, ANN)], NAMES)
    assert tracker.update(3, [obs(100, ANN)], {ANN: "Annie", BOB: "Bob"})[0].name == "Annie"
    # Deleted: her evidence goes at once, even while the (stale) verdict still says her.
    assert tracker.update(4, [obs(100, ANN)], {BOB: "Bob"})[0].name == "unknown"
    tracker.update(5, [obs(100, ANN)], NAMES)
    tracker.forget_names()  # e.g. re-enrolled: the name is decided afresh, as on a first frame
    assert tracker.update(6, [obs(100, BOB)], NAMES)[0].name == "unknown"
    tracker.forget_names()
    assert tracker.update(7, [obs(100, BOB, sure=True)], NAMES)[0].name == "Bob"


def test_carry_moves_boxes_between_detections() -> None:
    tracker = Tracker()
    tracker.update(0, [obs(100, ANN)])
    tracker.update(2, [obs(110, ANN)])  # 5 px per frame
    (carried,) = tracker.carry(3)
    assert not carried.detected and carried.box[0] == pytest.approx(112.5)  # smoothed: 2.5 px
    assert tracker.update(4, []) == []
    assert tracker.carry(5) == []  # not found at the last detection: not drawn


def test_reset_and_age_end_tracks() -> None:
    tracker = Tracker(max_age=3)
    tracker.update(0, [obs(100, ANN)])
    tracker.reset()
    assert tracker.update(1, [obs(100, None)])[0].track == 2  # a new face after a cut
    tracker.update(2, [])
    assert tracker.update(9, [obs(100, None)])[0].track == 3  # too long unseen
