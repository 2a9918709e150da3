"""Detail benchmark: faces found and MTCNN milliseconds per frame at the sizes the page can send.

    python bench/detail.py [--json] [--frames N] [--models-dir D] [--data DIR]

Input is real: frames of the pedestrian clip (1920x1080, many small faces). The reference is the
full-size frame at min face 40 px, which is what `facelive detect` finds on it; each page size is
the frame scaled so its longer side is that many pixels and JPEG-encoded at the page's quality,
then detected as the live server does (same detector, same min face). Needs FACELIVE_TEST_DATA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchutil import machine, report  # noqa: E402
from facelive.models.store import ModelMissingError  # noqa: E402
from facelive.settings import Settings  # noqa: E402
from facelive.vision.mtcnn import MTCNN  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = (480, 640, 960, 1280, 1920)
JPEG_QUALITY = 70  # the page's JPEG_QUALITY (0.7)


def clip_frames(video: Path, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip, as RGB."""
    capture = cv2.VideoCapture(str(video))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = {round(i * (total - 1) / max(1, count - 1)) for i in range(count)}
    frames, index = [], 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index in wanted:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        index += 1
    capture.release()
    if not frames:
        raise SystemExit(f"cannot read {video}")
    return frames


def as_page_sends(frame: np.ndarray, max_side: int) -> np.ndarray:
    """The frame as the page sends it: scaled down (never up) to `max_side`, JPEG round trip."""
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        size = (round(w * scale), round(h * scale))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    settings = Settings.from_env(models_dir=args.models_dir, min_face_size=40)
    try:
        detector = MTCNN.from_settings(settings)
    except ModelMissingError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    frames = clip_frames(Path(args.data) / "video" / "facenet_pytorch_video.mp4", args.frames)
    import tensorflow as tf

    detector.detect(as_page_sends(frames[0], 640))  # warm-up: graph tracing is not per frame
    reference = [len(detector.detect(f)) for f in frames]
    results: dict[str, object] = {
        "machine": machine(tensorflow=tf.__version__), "frames": len(frames),
        "frame_size": f"{frames[0].shape[1]}x{frames[0].shape[0]}", "min_face": 40,
        "full_size_faces_per_frame": statistics.mean(reference),
    }
    for side in SIZES:
        counts, ms = [], []
        for frame in frames:
            sent = as_page_sends(frame, side)
            start = time.perf_counter()
            counts.append(len(detector.detect(sent)))
            ms.append((time.perf_counter() - start) * 1000)
        mean = statistics.mean(counts)
        results[f"side_{side}"] = {
            "faces_per_frame": mean,
            "ratio_to_full_size": round(mean / max(1e-9, statistics.mean(reference)), 3),
            "mtcnn_ms_median": round(statistics.median(ms), 1),
        }
    return report(results, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
