"""Face quality on real LFW faces: a good face passes with a high score; the same face blurred,
shrunk or seen turned away is refused with the reason. Box and landmarks come from the real
detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.vision.quality import MAX_YAW, MIN_SHARPNESS, MIN_SIZE, face_quality, yaw_of


@pytest.fixture(scope="module")
def detector(models_dir: Path):
    from facelive.settings import Settings
    from facelive.vision.mtcnn import MTCNN

    return MTCNN.from_settings(Settings(models_dir=models_dir))


def _face(detector, image: np.ndarray):
    detections = detector.detect(image)
    assert detections, "the detector found no face"
    return max(detections, key=lambda d: float(d.box[2] - d.box[0]))


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_good_face_passes_and_degraded_copies_are_refused(detector, lfw_dir: Path) -> None:
    image = _read(lfw_dir / "Angelina_Jolie" / "Angelina_Jolie_0001.jpg")
    face = _face(detector, image)
    good = face_quality(image, face.box, face.landmarks)
    assert good.problem is None and good.score > 0.5, good
    assert good.size > 2 * MIN_SIZE and good.sharpness > 2 * MIN_SHARPNESS

    # Focus blur: what the Laplacian measures.
    blurred = cv2.GaussianBlur(image, (0, 0), 4)
    quality = face_quality(blurred, face.box, face.landmarks)
    assert quality.problem is not None and "blurred" in quality.problem
    assert quality.score == 0.0

    # The same photo at a fifth of its size: the face box shrinks below the limit.
    small = cv2.resize(image, (50, 50), interpolation=cv2.INTER_AREA)
    quality = face_quality(small, face.box / 5, face.landmarks / 5)
    assert quality.problem is not None and "too small" in quality.problem


def test_yaw_from_landmarks(detector, lfw_dir: Path) -> None:
    image = _read(lfw_dir / "Angelina_Jolie" / "Angelina_Jolie_0001.jpg")
    landmarks = np.asarray(_face(detector, image).landmarks, np.float64)
    assert yaw_of(landmarks) < 0.5  # a frontal LFW portrait
    # Mirroring the photo mirrors the turn, not its size.
    mirrored = landmarks.copy()
    mirrored[:, 0] = image.shape[1] - mirrored[:, 0]
    mirrored[[0, 1]] = mirrored[[1, 0]]
    mirrored[[3, 4]] = mirrored[[4, 3]]
    assert yaw_of(mirrored) == pytest.approx(yaw_of(landmarks), abs=1e-6)
    # The nose moved out past one eye: a head turned towards a profile. Rolling the whole
    # face changes nothing.
    turned = landmarks.copy()
    turned[2, 0] = turned[1, 0] + 0.3 * (turned[1, 0] - turned[0, 0])
    assert yaw_of(turned) > MAX_YAW
    centre = landmarks.mean(axis=0)
    angle = np.deg2rad(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (turned - centre) @ rotation.T + centre
    assert yaw_of(rolled) == pytest.approx(yaw_of(turned), rel=1e-6)
    assert "turned" in (face_quality(image, _face(detector, image).box, turned).problem or "")
