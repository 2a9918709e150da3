"""Synthetic gallery content for storage tests: distinct face patches and unit vectors.

These test the store, not recognition, so the pictures need only be real JPEGs, distinct per
seed; tests of recognition use real LFW faces (test_recognizer.py)."""

from __future__ import annotations

import cv2
import numpy as np

from facelive.recognition.gallery import FacePatch
from facelive.recognition.patches import make_patch

DIM = 128


def face_image(seed: int, size: int = 200) -> np.ndarray:
    """A synthetic RGB picture: smooth colour blobs (JPEG-friendly) plus noise, distinct per
    seed so each patch's JPEG is unique."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-12, 12, size=image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def patches(seed: int, n: int) -> list[FacePatch]:
    box = np.array([60, 50, 140, 150], np.float32)
    landmarks = np.array([[80, 85], [120, 85], [100, 105], [85, 125], [115, 125]], np.float32)
    return [make_patch(face_image(seed * 1000 + i), box, landmarks) for i in range(n)]


def vectors(seed: int, n: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
