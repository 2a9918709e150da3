"""Embeddings of image files: raw photos (the main face is detected and aligned here) or the
crops `facelive align` made (aligned for the embedder from the landmarks in their manifest, no
detection needed). Embeddings are cached by file content, so a rerun costs next to nothing.

`facelive embed` writes them to an .npz: embeddings (N, D) float32 unit rows, files (N,) and
labels (N,) strings (label = the file's parent folder name), embedder (the embedder id).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelive.atomic import atomic_path
from facelive.recognition.pipeline import FaceEngine, pick_primary
from facelive.tools.align_dataset import read_manifest
from facelive.tools.errors import ToolError
from facelive.tools.evaluate_lfw import EmbeddingCache, pipeline_tag
from facelive.tools.progress import Progress
from facelive.vision.image import ImageError, read_image
from facelive.vision.mtcnn import Detection

# Images per detector / embedder call (see align_dataset.BATCH).
BATCH = 16


@dataclass
class Embedded:
    """files[i] has vectors[i] ((N, D) float32, unit rows); failed: file -> reason (unreadable,
    no face found); counts of how each embedding was made: cached, manifest (crop with known
    landmarks), detected, placed (a crop without a detected face, see embed_images)."""

    files: list[Path]
    vectors: np.ndarray
    failed: dict[Path, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def unreadable(self) -> dict[Path, str]:
        return {p: r for p, r in self.failed.items() if r.startswith("unreadable")}


class Manifests:
    """Finds the landmarks `facelive align` recorded for a crop: ROOT/aligned.json lists
    ROOT/<person>/<crop>.png, so a file's manifest sits two levels up."""

    def __init__(self) -> None:
        self._by_root: dict[Path, dict[str, Any] | None] = {}

    def detection(self, path: Path) -> Detection | None:
        root = path.parent.parent
        if root not in self._by_root:
            self._by_root[root] = read_manifest(root)
        manifest = self._by_root[root]
        if manifest is None:
            return None
        face = manifest.get("faces", {}).get(f"{path.parent.name}/{path.name}")
        if not face:
            return None
        try:
            box = np.asarray(face["box"], np.float32).reshape(4)
            landmarks = np.asarray(face["landmarks"], np.float32).reshape(5, 2)
        except (KeyError, TypeError, ValueError):
            raise ToolError(f"{root / 'aligned.json'}: broken entry for {path.name}") from None
        return Detection(box=box, score=float(face.get("score", 1.0)), landmarks=landmarks)

    def is_crop(self, path: Path) -> bool:
        """Whether the file lies in a folder `facelive align` made (looked up in detection)."""
        return self._by_root.get(path.parent.parent) is not None


@dataclass
class _Item:
    path: Path
    key: str
    detection: Detection | None  # from the manifest


def _cache_key(data: bytes, detection: Detection | None) -> str:
    digest = hashlib.sha1(data)
    if detection is not None:
        # The same crop aligned from other landmarks is another embedding.
        digest.update(detection.landmarks.tobytes())
    return digest.hexdigest()


