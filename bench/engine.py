"""Engine benchmark: MTCNN, alignment and embedding, median milliseconds.

    python bench/engine.py [--json] [--repeat N] [--models-dir D] [--data DIR]

Inputs are real: a 640x480 frame with one face (a frame of the talking-head video, letterboxed),
and the 6-face group photo. Needs FACELIVE_TEST_DATA (../shared/data) and fetched models.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchutil import machine, report, timings_ms  # noqa: E402
from facelive.models import store  # noqa: E402
from facelive.models.store import ModelMissingError  # noqa: E402
from facelive.settings import Settings  # noqa: E402
from facelive.vision import align  # noqa: E402
from facelive.vision.embedder_choice import create_embedder  # noqa: E402
from facelive.vision.embedders import DlibResNetEmbedder  # noqa: E402
from facelive.vision.image import read_image  # noqa: E402
from facelive.vision.mtcnn import MTCNN  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    return timings_ms(fn, repeat)["median"]


def frame_640x480(data: Path) -> np.ndarray:
    """The first frame of the talking-head clip, scaled to 480x480 and centred on 640x480."""
    capture = cv2.VideoCapture(str(data / "video" / "WDA_AlexandriaOcasioCortez_000.mp4"))
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise SystemExit("cannot read the benchmark video")
    face = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (480, 480))
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[:, 80:560] = face
    return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    settings = Settings.from_env(models_dir=args.models_dir, min_face_size=40)
    data = Path(args.data)
    try:
        detector = MTCNN.from_settings(settings)
    except ModelMissingError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    frame = frame_640x480(data)
    group = read_image(data / "group" / "multiface.jpg")
    import tensorflow as tf

    results: dict[str, object] = {"machine": machine(tensorflow=tf.__version__),
                                  "repeat": args.repeat}
    dets = detector.detect(frame)
    results["mtcnn_640x480_faces"] = len(dets)
    results["mtcnn_640x480_ms"] = median_ms(lambda: detector.detect(frame), args.repeat)
    results["mtcnn_multiface_faces"] = len(detector.detect(group))
    results["mtcnn_multiface_1200x630_ms"] = median_ms(lambda: detector.detect(group),
                                                        args.repeat)
    det = dets[0]
    results["align_dlib_chip_ms"] = median_ms(
        lambda: align.dlib_chip(frame, det.landmarks), args.repeat * 10)
    results["align_facenet_crop_ms"] = median_ms(
        lambda: align.facenet_crop(frame, det.box), args.repeat * 10)

    embed: dict[str, object] = {}
    embedders: list[tuple[str, Callable[[], object]]] = [
        ("dlib-resnet", lambda: DlibResNetEmbedder(
            settings.models_dir / "dlib/dlib_face_recognition_resnet_model_v1.dat")),
    ]
    for choice in ("facenet", "fused"):
        try:
            store.require_embedder(settings.models_dir, choice)
        except ModelMissingError:
            embed[choice] = "not measured: weights not present (facelive models fetch)"
            continue
        embedders.append((choice, lambda c=choice: create_embedder(
            dataclasses.replace(settings, embedder=c))))
    for name, make in embedders:
        embedder = make()
        chip = embedder.align(frame, det)
        one = chip[None]
        eight = np.repeat(chip[None], 8, axis=0)
        b1 = median_ms(lambda e=embedder, x=one: e.embed(x), args.repeat)
        b8 = median_ms(lambda e=embedder, x=eight: e.embed(x), args.repeat)
        embed[name] = {"batch1_ms": b1, "batch8_ms": b8, "batch8_ms_per_face": round(b8 / 8, 2)}
        net = getattr(embedder, "_net", None)
        if net is not None:
            # The bare network, without the mirror pass dlib-resnet adds (docs/alignment.md).
            import tensorflow as tf

            chips = tf.constant(eight, tf.float32)
            n8 = median_ms(lambda n=net, x=chips: n(x).numpy(), args.repeat)
            embed[name]["network_batch8_ms_per_chip"] = round(n8 / 8, 2)
    results["embed"] = embed

    return report(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
