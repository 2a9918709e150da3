"""`facelive video` and `facelive identify` against face_recognition on the same frames: time
per frame and faces found (issue 17).

    python bench/clip_rate.py [--json] [--frames 101] [--models-dir D] [--data DIR]
                              [--no-face-recognition]

The first `--frames` frames of the pedestrian clip (facenet_pytorch_video.mp4, 1920x1080),
letterboxed to 640x480, written once as an mp4 (mp4v) and once as JPEG files (quality 95).
Each command's own work runs in a fresh process of its own (as a CLI run is), on a loaded
recognizer with an empty gallery: `video` is `annotate_video` (what `facelive video IN --json
OUT` calls: decoding, cuts, recognition, JSON), `identify` is `identify_files` (what
`facelive identify FILES --json` calls: reading each file, batches of 4, JSON-ready faces).
The clock starts after the models are loaded: the start-up (Python, TensorFlow, the models:
seconds, whose noise under load swamps the per-frame work) is left out of both alike. The
figure is that first run, `cold` as a user's is (it pays TensorFlow's one-off tracing and
kernels for each new input shape); a second run in the same process is reported as `warm`.
Each command runs `--repeats` times (3), in rounds, and the medians are reported: a cold run
of 101 frames lasts 2-4 s, and one run's ratio swung from 1.19 to 1.79 between two runs.
`video` runs at its defaults (the stream economy) and with everything every frame
(full_every = embed_every = 1), the like-for-like counterpart of `identify`, which must
judge every photo alone.
face_recognition 1.3 (HOG detector, upsample 1, then its dlib ResNet encodings: its documented
per-image pipeline) runs on the same RGB frames. Faces found: boxes over all frames (for
`video`, those detected in the frame, not carried).

Targets: video <= 1/20 of face_recognition's time per frame while finding >= 2x its faces;
identify within 1.3x of video's time per frame.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchutil import machine, report

REPO = Path(__file__).resolve().parents[1]
CLIP = "facenet_pytorch_video.mp4"
SIZE = (640, 480)


def letterboxed_frames(path: Path, count: int) -> list[np.ndarray]:
    """BGR frames scaled to fit 640x480, centred on black."""
    capture = cv2.VideoCapture(str(path))
    out = []
    try:
        while len(out) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            scale = min(SIZE[0] / w, SIZE[1] / h)
            small = cv2.resize(bgr, (round(w * scale), round(h * scale)),
                               interpolation=cv2.INTER_AREA)
            canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
            y, x = (SIZE[1] - small.shape[0]) // 2, (SIZE[0] - small.shape[1]) // 2
            canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
            out.append(canvas)
    finally:
        capture.release()
    if len(out) < 2:
        raise SystemExit(f"bench: cannot read {path}")
    return out


def write_inputs(frames: list[np.ndarray], folder: Path) -> tuple[Path, list[Path]]:
    video = folder / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, SIZE)
    jpegs = []
    for i, frame in enumerate(frames):
        writer.write(frame)
        path = folder / f"frame{i:04d}.jpg"
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        jpegs.append(path)
    writer.release()
    return video, jpegs


def timed(fn: Callable[[], Any], frames: int) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return round((time.perf_counter() - start) * 1000 / frames, 1), out


def one_command(kind: str, folder: Path, models_dir: str | None) -> dict[str, Any]:
    """One command's work, twice, in this (fresh) process: {ms_per_frame (the first, cold
    run), warm_ms_per_frame, faces[, embedded]}."""
    from facelive.cli.gallery_commands import identify_files
    from facelive.recognition.economy import EVERY_FRAME
    from facelive.recognition.recognizer import Recognizer
    from facelive.settings import Settings
    from facelive.tools.video import annotate_video

    jpegs = sorted(folder.glob("frame*.jpg"))
    settings = Settings.from_env(data_dir=folder / f"data-{kind}", models_dir=models_dir)
    times, found = [], {}
    with Recognizer.from_settings(settings) as recognizer:
        if kind == "video_every_frame":
            recognizer.economy = EVERY_FRAME
        for _ in range(2):
            if kind == "identify":
                ms, (listed, _) = timed(lambda: identify_files(
                    recognizer, [str(p) for p in jpegs], settings.max_image_pixels,
                    settings.max_image_bytes), len(jpegs))
                found = {"faces": sum(len(i["faces"]) for i in listed)}
            else:
                out = folder / f"{kind}.json"
                ms, _ = timed(lambda o=out: annotate_video(
                    recognizer, str(folder / "clip.mp4"), json_path=o,
                    err=open(os.devnull, "w")), len(jpegs))  # noqa: SIM115
                found = video_faces(out)
            times.append(ms)
    return {"ms_per_frame": times[0], "warm_ms_per_frame": times[1], **found}


KINDS = ("video", "video_every_frame", "identify")


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs of one command (fresh processes) as one: medians of the times, with every
    run's cold time listed; the counts (faces, embedded), which do not vary, from the first."""
    out = {**runs[0], "runs": len(runs),
           "cold_ms_per_frame_each": [r["ms_per_frame"] for r in runs]}
    for key in ("ms_per_frame", "warm_ms_per_frame"):
        out[key] = round(statistics.median(r[key] for r in runs), 1)
    return out


