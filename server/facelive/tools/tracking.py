"""Faces followed from frame to frame, so that a name holds steady in a video.

Detections of a new frame are matched to the tracks of earlier frames by box overlap (IoU,
greedy, best pair first). A track's shown name is the majority vote of its last `window`
recognitions ("unknown" votes too), so a single frame where the recogniser wavers (motion
blur, a turned head) does not change the label; on a tie the name already shown stays.
Between detections (video --every N) a track is carried: its box moves on at the velocity
measured between its last detections. A track unmatched for `max_age` frames ends, and all
end at a scene cut (`reset`, see scenes.py).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Observation:
    """One recognised face of a frame: box (x, y, w, h) in pixels, the recogniser's answer."""

    box: tuple[float, float, float, float]
    name: str
    distance: float | None = None
    confidence: float = 0.0


@dataclass(frozen=True)
class TrackedFace:
    """A face as shown in one frame: track id, box (x, y, w, h), voted name, whether it was
    detected in this frame (False: carried between detections), and the recogniser's
    distance/confidence at the track's last detection."""

    track: int
    box: tuple[float, float, float, float]
    name: str
    detected: bool
    distance: float | None
    confidence: float


def _corners(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = box
    return np.array([x, y, x + w, y + h], np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes, 0..1."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class _Track:
    id: int
    corners: np.ndarray  # (4,) x1, y1, x2, y2 at last_frame
    last_frame: int
    votes: deque[str]
    name: str
    distance: float | None
    confidence: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def at(self, frame: int) -> np.ndarray:
        return self.corners + self.velocity * (frame - self.last_frame)

    def vote(self, name: str) -> None:
        self.votes.append(name)
        counts = Counter(self.votes)
        best = max(counts.values())
        tied = [n for n, c in counts.items() if c == best]
        if self.name not in tied:
            # The most recent of the tied names: the face's newest evidence.
            self.name = next(n for n in reversed(self.votes) if n in tied)

    def shown(self, frame: int, detected: bool) -> TrackedFace:
        x1, y1, x2, y2 = (float(v) for v in self.at(frame))
        return TrackedFace(self.id, (x1, y1, x2 - x1, y2 - y1), self.name, detected,
                           self.distance, self.confidence)


class Tracker:
    """Feed it every frame in order: `update` for a frame with detections (possibly none
    found), `carry` for a frame that was not searched."""

    def __init__(self, iou_threshold: float = 0.3, window: int = 15, max_age: int = 30) -> None:
        if not 0.0 < iou_threshold < 1.0 or window < 1 or max_age < 1:
            raise ValueError("need 0 < iou_threshold < 1, window >= 1 and max_age >= 1")
        self.iou_threshold = iou_threshold
        self.window = window
        self.max_age = max_age
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_detection = -1

    def update(self, frame: int, observations: Sequence[Observation]) -> list[TrackedFace]:
        """Match this frame's faces to the tracks; returns one TrackedFace per observation,
        in the order given."""
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= self.max_age]
        boxes = [_corners(o.box) for o in observations]
        pairs = sorted(
            ((iou(t.at(frame), box), ti, oi)
             for ti, t in enumerate(self._tracks) for oi, box in enumerate(boxes)),
            reverse=True,
        )
        matched: dict[int, _Track] = {}
        used: set[int] = set()
        for overlap, ti, oi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used or oi in matched:
                continue
            used.add(ti)
            matched[oi] = self._tracks[ti]
        out = []
        for oi, (obs, box) in enumerate(zip(observations, boxes, strict=True)):
            track = matched.get(oi)
            if track is None:
                track = _Track(self._next_id, box, frame, deque(maxlen=self.window), obs.name,
                               obs.distance, obs.confidence)
                self._next_id += 1
                self._tracks.append(track)
            else:
                step = frame - track.last_frame
                if step > 0:
                    # Smoothed per-frame motion: steadies the carried boxes of --every N.
                    track.velocity = 0.5 * track.velocity + 0.5 * (box - track.corners) / step
                track.corners, track.last_frame = box, frame
                track.distance, track.confidence = obs.distance, obs.confidence
            track.vote(obs.name)
            out.append(track.shown(frame, detected=True))
        self._last_detection = frame
        return out

    def reset(self) -> None:
        """End every track (a scene cut: whoever comes next is someone new)."""
        self._tracks = []
        self._last_detection = -1

    def carry(self, frame: int) -> list[TrackedFace]:
        """The faces found at the last detected frame, moved on to this one."""
        return [t.shown(frame, detected=False) for t in self._tracks
                if t.last_frame == self._last_detection]
