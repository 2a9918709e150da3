"""Face quality: is a detected face good enough to enrol, and how much is it worth as evidence?

Three measures, each from what the detector already gives (box and five landmarks) plus one
small crop of the image, so they cost well under a millisecond a face:
- size: the shorter side of the face box, in pixels. Below ~50 px the embedder's 150 px chip
  is mostly interpolation.
- sharpness: the variance of the Laplacian of the face box, resampled to SHARPNESS_SIDE px
  grey first, so that the number means the same for a 60 px and a 600 px face (a big face is
  not "sharper" for having more pixels). Motion and focus blur remove the high frequencies
  the Laplacian responds to.
- yaw: how far the head is turned, from the nose's place between the eyes in the eyes' own
  frame (roll removed): 0 frontal, 1 with the nose under one eye (about 45-60 degrees), more
  towards a profile. Five-point alignment cannot undo a turned head: one side of the face is
  missing from the chip.

The limits (MIN_SIZE, MIN_SHARPNESS, MAX_YAW) are measured on LFW and the shared videos
(docs/quality.md): each refuses well under 1% of LFW's faces, which are good enough to be
recognised at the LFW figures, and what it does refuse measurably embeds worse. `Quality.score`
(0..1) is what a tracker uses to weight a frame's evidence: 1 for a face comfortably past
every limit, falling linearly to 0 at a limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHARPNESS_SIDE = 64
MIN_SIZE = 48.0
MIN_SHARPNESS = 40.0
MAX_YAW = 1.2
# Where the score reaches 1: this far past the limit (sizes and sharpness as multiples of
# the limit, yaw as a fraction of it).
GOOD_SIZE = 2.0
GOOD_SHARPNESS = 2.5
GOOD_YAW = 0.5


@dataclass(frozen=True)
class Quality:
    """size: px (shorter side of the box); sharpness: variance of the Laplacian at
    SHARPNESS_SIDE px; yaw: 0 frontal, 1 nose under an eye; score: 0..1 evidence weight;
    problem: why the face would not be enrolled, or None."""

    size: float
    sharpness: float
    yaw: float
    score: float
    problem: str | None

    def to_dict(self) -> dict[str, float | str | None]:
        return {"size": round(self.size, 1), "sharpness": round(self.sharpness, 1),
                "yaw": round(self.yaw, 3), "score": round(self.score, 3),
                "problem": self.problem}


def yaw_of(landmarks: Sequence[Sequence[float]] | np.ndarray) -> float:
    """0 frontal .. 1 nose under one eye (see the module docstring); from (5, 2) landmarks
    (left eye, right eye, nose, mouth left, mouth right)."""
    points = np.asarray(landmarks, np.float64)
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    eye_distance = float(np.hypot(*axis))
    if eye_distance < 1e-6:
        return math.inf  # both eyes on one point: a profile, or a broken detection
    # The nose's position along the eye line, measured from the eyes' midpoint, in half eye
    # distances: +-1 is under an eye.
    along = float((nose - (left + right) / 2.0) @ axis) / eye_distance
    return abs(along) / (eye_distance / 2.0)


def sharpness_of(image: np.ndarray, box: Sequence[float] | np.ndarray) -> float:
    """Variance of the Laplacian of the face box (clipped to the image), grey, resampled to
    SHARPNESS_SIDE x SHARPNESS_SIDE. 0 for a box with no pixels in the image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top = max(int(math.floor(x1)), 0), max(int(math.floor(y1)), 0)
    right, bottom = min(int(math.ceil(x2)), width), min(int(math.ceil(y2)), height)
    if right - left < 2 or bottom - top < 2:
        return 0.0
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    shrink = min(grey.shape) >= SHARPNESS_SIDE
    grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _ramp(value: float, limit: float, good: float) -> float:
    """0 at `limit`, 1 at `good` (either side of it), linear between."""
    if good == limit:
        return float(value >= limit)
    return float(np.clip((value - limit) / (good - limit), 0.0, 1.0))


def face_quality(
    image: np.ndarray,
    box: Sequence[float] | np.ndarray,
    landmarks: Sequence[Sequence[float]] | np.ndarray,
    *,
    min_size: float = MIN_SIZE,
    min_sharpness: float = MIN_SHARPNESS,
    max_yaw: float = MAX_YAW,
) -> Quality:
    """Measure one detected face of an RGB (H, W, 3) uint8 image. box: x1, y1, x2, y2."""
    x1, y1, x2, y2 = (float(v) for v in box)
    size = max(min(x2 - x1, y2 - y1), 0.0)
    sharpness = sharpness_of(image, box)
    yaw = yaw_of(landmarks)
    problem = None
    if size < min_size:
        problem = f"face too small ({size:.0f} px, at least {min_size:.0f} px needed)"
    elif yaw > max_yaw:
        problem = f"face turned too far from the camera (yaw {yaw:.2f}, at most {max_yaw:.2f})"
    elif sharpness < min_sharpness:
        problem = (f"face too blurred (sharpness {sharpness:.0f}, at least "
                   f"{min_sharpness:.0f} needed)")
    score = min(
        _ramp(size, min_size, min_size * GOOD_SIZE),
        _ramp(sharpness, min_sharpness, min_sharpness * GOOD_SHARPNESS),
        _ramp(-yaw, -max_yaw, -max_yaw * GOOD_YAW) if math.isfinite(yaw) else 0.0,
    )
    return Quality(size, sharpness, yaw, score, problem)


def quality_score(
    image: np.ndarray,
    box: Sequence[float] | np.ndarray,
    landmarks: Sequence[Sequence[float]] | np.ndarray,
) -> float:
    """0..1: how much a face is worth as evidence (see face_quality)."""
    return face_quality(image, box, landmarks).score
