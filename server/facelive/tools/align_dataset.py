"""`facelive align`: cut the main face out of every image of a folder-per-person data set.

The crop is facenet's `align_dataset_mtcnn` recipe: the detector's box widened by margin/2 on
every side (in source pixels, clipped to the image), resized to image_size x image_size, saved
as PNG under OUT_DIR/<person>/<stem>.png. Where several faces are found, the largest central
one is kept (pipeline.pick_primary, the same rule).

Besides the crops, OUT_DIR gets
- `aligned.json`, the manifest: the recipe, and for every crop the face's box and five
  landmarks in crop pixels, so later steps (embed, train, classify) align the crop for the
  embedder without detecting again, and know the folder holds crops;
- `align_report.txt`: the source images where no face was found or that could not be read.

Resumable: a crop that exists and is in the manifest is not redone, nor is an image already
reported as failed. Every file is written under a temporary name and renamed, and the manifest
is saved as the run goes, so an interrupted run leaves only finished files behind.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelive.atomic import atomic_path, atomic_write
from facelive.recognition.pipeline import FaceEngine, pick_primary
from facelive.settings import Settings
from facelive.tools.dataset import ImageClass, list_dataset
from facelive.tools.errors import ToolError
from facelive.tools.progress import Progress
from facelive.vision.align import crop_region
from facelive.vision.image import ImageError, read_image

MANIFEST = "aligned.json"
REPORT = "align_report.txt"
LOCK = ".align.lock"
FORMAT = "facelive-aligned/1"
# Images per detector call: MTCNN shares its network calls across a batch (same-size images
# share P-Net too), which on LFW is ~2-3x faster per image than one at a time.
BATCH = 16
SAVE_EVERY_S = 10.0


@dataclass(frozen=True)
class Job:
    """One source image and where its crop goes; `key` is the crop's path relative to OUT_DIR
    ("Person/stem.png") and `source_key` the source's relative to RAW_DIR."""

    source: Path
    target: Path
    key: str
    source_key: str


@dataclass(frozen=True)
class Aligned:
    """What happened to one job: box (4,) and landmarks (5, 2) in crop pixels, or error."""

    job: Job
    box: list[float] | None = None
    landmarks: list[list[float]] | None = None
    score: float = 0.0
    error: str | None = None


@dataclass
class Manifest:
    """The contents of aligned.json (see the module docstring)."""

    image_size: int
    margin: int
    detector: dict[str, Any]
    faces: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "image_size": self.image_size,
            "margin": self.margin,
            "detector": self.detector,
            "faces": dict(sorted(self.faces.items())),
            "failed": dict(sorted(self.failed.items())),
        }

    def save(self, out_dir: Path) -> None:
        atomic_write(out_dir / MANIFEST, json.dumps(self.to_json(), ensure_ascii=False),
                     cannot_create=ToolError)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of an aligned data set, or None when `folder` has none (not our crops).
    ToolError when it exists but cannot be used."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolError(f"{path}: unreadable alignment manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ToolError(f"{path}: not a {FORMAT} manifest")
    return data


def _align_batch(engine: FaceEngine, jobs: Sequence[Job], size: int, margin: int) -> list[Aligned]:
    """Read, detect, crop and write one batch of jobs."""
    results: dict[int, Aligned] = {}
    images: list[tuple[int, np.ndarray]] = []
    for i, job in enumerate(jobs):
        try:
            images.append((i, read_image(job.source)))
        except ImageError as exc:
            results[i] = Aligned(job, error=f"unreadable: {exc}")
    detections = engine.detector.detect_batch([image for _, image in images]) if images else []
    for (i, image), dets in zip(images, detections, strict=True):
        job = jobs[i]
        index = pick_primary(dets, image.shape)
        if index is None:
            results[i] = Aligned(job, error="no face found")
            continue
        det = dets[index]
        try:
            x1, y1, x2, y2 = crop_region(det.box, margin, image.shape)
        except ValueError as exc:
            results[i] = Aligned(job, error=str(exc))
            continue
        crop = cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
        # The crop is stretched independently along x and y when clipping made it non-square;
        # the landmarks follow the same mapping.
        scale = np.array([size / (x2 - x1), size / (y2 - y1)], np.float64)
        offset = np.array([x1, y1], np.float64)
        box = ((det.box.reshape(2, 2) - offset) * scale).reshape(4)
        landmarks = (det.landmarks - offset) * scale
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            results[i] = Aligned(job, error="could not encode the crop")
            continue
        try:
            with atomic_path(job.target, cannot_create=ToolError) as tmp:
                tmp.write_bytes(encoded.tobytes())
        except OSError as exc:
            raise ToolError(f"{job.target}: cannot write: {exc.strerror or exc}") from None
        results[i] = Aligned(
            job,
            box=[round(float(v), 2) for v in box],
            landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in landmarks],
            score=round(float(det.score), 4),
        )
    return [results[i] for i in range(len(jobs))]


