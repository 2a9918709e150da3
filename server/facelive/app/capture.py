"""Capture Examples: collect a person's example frames from their own live stream.

Capture is server-side, from the frames the page already streams, rather than the page
uploading snapshots of its own:
- the server has just detected the faces of every streamed frame, so it can judge each frame
  (one face? big enough? a new pose?) at no extra cost, with the same detector that enrolment
  and recognition use; the page would need a second round trip per snapshot to know the same;
- what is enrolled is exactly what the live view analysed, at the resolution it streams;
- the page stays a thin view: it says "start", shows the progress the server reports, and
  sends a name. Frames are kept only while a capture is active, at most `target` of them per
  client, as the JPEG bytes that arrived (no copy, nothing decoded is kept).

A frame is taken when it shows exactly one face, big and sure enough, at least `min_gap_s`
after the previous one, in a pose that differs from every frame taken so far: a talking head
that barely moves would otherwise give ten copies of one picture. Pose is compared through
the five landmarks, relative to the eyes and in units of the eye distance (so moving closer or
sideways is not a new pose; turning, tilting, nodding or an open mouth is). Plain numbers from
the detector's reply: nothing here touches an image or a tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TARGET = 10
MAX_TARGET = 30
# Seconds between two frames taken: ten examples span at least ~2 s of movement.
MIN_GAP_S = 0.2
# Smallest pose change, in eye distances, for a frame to count as new. Measured on the
# 200-frame talking-head clips at 480 px: consecutive frames differ by a median 0.045, the
# clip's frames by a median 0.12, a frozen picture by ~0; 0.05 keeps 58 of 200 frames, so
# natural movement fills ten in a few seconds while a still face is asked to move.
POSE_NOVELTY = 0.05
# Small or unsure faces make poor examples (the embedder works on ~150 px chips).
MIN_FACE_PX = 60.0
MIN_SCORE = 0.9

HINT_NO_FACE = "No face in view: look at the camera."
HINT_SMALL = "The face is too small or unclear: come closer to the camera."
HINT_SAME_POSE = "Turn, tilt or nod your head a little."


def hint_several(count: int) -> str:
    return f"{count} faces in view: only the person to add may be in the picture."


def pose_descriptor(landmarks: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Five (x, y) landmarks (eyes, nose, mouth corners) -> ten numbers: each point's offset
    from the eyes' midpoint, in eye distances. Invariant to where the face is and how big."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    cx, cy = (lx + rx) / 2.0, (ly + ry) / 2.0
    eye_distance = math.hypot(rx - lx, ry - ly) or 1.0
    return tuple(
        value
        for x, y in landmarks
        for value in ((x - cx) / eye_distance, (y - cy) / eye_distance)
    )


def pose_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Largest coordinate difference of two descriptors: one point that moved is enough."""
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


@dataclass
class CaptureSession:
    """One client's capture in progress. offer() each analysed frame; `images` are the JPEG
    frames taken, in order."""

    target: int = DEFAULT_TARGET
    min_gap_s: float = MIN_GAP_S
    novelty: float = POSE_NOVELTY
    images: list[bytes] = field(default_factory=list)
    poses: list[tuple[float, ...]] = field(default_factory=list)
    last_taken: float = -math.inf
    hint: str | None = None
    saving: bool = False  # capture_save is enrolling these images now

    @property
    def collected(self) -> int:
        return len(self.images)

    @property
    def done(self) -> bool:
        return self.collected >= self.target

    def offer(self, image: bytes, faces: Sequence[dict[str, Any]], now: float) -> bool:
        """Judge one analysed frame (`faces` as sent to the page; `now` in seconds): True when
        it was taken. `hint` then says what the person should do, or None."""
        if self.done:
            return False
        taken = False
        if not faces:
            self.hint = HINT_NO_FACE
        elif len(faces) > 1:
            self.hint = hint_several(len(faces))
        elif min(faces[0]["box"][2:]) < MIN_FACE_PX or faces[0]["score"] < MIN_SCORE:
            self.hint = HINT_SMALL
        elif now - self.last_taken < self.min_gap_s:
            pass  # too soon: not the person's doing, so the hint stays as it was
        else:
            pose = pose_descriptor(faces[0]["landmarks"])
            if any(pose_distance(pose, seen) < self.novelty for seen in self.poses):
                self.hint = HINT_SAME_POSE
            else:
                self.images.append(image)
                self.poses.append(pose)
                self.last_taken, self.hint, taken = now, None, True
        return taken

    def progress(self) -> dict[str, Any]:
        """The `capture` event: {collected, target, done, hint}."""
        return {"collected": self.collected, "target": self.target, "done": self.done,
                "hint": self.hint}
