"""Face patches: what the gallery keeps of each example instead of an embedder's aligned crop.

A patch is the face with context around it (a square of PATCH_SCALE times the detector's box,
clipped to the image, at most PATCH_MAX_SIDE pixels) plus the box and five landmarks moved onto
it. Every embedder's alignment (dlib's similarity-transform chip, FaceNet's margin crop) can be
made again from it, so switching embedders re-embeds the stored faces instead of asking
everyone to enrol again; the same JPEG serves as the thumbnail.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.errors import FaceLiveError
from facelive.recognition.gallery_records import FacePatch

# The dlib chip spans ~1.5x the face box (more when the head is tilted), FaceNet's crop the
# box plus 16 px a side: twice the box holds both.
PATCH_SCALE = 2.0
PATCH_MAX_SIDE = 320
JPEG_QUALITY = 92


class PatchError(FaceLiveError, ValueError):
    """A stored patch cannot be decoded."""

    kind = "broken"


def make_patch(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> FacePatch:
    """RGB uint8 (H, W, 3) image + (4,) x1, y1, x2, y2 box + (5, 2) landmarks in image pixels
    -> FacePatch (JPEG; box and landmarks in patch pixels)."""
    height, width = image.shape[:2]
    box = np.asarray(box, np.float64)
    landmarks = np.asarray(landmarks, np.float64)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = PATCH_SCALE * max(box[2] - box[0], box[3] - box[1], 1.0) / 2
    x1, y1 = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    x2, y2 = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
    if x2 <= x1 or y2 <= y1:
        raise ValueError("face box lies outside the image")
    patch = image[y1:y2, x1:x2]
    scale = min(1.0, PATCH_MAX_SIDE / max(patch.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        # Exact per-axis factors after rounding the size.
        sx, sy = size[0] / (x2 - x1), size[1] / (y2 - y1)
    else:
        sx = sy = 1.0
    offset = np.array([x1, y1], np.float64)
    factor = np.array([sx, sy], np.float64)
    new_box = ((box.reshape(2, 2) - offset) * factor).reshape(4)
    new_landmarks = (landmarks - offset) * factor
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
    )
    if not ok:
        raise ValueError("cannot encode the face patch as JPEG")
    return FacePatch(
        encoded.tobytes(), new_box.astype(np.float32), new_landmarks.astype(np.float32)
    )


def decode_patch(patch: FacePatch) -> np.ndarray:
    """FacePatch -> RGB uint8 (h, w, 3) image."""
    array = cv2.imdecode(np.frombuffer(patch.jpeg, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise PatchError("cannot decode a stored face patch")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
