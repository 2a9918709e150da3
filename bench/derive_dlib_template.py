"""Derive DLIB_TEMPLATE_150 (vision/align.py): where MTCNN's five points fall on dlib's chips.

    python bench/derive_dlib_template.py [--images 2000] [--json]

dlib's ResNet was trained on 150x150 chips cut by dlib.get_face_chip(size=150, padding=0.25)
around its own 5-point landmarks (eye corners, nose base). For LFW images where both dlib's HOG
detector and our MTCNN find the face, map MTCNN's landmarks through the exact image->chip
similarity transform of dlib's chip and average them; then make the template left-right
symmetric. Needs dlib (test-only dependency) and ../shared/data. A development tool: its output
is pasted into align.py, nothing at run time uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from facelive.settings import Settings  # noqa: E402
from facelive.vision.image import read_image  # noqa: E402
from facelive.vision.mtcnn import MTCNN  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def image_to_chip(details: object) -> tuple[np.ndarray, np.ndarray]:
    """(A, t) with chip = A @ image + t for a dlib chip_details of a 150x150 chip.

    dlib samples chip pixel q at image point c + R(angle) * s * (q - 74.5), with c the
    rectangle's centre and s = width / 149 (checked against dlib.get_face_chip pixels: mean
    absolute difference below 0.5 grey levels, the rest being interpolation)."""
    rect = details.rect  # type: ignore[attr-defined]
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    scale = (rect.right() - rect.left()) / 149.0
    a = details.angle  # type: ignore[attr-defined]
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    inverse = rotation.T / scale
    return inverse, 74.5 - inverse @ centre


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", help="write the per-face landmarks and dlib transforms (.npz)")
    parser.add_argument("--data", default=os.environ.get(
        "FACELIVE_TEST_DATA", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    import dlib
    import face_recognition_models as frm

    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    mtcnn = MTCNN.from_settings(Settings.from_env(min_face_size=40))
    files = sorted(Path(args.data, "lfw").glob("*/*.jpg"))
    step = max(len(files) // args.images, 1)
    points = []
    transforms = []
    raw_landmarks = []
    for path in files[::step][: args.images]:
        image = read_image(path)
        rects = hog(image, 1)
        faces = mtcnn.detect(image)
        if len(rects) != 1 or not faces:
            continue
        rect = rects[0]
        centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
        # The MTCNN face that is the same face dlib found: nearest box centre.
        face = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        details = dlib.get_face_chip_details(predictor(image, rect), 150, 0.25)
        a, t = image_to_chip(details)
        points.append(face.landmarks @ a.T + t)
        transforms.append(np.hstack([a, t[:, None]]))
        raw_landmarks.append(face.landmarks)
    stack = np.stack(points)
    if args.save:
        np.savez(args.save, landmarks=np.stack(raw_landmarks), transforms=np.stack(transforms))
    mean = stack.mean(axis=0)
    # Mirror: left eye <-> right eye, mouth left <-> mouth right, x -> 149 - x.
    mirrored = mean[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = 149.0 - mirrored[:, 0]
    symmetric = (mean + mirrored) / 2
    result = {
        "faces": len(points),
        "mean": np.round(mean, 2).tolist(),
        "std": np.round(stack.std(axis=0), 2).tolist(),
        "template": np.round(symmetric, 2).tolist(),
    }
    print(json.dumps(result, indent=2) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
