"""Face crops in the form each embedder was trained on, made from MTCNN's box and 5 landmarks.

- FaceNet: the detector's box widened by a margin (32 px in all), cut out and resized to
  160x160, as facenet's own `align_dataset_mtcnn` did for its LFW evaluation.
- dlib ResNet: a 150x150 chip made by the similarity transform (rotation, uniform scale,
  translation) that best maps MTCNN's five points onto DLIB_TEMPLATE_150 (least squares,
  Umeyama 1991). dlib's own chips come from its 5-point shape predictor (eye corners and the
  base of the nose), which are different points, so the template is ours: see its comment.
"""

from __future__ import annotations

import cv2
import numpy as np

FACENET_SIZE = 160
FACENET_MARGIN = 32
DLIB_CHIP_SIZE = 150

# Where MTCNN's five points (left eye, right eye, nose, left and right mouth corner; x, y in
# pixels) fall, on average, on the 150x150 chip that dlib.get_face_chip(size=150,
# padding=0.25) makes with dlib's own 5-point shape predictor, i.e. on the chips the ResNet was
# trained on. Measured by bench/derive_dlib_template.py over LFW images where both detectors
# found the face, then mirrored to be left-right symmetric; the LFW accuracy of this template
# against scaled and shifted variants is in docs/alignment.md.
DLIB_TEMPLATE_150 = np.array(
    [
        [47.26, 45.33],
        [101.74, 45.33],
        [74.50, 77.32],
        [50.41, 105.17],
        [98.59, 105.17],
    ],
    dtype=np.float32,
)
# How much each point counts in the fit. dlib's chips are placed by four eye corners and the
# nose base, so its alignment follows the eyes; MTCNN's nose tip and mouth corners move with
# pose and expression (their spread on dlib's chips is ~3x the eyes', see the derivation).
# Uniform weights are the default until bench/align_variants.py says otherwise.
DLIB_TEMPLATE_WEIGHTS = np.ones(5, dtype=np.float32)


def similarity_transform(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """The 2x3 matrix M of the similarity transform minimising sum w_i |M [src_i;1] - dst_i|^2.

    src, dst: (K, 2) float point sets, K >= 2; weights: (K,) non-negative, default all 1.
    Umeyama's closed form (weighted), without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    src_mean = w @ src
    dst_mean = w @ dst
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float(w @ (src_c**2).sum(axis=1))
    if src_var < 1e-12:
        raise ValueError("degenerate landmarks (all points coincide)")
    cov = (dst_c * w[:, None]).T @ src_c
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_var
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


def dlib_chip(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = DLIB_CHIP_SIZE,
    template: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) image + (5, 2) MTCNN landmarks -> (size, size, 3) uint8 chip."""
    template = DLIB_TEMPLATE_150 if template is None else template
    weights = DLIB_TEMPLATE_WEIGHTS if weights is None else weights
    matrix = similarity_transform(landmarks, template * (size / DLIB_CHIP_SIZE), weights)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def crop_region(box: np.ndarray, margin: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """facenet's crop: box widened by margin/2 per side, clipped to the image; x1, y1, x2, y2.
    ValueError when nothing of it is inside the image."""
    height, width = shape[:2]
    x1 = int(max(np.floor(box[0] - margin / 2), 0))
    y1 = int(max(np.floor(box[1] - margin / 2), 0))
    x2 = int(min(np.ceil(box[2] + margin / 2), width))
    y2 = int(min(np.ceil(box[3] + margin / 2), height))
    if x2 <= x1 or y2 <= y1:
        raise ValueError("face box lies outside the image")
    return x1, y1, x2, y2


def facenet_crop(
    image: np.ndarray,
    box: np.ndarray,
    size: int = FACENET_SIZE,
    margin: int = FACENET_MARGIN,
) -> np.ndarray:
    """RGB uint8 image + (4,) x1, y1, x2, y2 box -> (size, size, 3) uint8 crop (crop_region,
    resized), as facenet did."""
    x1, y1, x2, y2 = crop_region(box, margin, image.shape)
    return cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
