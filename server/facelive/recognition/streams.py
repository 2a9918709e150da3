"""Frames of streams (live connections, `facelive video`) through the recogniser, each worked
on only where it brings something new (issue 17; the rule is recognition/economy.py, the
bookkeeping the stream's Tracker): a full detector pass or O-Net on the tracks' predicted
boxes, and an embedding only for the faces whose tracks need one. All streams of a call share
one detector batch and one fused embed + KNN call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facelive import wire
from facelive.recognition.names import UNKNOWN
from facelive.recognition.pipeline import Face
from facelive.recognition.results import RecognizedFace, box_side, corners_of
from facelive.recognition.tracks import TrackedFace, Tracker, iou, observations
from facelive.vision.mtcnn import Detection
from facelive.vision.quality import face_quality, yaw_of

if TYPE_CHECKING:
    from facelive.recognition.recognizer import ImageInput, Recognizer

# A detection (RecognizedFace) and the face as its track shows it.
Pair = tuple[RecognizedFace, TrackedFace]
# A track's predicted box counts as found again when a detection overlaps it this much.
FOUND_IOU = 0.3
# Yaw beyond this is a profile whatever its value (and never inf, which the rule cannot use).
MAX_YAW = 3.0


def _all_found(expected: np.ndarray, detections: Sequence[Detection]) -> bool:
    return all(any(iou(box, d.box) >= FOUND_IOU for d in detections) for box in expected)


# The recogniser's own state these need is its business; kept here so that recognizer.py
# stays one job (and under the house's 500 lines).
def _refresh_if_due(recognizer: Recognizer) -> None:
    if time.monotonic() - recognizer._last_refresh > recognizer._refresh_interval:  # noqa: SLF001
        recognizer.refresh()


def _catch_up(recognizer: Recognizer, tracker: Tracker) -> None:
    """A stream's tracker forgets its names after a change made by another worker or the CLI."""
    seen, changes = recognizer._tracker_seen, recognizer._outside_changes  # noqa: SLF001
    if seen.get(tracker, changes) != changes:
        tracker.forget_names()
    seen[tracker] = changes


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def recognize_streams(
    recognizer: Recognizer, frames: Sequence[ImageInput], trackers: Sequence[Tracker],
    cuts: Sequence[bool] | None = None,
) -> list[list[dict[str, Any]]]:
    """JSON-ready faces per frame (the live `faces` reply's): the detection's box, score and
    landmarks; the track's name, distance and confidence; `track`; `embedded`."""
    return [[{**face.to_dict(), "name": shown.name, "distance": wire.rounded(shown.distance),
              "confidence": wire.rounded(shown.confidence), "track": shown.track,
              "embedded": shown.embedded}
             for face, shown in pairs]
            for pairs in recognize_tracked(recognizer, frames, trackers, cuts)]


def recognize_tracked(
    recognizer: Recognizer, frames: Sequence[ImageInput], trackers: Sequence[Tracker],
    cuts: Sequence[bool] | None = None,
) -> list[list[tuple[RecognizedFace, TrackedFace]]]:
    """The next frame of each stream (one frame per tracker, in its stream's order). cuts:
    per frame, whether it starts a new shot (the stream's tracks end). Per frame, per face:
    the detection as a RecognizedFace (`embedding` None where not embedded: its name and
    distance are then the track's) and the face as its track shows it. The recognizer's
    last_timings get {detect, embed, knn} in ms, as recognize_batch's."""
    _refresh_if_due(recognizer)
    images = [recognizer.to_rgb(frame) for frame in frames]
    indices = [tracker.next_frame for tracker in trackers]
    for tracker, cut in zip(trackers, cuts or [False] * len(trackers), strict=True):
        _catch_up(recognizer, tracker)
        if cut:
            tracker.reset()
    economy = recognizer.economy
    start = time.perf_counter()
    hints: list[np.ndarray | None] = [
        None if tracker.full_pass_due(index, economy) else tracker.expected(index)
        for tracker, index in zip(trackers, indices, strict=True)]
    detections = list(recognizer.engine.detector.detect_batch(images, hints))
    # A followed face not found where its track said is searched for in the whole frame at
    # once: it has moved further than the track predicted (a fast walker, a slow stream) or
    # left, and showing the frame without it would make its box blink. Costs a full pass
    # only on such frames.
    lost = [i for i, (hint, found) in enumerate(zip(hints, detections, strict=True))
            if hint is not None and not _all_found(hint, found)]
    if lost:
        again = recognizer.engine.detector.detect_batch([images[i] for i in lost],
                                                        [None] * len(lost))
        for i, found in zip(lost, again, strict=True):
            detections[i], hints[i] = found, None
    for tracker, index, hint in zip(trackers, indices, hints, strict=True):
        tracker.searched(index, full=hint is None)
    detect_ms = _ms(start)
    start = time.perf_counter()
    plans, chips, sides = [], [], []
    for image, tracker, index, dets in zip(images, trackers, indices, detections, strict=True):
        yaws = [min(yaw_of(d.landmarks), MAX_YAW) for d in dets]
        reasons = tracker.embedding_plan(index, [d.box for d in dets], yaws,
                                         economy)
        plans.append((yaws, reasons))
        chips += [recognizer.embedder.align(image, d)
                  for d, why in zip(dets, reasons, strict=True) if why is not None]
        sides += [box_side(d.box) for d, why in zip(dets, reasons, strict=True)
                  if why is not None]
    if chips:
        embeddings, result, rules = recognizer._classify_faces(  # noqa: SLF001
            np.stack(chips), sides)
    recognizer.last_timings = {"detect": detect_ms, "embed": _ms(start) if chips else 0.0,
                               "knn": 0.0}
    out: list[list[tuple[RecognizedFace, TrackedFace]]] = []
    position = 0
    for image, tracker, index, dets, (yaws, reasons) in zip(
            images, trackers, indices, detections, plans, strict=True):
        faces: list[RecognizedFace] = []
        for det, why in zip(dets, reasons, strict=True):
            if why is None:
                faces.append(RecognizedFace(corners_of(det.box), tuple(
                    (float(x), float(y)) for x, y in det.landmarks), float(det.score),
                    UNKNOWN, None, 0.0))
                continue
            quality = face_quality(image, det.box, det.landmarks).score
            faces.append(recognizer.face_of(Face(det, chips[position]), result, position,
                                            embeddings[position], quality, rules[position]))
            position += 1
        shown = tracker.update(index, observations(
            faces, recognizer.threshold, [why is not None for why in reasons], yaws),
            recognizer.names)
        out.append(list(zip(faces, shown, strict=True)))
    return out