def video_faces(path: Path) -> dict[str, int]:
    payload = json.loads(path.read_text())
    faces = [f for frame in payload["frames"] for f in frame["faces"] if f["detected"]]
    return {"faces": len(faces), "embedded": sum(f["embedded"] for f in faces)}


def face_recognition_run(frames: list[np.ndarray]) -> dict[str, Any]:
    import face_recognition

    times, faces = [], 0
    for bgr in frames:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        start = time.perf_counter()
        locations = face_recognition.face_locations(rgb)
        face_recognition.face_encodings(rgb, locations)
        times.append((time.perf_counter() - start) * 1000)
        faces += len(locations)
    return {"ms_per_frame": round(statistics.fmean(times), 1),
            "ms_per_frame_median": round(statistics.median(times), 1), "faces": faces}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh-process runs of each command (medians are reported)")
    parser.add_argument("--no-face-recognition", action="store_true",
                        help="leave out the face_recognition run (when it is not installed)")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_command(args.one[0], Path(args.one[1]), args.models_dir)))
        return 0
    frames = letterboxed_frames(Path(args.data) / "video" / CLIP, args.frames)
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {"machine": machine(), "frames": len(frames)}
    with tempfile.TemporaryDirectory(prefix="facelive-clip-") as tmp:
        folder = Path(tmp)
        write_inputs(frames, folder)
        runs: dict[str, list[dict[str, Any]]] = {}
        # Rounds of the three commands in turn, so that a change of load touches all alike.
        for _ in range(args.repeats):
            for kind in KINDS:
                command = [sys.executable, __file__, "--one", kind, str(folder)]
                if args.models_dir:
                    command += ["--models-dir", args.models_dir]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"bench: {kind} failed:\n{done.stderr[-3000:]}")
                runs.setdefault(kind, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
        for kind in KINDS:
            results[kind] = median_run(runs[kind])
    if not args.no_face_recognition:
        results["face_recognition"] = face_recognition_run(frames)
    load_after = os.getloadavg()[0]
    results["load_average_1min"] = {"before": round(load_before, 2),
                                    "after": round(load_after, 2)}
    video_ms = results["video"]["ms_per_frame"]
    ratios = {"identify_vs_video": round(results["identify"]["ms_per_frame"] / video_ms, 2),
              "identify_vs_video_every_frame": round(
                  results["identify"]["ms_per_frame"]
                  / results["video_every_frame"]["ms_per_frame"], 2)}
    if "face_recognition" in results:
        fr = results["face_recognition"]
        ratios["video_vs_face_recognition"] = round(video_ms / fr["ms_per_frame"], 3)
        ratios["faces_video_vs_face_recognition"] = round(
            results["video"]["faces"] / max(1, fr["faces"]), 2)
    results["ratios"] = ratios
    return report(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
