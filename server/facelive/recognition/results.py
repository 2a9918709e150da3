"""What the recogniser hands back: a recognised face of a frame, and the report of an
enrolment (what was taken, left out or picked, and who an accepted face looks like)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelive import wire

Box = tuple[float, float, float, float]


def box_side(box: Sequence[float] | np.ndarray) -> float:
    """The shorter side of an (x1, y1, x2, y2) detector box, px (as quality.face_quality's
    size)."""
    return float(min(box[2] - box[0], box[3] - box[1]))


def corners_of(box: Iterable[float]) -> Box:
    """A detector box ((4,) float32 x1, y1, x2, y2) as the corners the records keep: four
    Python floats, same pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class RecognizedFace:
    """One face of a frame. box: (x1, y1, x2, y2) corners in frame pixels (the JSON's
    [x, y, w, h] is made at the edge, wire.py); landmarks: five (x, y) points
    (eyes, nose, mouth corners); score: detector probability; name: the person or "unknown";
    distance: Euclidean distance (unit embeddings, 0..2) to the nearest example of `name`, or
    of the closest person when unknown, None with an empty gallery; confidence: the probability
    that the face is that nearest person, calibrated on LFW (confidence.py); embedding: (D,)
    float32 unit vector (a small face under the fused embedder: [dlib-resnet's vector, 0],
    FaceNet's not computed, vision/facenet_embedders.DlibHalf)."""

    box: Box
    landmarks: tuple[tuple[float, float], ...]
    score: float
    name: str
    distance: float | None
    confidence: float
    person: int | None = None
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    # The closest person whatever the threshold (`distance` is to them when unknown).
    nearest: int | None = None
    # 0..1, how much this face is worth as evidence (vision/quality.py): small, blurred or
    # turned faces count for less in a track.
    quality: float | None = field(default=None, compare=False)
    # The threshold this face was judged against: the recogniser's, or for a small face of
    # the fused embedder dlib-resnet's (Recognizer._classify_faces), whose distance it is.
    threshold: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {box: [x, y, w, h], score, landmarks, name, distance, confidence}
        (wire.face_json turns the corners into [x, y, w, h])."""
        return {**wire.face_json(self.box, self.score, self.landmarks), "name": self.name,
                "distance": wire.rounded(self.distance),
                "confidence": wire.rounded(self.confidence)}


@dataclass(frozen=True)
class Skipped:
    """An input left out of an enrolment: its position in the list and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class Picked:
    """An accepted input that showed several faces: its position, how many faces, and the
    box (x1, y1, x2, y2) corners in pixels of the one taken (the dominant one, see
    pipeline.dominant_face)."""

    index: int
    faces: int
    box: Box

    @property
    def message(self) -> str:
        x, y, w, h = (round(v) for v in wire.xywh(self.box))
        return (f"{self.faces} faces found; took the largest, at x {x}, y {y} "
                f"({w}x{h} px)")


@dataclass(frozen=True)
class Lookalike:
    """An accepted face that the gallery already knows as someone else: its input position,
    who it looks like, at what distance."""

    index: int
    name: str
    distance: float


@dataclass(frozen=True)
class EnrollReport:
    """name: as stored (an existing person keeps their spelling); person: id, None when
    nothing was added; example_ids: one per accepted image, in input order; accepted: their
    input positions; warnings: accepted faces that look like someone else (`lookalikes`, as
    text); picked: accepted images with several faces, and which one was taken."""

    name: str
    person: int | None
    example_ids: list[int]
    accepted: list[int]
    skipped: list[Skipped]
    warnings: list[str]
    picked: list[Picked] = field(default_factory=list)
    lookalikes: list[Lookalike] = field(default_factory=list)


# Called with (name, vectors of the accepted faces, their input positions) before anything is
# stored, under the recognizer's lock; raising refuses the enrolment (see same_person.py).
EnrollCheck = Callable[[str, np.ndarray, list[int]], None]
