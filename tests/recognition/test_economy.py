"""The stream economy (issue 17): a frame of a stream is searched whole only every few frames
and its faces embedded only when their tracks need it; the decisions between are the
tracks'. The rules on synthetic tracks, then the real detector and embedder on real video
frames: tracked boxes stay on the face, a named person stays named, a cut starts afresh, and
faces entering the picture are boxed within the stated bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelive.recognition.economy import EVERY_FRAME, Economy, EmbedState, embed_reason
from facelive.recognition.entries import Entry, entries, within
from facelive.recognition.tracks import Observation, Tracker, iou
from facelive.tools.video import read_frames

ANN = 1
NAMES = {ANN: "Ann"}
ECONOMY = Economy(full_every=3, embed_every=10, settle=3)


def obs(x: float, who: int | None, side: float = 50.0, yaw: float = 0.0,
        embedded: bool = True, distance: float = 0.3) -> Observation:
    return Observation((x, 50.0, x + side, 50.0 + side), "Ann" if who else "unknown",
                       distance, 0.9, who, None, 1.0, True, None, False, embedded, yaw)


def test_embed_reasons() -> None:
    settled = EmbedState(frame=10, side=100.0, yaw=0.1, agree=3, fresh=False)
    assert embed_reason(None, 11, 100.0, 0.1, ECONOMY) == "new"
    assert embed_reason(settled, 11, 100.0, 0.1, ECONOMY) is None
    assert embed_reason(settled, 20, 100.0, 0.1, ECONOMY) == "watch"
    assert embed_reason(settled, 11, 140.0, 0.1, ECONOMY) == "size"
    assert embed_reason(settled, 11, 70.0, 0.1, ECONOMY) == "size"
    assert embed_reason(settled, 11, 100.0, 0.6, ECONOMY) == "pose"
    unsettled = EmbedState(frame=10, side=100.0, yaw=0.1, agree=2, fresh=False)
    assert embed_reason(unsettled, 11, 100.0, 0.1, ECONOMY) == "unsettled"
    fresh = EmbedState(frame=10, side=100.0, yaw=0.1, agree=5, fresh=True)
    assert embed_reason(fresh, 11, 100.0, 0.1, ECONOMY) == "gallery"
    assert embed_reason(settled, 11, 100.0, 0.1, EVERY_FRAME) == "watch"
    with pytest.raises(ValueError):
        Economy(full_every=0)


def test_tracker_plans_full_passes_and_embeddings() -> None:
    tracker = Tracker()
    assert tracker.full_pass_due(0, ECONOMY)
    plans, shown = [], []
    for frame in range(14):
        full = tracker.full_pass_due(frame, ECONOMY)
        if not full:
            # The tracked pass looks where the face should be: moved on at its speed.
            (expected,) = tracker.expected(frame)
            assert expected[0] == pytest.approx(100 + 2 * frame, abs=2.5)
        tracker.searched(frame, full)
        box = (100 + 2 * frame, 50, 150 + 2 * frame, 100)
        (why,) = tracker.embedding_plan(frame, [box], [0.0], ECONOMY)
        plans.append(why)
        (face,) = tracker.update(frame, [obs(100 + 2 * frame, ANN, embedded=why is not None)],
                                 NAMES)
        shown.append((face.name, face.embedded, full))
    # Embedded until settled (3 agreeing frames), then kept, then looked at again at 10.
    assert plans[:3] == ["new", "unsettled", "unsettled"]
    assert plans[3:12] == [None] * 9 and plans[12] == "watch"
    assert all(name == "Ann" for name, _, _ in shown)
    assert [embedded for _, embedded, _ in shown] == [p is not None for p in plans]
    assert [full for _, _, full in shown] == [f % 3 == 0 for f in range(14)]
    # A marked change of size or pose, or a gallery change, asks for an embedding at once.
    assert tracker.embedding_plan(14, [(128, 50, 208, 130)], [0.0], ECONOMY) == ["size"]
    assert tracker.embedding_plan(14, [(128, 50, 178, 100)], [0.8], ECONOMY) == ["pose"]
    tracker.forget_names()
    assert tracker.embedding_plan(14, [(128, 50, 178, 100)], [0.0], ECONOMY) == ["gallery"]
    # A face elsewhere is new; a cut (reset) makes the next frame a full pass.
    assert tracker.embedding_plan(14, [(400, 300, 450, 350)], [0.0], ECONOMY) == ["new"]
    tracker.reset()
    assert tracker.full_pass_due(14, ECONOMY)


def test_a_face_not_embedded_keeps_its_tracks_decision() -> None:
    tracker = Tracker()
    tracker.update(0, [obs(100, ANN, distance=0.25)], NAMES)
    (face,) = tracker.update(1, [obs(102, None, embedded=False, distance=0.9)], NAMES)
    assert face.name == "Ann" and face.distance == pytest.approx(0.25) and not face.embedded
    assert face.box[0] == pytest.approx(102)


def test_entries_and_their_delays() -> None:
    a, b = (0, 0, 10, 10), (50, 50, 60, 60)
    reference = [[a], [a, b], [a, b], [a, b], [b]]
    found = [[a], [a], [a], [a, b], [b]]
    (entry,) = entries(reference, found)
    assert entry == Entry(frame=1, frames=4, delay=2)
    assert within([entry], 3) == (1, 1) and within([entry], 2) == (0, 1)
    assert within([Entry(1, 1, None)], 3) == (0, 0)  # seen once: not held to the bound


# ------------------------------------------------------------------ real frames
HER, STRANGER = "WDA_AlexandriaOcasioCortez_000.mp4", "WDA_KatieHill_000.mp4"


@pytest.fixture(scope="module")
def recognizer(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from facelive.recognition.recognizer import Recognizer
    from facelive.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("economy"), models_dir=models_dir,
                        embedder="dlib-resnet")
    rec = Recognizer.from_settings(settings)
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def clips(test_data: Path) -> dict[str, list[np.ndarray]]:
    paths = {name: test_data / "video" / name for name in (HER, STRANGER)}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip(f"test videos not found: {list(paths.values())}")
    return {name: read_frames(path, 90, longest=640) for name, path in paths.items()}


def test_hinted_detection_finds_the_face_where_the_track_expects_it(
    recognizer, clips: dict[str, list[np.ndarray]]
) -> None:
    detector = recognizer.engine.detector
    frames = clips[HER]
    (face,) = detector.detect(frames[0])
    # Expected a few pixels off (the face has moved since): O-Net puts the box back on it.
    moved = face.box + np.array([8, -6, 8, -6], np.float32)
    (again,) = detector.detect_batch([frames[0]], [moved[None]])[0]
    assert iou(again.box, face.box) >= 0.8
    # Nothing expected: nothing found, and nothing where there is no face.
    assert detector.detect_batch([frames[0]], [np.zeros((0, 4))]) == [[]]
    empty = np.array([[0, 0, 60, 60]], np.float32)
    assert detector.detect_batch([frames[0]], [empty]) == [[]]


def test_a_stream_is_named_on_the_tracks_decisions_with_far_fewer_embeddings(
    recognizer, clips: dict[str, list[np.ndarray]]
) -> None:
    from facelive.recognition.scenes import CutDetector

    name = "Alexandria Ocasio-Cortez"
    hers, theirs = clips[HER], clips[STRANGER]
    report = recognizer.enroll(name, [hers[i] for i in range(0, 90, 18)])
    assert len(report.example_ids) == 5
    detector = recognizer.engine.detector
    tracker, cuts = Tracker(), CutDetector(rgb=True)
    replies = []
    for frame in hers[:60] + theirs[:30]:
        replies.append(recognizer.recognize_tracked([frame], [tracker], [cuts.is_cut(frame)])[0])
    assert all(len(r) == 1 for r in replies)
    mine, stranger = replies[:60], replies[60:]
    assert all(shown.name == name for (_, shown), in mine)
    assert not any(shown.name == name for (_, shown), in stranger)
    # One track each: the switch of clips is a cut, and the stranger is a new track.
    assert len({shown.track for (_, shown), in mine}) == 1
    assert not {shown.track for (_, shown), in mine} & {shown.track for (_, shown), in stranger}
    embedded = [face.embedding is not None for (face, _), in replies]
    assert embedded[0] and embedded[60]  # the first frame of each face
    assert sum(embedded) <= 0.35 * len(embedded), sum(embedded)
    assert all(shown.embedded == e for ((_, shown),), e in zip(replies, embedded, strict=True))
    # Tracked boxes stay on the face: against the full detector on the same frames.
    overlaps = [iou(np.array(face.box), detector.detect(frame)[0].box)
                for ((face, _),), frame in zip(mine, hers[:60], strict=True)]
    assert min(overlaps) >= 0.7 and float(np.median(overlaps)) >= 0.85, overlaps

    # Everything every frame: every face embedded (the work of before).
    saved, recognizer.economy = recognizer.economy, EVERY_FRAME
    try:
        tracker = Tracker()
        for frame in hers[:5]:
            ((face, shown),) = recognizer.recognize_tracked([frame], [tracker])[0]
            assert face.embedding is not None and shown.embedded
    finally:
        recognizer.economy = saved
        recognizer.delete(name)


@pytest.mark.slow
def test_faces_entering_are_boxed_within_three_frames(recognizer, test_data: Path) -> None:
    """The entry bound on real footage with faces coming and going: the Hamilton clip (three
    cuts, the audience) and people walking into the pedestrian clip."""
    from facelive.recognition.scenes import CutDetector

    clips = {"short_hamilton_clip.mp4": 275, "facenet_pytorch_video.mp4": 60}
    detector = recognizer.engine.detector
    boxed = lasting = 0
    for clip, count in clips.items():
        path = test_data / "video" / clip
        if not path.is_file():
            pytest.skip(f"{path} not found")
        frames = read_frames(path, count, longest=640)
        reference = [[d.box for d in detector.detect(f)] for f in frames]
        tracker, cuts = Tracker(), CutDetector(rgb=True)
        found = []
        for frame in frames:
            pairs = recognizer.recognize_tracked([frame], [tracker], [cuts.is_cut(frame)])[0]
            found.append([f.box for f, _ in pairs])
        b, n = within(entries(reference, found), 3)
        boxed, lasting = boxed + b, lasting + n
    assert lasting >= 10  # enough entries for the share to mean something
    assert boxed >= 0.99 * lasting, (boxed, lasting)