def plan_jobs(
    classes: Sequence[ImageClass], out_dir: Path, manifest: Manifest
) -> tuple[list[Job], int, int]:
    """(jobs to run, crops already done, images already reported as failed)."""
    jobs: list[Job] = []
    done = failed = 0
    seen: dict[str, str] = {}
    for image_class in classes:
        for source in image_class.paths:
            key = f"{image_class.folder}/{source.stem}.png"
            source_key = f"{image_class.folder}/{source.name}"
            if key in seen:
                # a.jpg and a.png would both become a.png: keep the first, report the other.
                manifest.failed[source_key] = f"crop name {key} already taken by {seen[key]}"
                failed += 1
                continue
            seen[key] = source_key
            if key in manifest.faces and (out_dir / key).is_file():
                done += 1
            elif source_key in manifest.failed:
                failed += 1
            else:
                jobs.append(Job(source, out_dir / key, key, source_key))
    return jobs, done, failed


def _batches(jobs: Sequence[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield list(jobs[start : start + size])


def align_dataset(
    settings: Settings,
    raw_dir: Path,
    out_dir: Path,
    image_size: int = 160,
    margin: int = 32,
    workers: int = 2,
    engine: FaceEngine | None = None,
) -> dict[str, Any]:
    """Align RAW_DIR into OUT_DIR (see the module docstring). Returns a JSON-ready summary:
    images, aligned (this run), already_done, failed (all, with reasons), seconds,
    images_per_s (this run's images, aligned or failed, over its wall time, start-up
    included), workers."""
    started = time.monotonic()
    if not 16 <= image_size <= 1024:
        raise ToolError(f"--image-size must be 16..1024, got {image_size}")
    if not 0 <= margin <= 1024:
        raise ToolError(f"--margin must be 0..1024, got {margin}")
    if workers < 1:
        raise ToolError(f"--workers must be >= 1, got {workers}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if raw_dir.resolve() == out_dir.resolve():
        raise ToolError("OUT_DIR must differ from RAW_DIR")
    classes = list_dataset(raw_dir)  # before anything is written: an empty RAW_DIR fails
    detector = {
        "min_face_size": settings.min_face_size,
        "thresholds": list(settings.mtcnn_thresholds),
        "pyramid_factor": settings.pyramid_factor,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"{out_dir}: cannot create: {exc.strerror or exc}") from None
    with _exclusive(out_dir):
        manifest = Manifest(image_size, margin, detector)
        existing = read_manifest(out_dir)
        if existing is not None:
            if (existing.get("image_size"), existing.get("margin")) != (image_size, margin):
                raise ToolError(
                    f"{out_dir} holds crops made with --image-size "
                    f"{existing.get('image_size')} --margin {existing.get('margin')}; use those "
                    "or another OUT_DIR"
                )
            manifest.faces = dict(existing.get("faces", {}))
            manifest.failed = dict(existing.get("failed", {}))
        jobs, done, failed_before = plan_jobs(classes, out_dir, manifest)
        return _run(settings, raw_dir, out_dir, manifest, jobs, done, failed_before, workers,
                    engine, started)


@contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """One align at a time per OUT_DIR: two would both write the manifest, and the last
    writer would forget the other's crops (which a later run would then redo)."""
    with open(out_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ToolError(f"{out_dir}: another `facelive align` is writing here") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(
    settings: Settings,
    raw_dir: Path,
    out_dir: Path,
    manifest: Manifest,
    jobs: list[Job],
    done: int,
    failed_before: int,
    workers: int,
    engine: FaceEngine | None,
    started: float,
) -> dict[str, Any]:
    image_size, margin = manifest.image_size, manifest.margin
    processed = failed_now = 0
    last_save = time.monotonic()
    local = engine if engine is not None else FaceEngine(settings)
    # Threads sharing one engine, not processes: the engine is thread-safe, TensorFlow runs
    # its ops without the GIL, and one process loads and traces the models once. Measured on
    # the 2-core machine, two processes spent longer starting (importing TensorFlow, loading
    # and tracing the models twice) than they saved (docs/batch.md).
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        results = pool.map(
            lambda batch: _align_batch(local, batch, image_size, margin), _batches(jobs, BATCH)
        )
        with Progress(len(jobs), "align") as bar:
            for batch in results:
                for result in batch:
                    _record(manifest, result)
                    failed_now += result.error is not None
                processed += len(batch)
                bar.advance(len(batch))
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    manifest.save(out_dir)
                    last_save = time.monotonic()
    finally:
        # Whatever finished is kept (and skipped next time), even when interrupted.
        pool.shutdown(wait=True, cancel_futures=True)
        manifest.save(out_dir)
    _write_report(out_dir, raw_dir, manifest)
    seconds = time.monotonic() - started
    return {
        "images": len(jobs) + done + failed_before,
        "aligned": processed - failed_now,
        "already_done": done,
        "failed": dict(manifest.failed),
        "seconds": round(seconds, 1),
        "images_per_s": round(processed / seconds, 2) if processed else 0.0,
        "workers": workers,
    }


def _record(manifest: Manifest, result: Aligned) -> None:
    job = result.job
    if result.error is not None:
        manifest.failed[job.source_key] = result.error
        manifest.faces.pop(job.key, None)
    else:
        manifest.faces[job.key] = {
            "source": job.source_key,
            "box": result.box,
            "landmarks": result.landmarks,
            "score": result.score,
        }


def _write_report(out_dir: Path, raw_dir: Path, manifest: Manifest) -> None:
    lines = [f"# images of {raw_dir} left out of {out_dir}: <image>\t<reason>"]
    lines += [f"{source}\t{reason}" for source, reason in sorted(manifest.failed.items())]
    atomic_write(out_dir / REPORT, "\n".join(lines) + "\n", cannot_create=ToolError)