def _chunks(items: Sequence[_Item], size: int) -> Iterator[list[_Item]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def embed_images(
    engine: FaceEngine,
    files: Sequence[Path],
    cache_dir: Path | None = None,
    workers: int = 2,
    crops: bool = False,
    label: str = "embed",
) -> Embedded:
    """Embed the main face of every file (the largest central one, pick_primary's rule).

    A crop listed in its folder's `aligned.json` is aligned from the recorded landmarks;
    any other file goes through detection. A file with no face found fails, unless `crops`
    is set (the files are face crops, made by another aligner): then it is aligned with the
    median face placement of the crops where a face was found, as all crops place the face
    alike; the same holds for a file in a folder `facelive align` made but missing from its
    manifest. Unreadable files fail. Nothing is raised for single files; see Embedded.failed."""
    manifests = Manifests()
    cache = EmbeddingCache(cache_dir, "batch-" + pipeline_tag(engine)) if cache_dir else None
    failed: dict[Path, str] = {}
    vectors: dict[Path, np.ndarray] = {}
    counts = {"cached": 0, "manifest": 0, "detected": 0, "placed": 0}
    todo: list[_Item] = []
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            failed[path] = f"unreadable: {exc.strerror or exc}"
            continue
        detection = manifests.detection(Path(path))
        key = _cache_key(data, detection)
        if cache is not None and key in cache.vectors:
            vectors[path] = cache.vectors[key]
            counts["cached"] += 1
        else:
            # Only the key is kept: the file is read again when its turn comes, so memory
            # does not grow with the data set.
            todo.append(_Item(Path(path), key, detection))

    settings = engine.settings
    placements: list[np.ndarray] = []  # where faces sit, relative to the image (see _relative)

    def run(batch: list[_Item]) -> list[tuple[_Item, np.ndarray | str | None]]:
        """(item, its vector | why it failed | None when no face was found) for a batch."""
        out: list[tuple[_Item, np.ndarray | str | None]] = []
        images: list[tuple[_Item, np.ndarray]] = []
        for item in batch:
            try:
                image = read_image(item.path, settings.max_image_pixels, settings.max_image_bytes)
                images.append((item, image))
            except ImageError as exc:
                out.append((item, f"unreadable: {exc}"))
        known = [(item, image, item.detection) for item, image in images
                 if item.detection is not None]
        if known:
            chips = np.stack([engine.embedder.align(image, det) for _, image, det in known])
            for (item, image, det), vector in zip(known, engine.embed_chips(chips), strict=True):
                placements.append(_relative(det, image.shape))
                out.append((item, vector))
        unknown = [(item, image) for item, image in images if item.detection is None]
        if unknown:
            faces = engine.primary_faces([image for _, image in unknown])
            for (item, image), face in zip(unknown, faces, strict=True):
                if face is not None:
                    placements.append(_relative(face.detection, image.shape))
                out.append((item, None if face is None else face.embedding))
        return out

    no_face: list[_Item] = []
    with Progress(len(todo), label) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        for results in pool.map(run, _chunks(todo, BATCH)):
            for item, result in results:
                bar.advance()
                if isinstance(result, str):
                    failed[item.path] = result
                elif result is None:
                    no_face.append(item)
                else:
                    vectors[item.path] = result
                    counts["manifest" if item.detection is not None else "detected"] += 1
                    if cache is not None:
                        cache.vectors[item.key] = result

    placeable = [item for item in no_face if crops or manifests.is_crop(item.path)]
    if placeable and not placements:
        # The other crops came from the cache: find where their faces sit on a sample.
        lost = {item.path for item in no_face} | set(failed)
        placements.extend(_sample_placements(engine, [p for p in files if p not in lost]))
    if placeable and placements:
        median = np.median(np.stack(placements), axis=0)
        placed: list[tuple[_Item, np.ndarray]] = []
        for item in placeable:  # read again: images are not held while the others run
            try:
                image = read_image(item.path, settings.max_image_pixels, settings.max_image_bytes)
            except ImageError as exc:
                failed[item.path] = f"unreadable: {exc}"
                continue
            placed.append((item, engine.embedder.align(image, _placed(median, image.shape))))
        if placed:
            embedded = engine.embed_chips(np.stack([chip for _, chip in placed]))
            for (item, _), vector in zip(placed, embedded, strict=True):
                vectors[item.path] = vector
                counts["placed"] += 1
    for item in no_face:
        if item.path not in vectors and item.path not in failed:
            failed[item.path] = "no face found"
    if cache is not None and counts["manifest"] + counts["detected"]:
        cache.save()
    kept = [p for p in files if p in vectors]
    dim = int(engine.embedder.dim)
    matrix = np.stack([vectors[p] for p in kept]) if kept else np.zeros((0, dim), np.float32)
    return Embedded(kept, matrix.astype(np.float32), failed, counts)


def _sample_placements(engine: FaceEngine, files: Sequence[Path], limit: int = 32) -> list:
    """Face placements (see _relative) of up to `limit` of `files` where a face is found."""
    settings = engine.settings
    out = []
    for path in files[:limit]:
        try:
            image = read_image(path, settings.max_image_pixels, settings.max_image_bytes)
        except ImageError:
            continue
        detections = engine.detect(image)
        index = pick_primary(detections, image.shape)
        if index is not None:
            out.append(_relative(detections[index], image.shape))
    return out


def _relative(detection: Detection, shape: tuple[int, ...]) -> np.ndarray:
    """(7, 2): box corners and the five landmarks as fractions of the image's width/height."""
    scale = np.array([shape[1], shape[0]], np.float32)
    return np.vstack([np.asarray(detection.box).reshape(2, 2), detection.landmarks]) / scale


def _placed(relative: np.ndarray, shape: tuple[int, ...]) -> Detection:
    points = relative * np.array([shape[1], shape[0]], np.float32)
    return Detection(box=points[:2].reshape(4).astype(np.float32), score=0.0,
                     landmarks=points[2:].astype(np.float32))


def save_embeddings(target: Path, embedded: Embedded, embedder: str) -> None:
    """Write embeddings, files, labels (parent folder names) and the embedder id to an .npz,
    atomically. Plain arrays only: it loads with np.load(..., allow_pickle=False)."""
    files = np.array([str(p) for p in embedded.files], dtype=np.str_)
    labels = np.array([Path(p).parent.name for p in embedded.files], dtype=np.str_)
    skipped = np.array([str(p) for p in embedded.failed], dtype=np.str_)
    reasons = np.array(list(embedded.failed.values()), dtype=np.str_)
    with (atomic_path(Path(target), suffix=".npz", cannot_create=ToolError) as tmp,
          open(tmp, "wb") as handle):
        np.savez(
            handle,
            embeddings=embedded.vectors,
            files=files,
            labels=labels,
            embedder=np.array(embedder),
            skipped_files=skipped,
            skipped_reasons=reasons,
            counts=np.array(json.dumps(embedded.counts)),
        )
