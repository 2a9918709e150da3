"""Embedding image files for the tools, the one way: each file's main face (the largest central
one, pick_primary's rule), cached by file content so that a rerun, or another command on the
same files, costs next to nothing. `facelive embed`, `train`, `classify`, `evaluate-lfw`,
`calibrate` and the open-set evaluation all come through here.

Raw photos are detected and aligned here; a crop that `facelive align` made is aligned from the
landmarks in its folder's manifest (no detection). A file where no face is found can be
embedded at the median face placement of the files where one was (crops, and LFW's centred
images, all place the face alike): `embed_images(..., crops=True)` and `embed_files` do.

The cache (`embeddings-TAG.npz` in the cache dir) is one per pipeline (pipeline_tag: embedder,
alignment, detector settings). Its keys: the sha1 of the file's bytes (and of the manifest's
landmarks, which change the embedding); a vector made at the median placement is kept under
its own key, so that it is reused only where placing is asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelive.atomic import PRIVATE, atomic_path
from facelive.recognition.pipeline import FaceEngine, pick_primary
from facelive.tools.align_dataset import read_manifest
from facelive.tools.errors import ToolError
from facelive.tools.progress import Progress
from facelive.vision.image import ImageError, read_image
from facelive.vision.mtcnn import Detection

# Images per detector / embedder call (see align_dataset.BATCH).
BATCH = 16
# Where a face sits in a centred portrait, relative to the image's width and height (box
# corners, then the five landmarks): the placement when no file of a run shows a face.
CENTRED = np.array(
    [[0.3, 0.3], [0.7, 0.7], [0.4, 0.45], [0.6, 0.45], [0.5, 0.55], [0.42, 0.65], [0.58, 0.65]],
    np.float32,
)


class EmbeddingCache:
    """Embeddings keyed by content (see the module docstring), for one pipeline (`tag`);
    saved atomically as .npz. A damaged file is only a cache: it is rebuilt."""

    def __init__(self, directory: Path, tag: str) -> None:
        self.path = directory / f"embeddings-{tag}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                self.vectors = {}

    def save(self) -> None:
        if not self.vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors))
        vectors = np.stack(list(self.vectors.values()))
        with atomic_path(self.path, suffix=".npz", mode=PRIVATE) as tmp:
            np.savez(tmp, keys=keys, vectors=vectors)


def pipeline_tag(engine: FaceEngine) -> str:
    """Identifies everything that changes an embedding: embedder, alignment, detector settings."""
    from facelive.vision import align

    s = engine.settings
    recipe = (
        f"{getattr(engine.embedder, 'vector_recipe', engine.embedder.recipe)}|"
        f"{align.DLIB_TEMPLATE_150.tobytes().hex()}|"
        f"{align.DLIB_TEMPLATE_WEIGHTS.tobytes().hex()}|{s.min_face_size}|"
        f"{s.mtcnn_thresholds}|{s.pyramid_factor}|{align.FACENET_MARGIN}"
    )
    return f"{engine.embedder_name}-{hashlib.sha1(recipe.encode()).hexdigest()[:12]}"


@dataclass
class Embedded:
    """files[i] has vectors[i] ((N, D) float32, unit rows); failed: file -> reason (unreadable,
    no face found); counts of how each embedding was made: cached, manifest (crop with known
    landmarks), detected, placed (no face found: the median placement, see embed_images);
    placed_files: those last ones, cached or not."""

    files: list[Path]
    vectors: np.ndarray
    failed: dict[Path, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    placed_files: list[Path] = field(default_factory=list)

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


def _placed_key(key: str) -> str:
    return f"placed:{key}"


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
    fallback: np.ndarray | None = None,
) -> Embedded:
    """Embed the main face of every file.

    A crop listed in its folder's `aligned.json` is aligned from the recorded landmarks;
    any other file goes through detection. A file with no face found fails, unless `crops`
    is set (the files are face crops, made by another aligner, or centred portraits): then it
    is aligned with the median face placement of the files where a face was found, or at
    `fallback` ((7, 2) relative placement, see _relative) when there is none; the same holds
    for a file in a folder `facelive align` made but missing from its manifest. Unreadable
    files fail. Nothing is raised for single files; see Embedded.failed."""
    manifests = Manifests()
    cache = EmbeddingCache(cache_dir, pipeline_tag(engine)) if cache_dir else None
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

    def read(path: Path) -> np.ndarray:
        return read_image(path, settings.max_image_pixels, settings.max_image_bytes)

    def run(batch: list[_Item]) -> list[tuple[_Item, np.ndarray | str | None]]:
        """(item, its vector | why it failed | None when no face was found) for a batch."""
        out: list[tuple[_Item, np.ndarray | str | None]] = []
        images: list[tuple[_Item, np.ndarray]] = []
        for item in batch:
            try:
                images.append((item, read(item.path)))
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
    made = 0
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
                        made += 1

    placeable = [item for item in no_face if crops or manifests.is_crop(item.path)]
    placed_files: list[Path] = []
    if cache is not None:
        for item in placeable:
            cached = cache.vectors.get(_placed_key(item.key))
            if cached is not None:
                vectors[item.path] = cached
                placed_files.append(item.path)
        placeable = [item for item in placeable if item.path not in vectors]
    if placeable and not placements:
        # The other files came from the cache: find where their faces sit on a sample.
        lost = {item.path for item in no_face} | set(failed)
        placements.extend(_sample_placements(engine, [p for p in files if p not in lost]))
    if placeable and (placements or fallback is not None):
        median = np.median(np.stack(placements), axis=0) if placements else fallback
        assert median is not None
        placed: list[tuple[_Item, np.ndarray]] = []
        for item in placeable:  # read again: images are not held while the others run
            try:
                image = read(item.path)
            except ImageError as exc:
                failed[item.path] = f"unreadable: {exc}"
                continue
            placed.append((item, engine.embedder.align(image, _placed(median, image.shape))))
        if placed:
            embedded = engine.embed_chips(np.stack([chip for _, chip in placed]))
            for (item, _), vector in zip(placed, embedded, strict=True):
                vectors[item.path] = vector
                placed_files.append(item.path)
                counts["placed"] += 1
                if cache is not None:
                    cache.vectors[_placed_key(item.key)] = vector
                    made += 1
    for item in no_face:
        if item.path not in vectors and item.path not in failed:
            failed[item.path] = "no face found"
    if cache is not None and made:
        cache.save()
    kept = [p for p in files if p in vectors]
    dim = int(engine.embedder.dim)
    matrix = np.stack([vectors[p] for p in kept]) if kept else np.zeros((0, dim), np.float32)
    return Embedded(kept, matrix.astype(np.float32), failed, counts, placed_files)


def embed_files(
    engine: FaceEngine,
    files: Sequence[Path],
    cache_dir: Path | None = None,
    label: str = "embedding",
    workers: int = 2,
) -> tuple[dict[Path, np.ndarray], dict[str, Any]]:
    """Embed the main face of every file of a centred data set (LFW): a file with no face
    found is embedded at the median placement of the others (see embed_images) and counted.

    Returns ({path: unit vector}, stats) where stats has images (how many), no_face and
    unreadable (lists of paths as str)."""
    embedded = embed_images(engine, files, cache_dir, workers, crops=True, label=label,
                            fallback=CENTRED)
    vectors = dict(zip(embedded.files, embedded.vectors, strict=True))
    stats: dict[str, Any] = {
        "images": len(files),
        "no_face": [str(p) for p in embedded.placed_files],
        "unreadable": [str(p) for p in embedded.unreadable()],
    }
    return vectors, stats


def _sample_placements(
    engine: FaceEngine, files: Sequence[Path], limit: int = 32
) -> list[np.ndarray]:
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
