"""`facelive evaluate-lfw`: verification accuracy on LFW by the standard 10-fold protocol.

Each image is read, its main face detected and aligned by our MTCNN, and embedded; embeddings
are cached by file content so a rerun (or another command on the same files) costs nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.atomic import PRIVATE, atomic_path
from facelive.recognition.pipeline import FaceEngine, pick_primary
from facelive.recognition.verification import ten_fold
from facelive.tools.progress import Progress
from facelive.vision.image import ImageError, read_image
from facelive.vision.mtcnn import Detection


@dataclass(frozen=True)
class Pair:
    file_x: Path
    file_y: Path
    same: bool
    fold: int


def read_pairs(lfw_dir: Path, pairs_file: Path, per_fold: int | None = None) -> list[Pair]:
    """Parse LFW's pairs.txt (header `folds n`, then per fold n matched and n mismatched).

    per_fold: keep only the first per_fold/2 matched and mismatched pairs of every fold (a
    subset that keeps the 10-fold structure).
    """
    lines = pairs_file.read_text().split("\n")
    try:
        n_folds, n = (int(v) for v in lines[0].split())
    except ValueError:
        raise ValueError(f"{pairs_file}: first line must be '<folds> <pairs per half>'") from None

    def image(name: str, number: str) -> Path:
        return lfw_dir / name / f"{name}_{int(number):04d}.jpg"

    pairs: list[Pair] = []
    rows = [line.split() for line in lines[1:] if line.strip()]
    if len(rows) != 2 * n * n_folds:
        raise ValueError(f"{pairs_file}: expected {2 * n * n_folds} pairs, found {len(rows)}")
    keep = n if per_fold is None else max(per_fold // 2, 1)
    for fold in range(n_folds):
        block = rows[2 * n * fold : 2 * n * (fold + 1)]
        for row in block[:keep]:
            pairs.append(Pair(image(row[0], row[1]), image(row[0], row[2]), True, fold))
        for row in block[n : n + keep]:
            pairs.append(Pair(image(row[0], row[1]), image(row[2], row[3]), False, fold))
    return pairs


class EmbeddingCache:
    """Embeddings keyed by the sha1 of the image file's bytes, for one embedder and one
    alignment recipe (`tag`); saved atomically as .npz."""

    def __init__(self, directory: Path, tag: str) -> None:
        self.path = directory / f"embeddings-{tag}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                self.vectors = {}  # a damaged cache is only a cache: rebuild it

    def save(self) -> None:
        if not self.vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors))
        vectors = np.stack(list(self.vectors.values()))
        with atomic_path(self.path, suffix=".npz", mode=PRIVATE) as tmp:
            np.savez(tmp, keys=keys, vectors=vectors)


def _file_key(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def pipeline_tag(engine: FaceEngine) -> str:
    """Identifies everything that changes an embedding: embedder, alignment, detector settings."""
    from facelive.vision import align

    s = engine.settings
    recipe = (
        f"{engine.embedder.recipe}|{align.DLIB_TEMPLATE_150.tobytes().hex()}|"
        f"{align.DLIB_TEMPLATE_WEIGHTS.tobytes().hex()}|{s.min_face_size}|"
        f"{s.mtcnn_thresholds}|{s.pyramid_factor}|{align.FACENET_MARGIN}"
    )
    return f"{engine.embedder_name}-{hashlib.sha1(recipe.encode()).hexdigest()[:12]}"


def embed_files(
    engine: FaceEngine,
    files: Sequence[Path],
    cache: EmbeddingCache | None = None,
    label: str = "embedding",
    workers: int = 2,
) -> tuple[dict[Path, np.ndarray], dict[str, Any]]:
    """Embed the main face of every file. A file with no face found gets the median landmark
    placement of the files that had one (LFW images are centred), and is counted.

    Returns ({path: unit vector}, stats) where stats counts no_face and unreadable files.
    """
    keys = {path: _file_key(path) for path in files}
    todo = [p for p in files if cache is None or keys[p] not in cache.vectors]
    stats: dict[str, Any] = {"images": len(files), "no_face": [], "unreadable": []}
    found: dict[Path, tuple[np.ndarray, Detection | None]] = {}

    def detect(path: Path) -> tuple[Path, np.ndarray | None, Detection | None]:
        try:
            image = read_image(path)
        except ImageError:
            return path, None, None
        detections = engine.detect(image)
        index = pick_primary(detections, image.shape)
        return path, image, None if index is None else detections[index]

    vectors: dict[Path, np.ndarray] = {}
    with Progress(len(todo), label) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        batch: list[tuple[Path, np.ndarray]] = []
        for path, image, det in pool.map(detect, todo):
            bar.advance()
            if image is None:
                stats["unreadable"].append(str(path))
                continue
            if det is None:
                found[path] = (image, None)
                continue
            found[path] = (image, det)
            batch.append((path, engine.embedder.align(image, det)))
            if len(batch) >= 32:
                _flush(engine, batch, vectors)
        _flush(engine, batch, vectors)

    missing = [p for p, (_, det) in found.items() if det is None]
    if missing:
        detected = [(img.shape, det) for img, det in found.values() if det is not None]
        fallback = _median_placement(detected)
        for path in missing:
            image, _ = found[path]
            stats["no_face"].append(str(path))
            det = _placed(fallback, image.shape) if fallback is not None else _centre(image.shape)
            vectors[path] = engine.embed_chips(engine.embedder.align(image, det)[None])[0]

    if cache is not None:
        for path, vector in vectors.items():
            cache.vectors[keys[path]] = vector
        cache.save()
        vectors = {p: cache.vectors[keys[p]] for p in files if keys[p] in cache.vectors}
    return vectors, stats


def _flush(engine: FaceEngine, batch: list, vectors: dict) -> None:
    if batch:
        embedded = engine.embed_chips(np.stack([chip for _, chip in batch]))
        for (path, _), vector in zip(batch, embedded, strict=True):
            vectors[path] = vector
        batch.clear()


def _median_placement(detected: list[tuple[tuple[int, ...], Detection]]) -> np.ndarray | None:
    """Median box and landmarks relative to the image size: (7, 2) rows box corners + 5 points."""
    if not detected:
        return None
    rel = []
    for shape, det in detected:
        scale = np.array([shape[1], shape[0]], np.float32)
        rel.append(np.vstack([det.box.reshape(2, 2), det.landmarks]) / scale)
    return np.median(np.stack(rel), axis=0)


def _placed(rel: np.ndarray, shape: tuple[int, ...]) -> Detection:
    pts = rel * np.array([shape[1], shape[0]], np.float32)
    return Detection(box=pts[:2].reshape(4).astype(np.float32), score=0.0,
                     landmarks=pts[2:].astype(np.float32))


def _centre(shape: tuple[int, ...]) -> Detection:
    rel = np.array(
        [[0.3, 0.3], [0.7, 0.7], [0.4, 0.45], [0.6, 0.45], [0.5, 0.55], [0.42, 0.65],
         [0.58, 0.65]], np.float32)
    return _placed(rel, shape)


def evaluate_lfw(
    engine: FaceEngine,
    lfw_dir: Path,
    pairs_file: Path,
    cache_dir: Path | None = None,
    per_fold: int | None = None,
) -> dict[str, Any]:
    """Run the protocol; returns the JSON-ready result."""
    started = time.monotonic()
    pairs = read_pairs(lfw_dir, pairs_file, per_fold)
    missing = sorted({str(p) for pair in pairs for p in (pair.file_x, pair.file_y)
                      if not p.is_file()})
    if missing:
        raise FileNotFoundError(f"{len(missing)} pair images are missing, e.g. {missing[0]}")
    files = sorted({p for pair in pairs for p in (pair.file_x, pair.file_y)})
    cache = EmbeddingCache(cache_dir, pipeline_tag(engine)) if cache_dir else None
    vectors, stats = embed_files(engine, files, cache, label="lfw")
    if stats["unreadable"]:
        raise ImageError(f"unreadable LFW images: {stats['unreadable'][:3]}")
    distances = np.array(
        [np.linalg.norm(vectors[p.file_x] - vectors[p.file_y]) for p in pairs]
    )
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    report = ten_fold(distances, same, folds)
    extra: dict[str, Any] = {}
    from facelive.vision.facenet_embedders import FusedEmbedder

    if isinstance(engine.embedder, FusedEmbedder):
        # The fused embedder: its weight is refitted on each split's training folds.
        from facelive.tools.fusion import fused_ten_fold

        x = np.stack([vectors[p.file_x] for p in pairs])
        y = np.stack([vectors[p.file_y] for p in pairs])
        (ax, bx), (ay, by) = engine.embedder.parts(x), engine.embedder.parts(y)
        fusion = fused_ten_fold(((ax - ay) ** 2).sum(1), ((bx - by) ** 2).sum(1), same, folds)
        extra = {"shipped_weight": engine.embedder.weight,
                 "shipped_weight_accuracy": round(report.accuracy, 5),
                 "fold_weights": list(fusion.weights)}
        report = fusion.report
    return {
        "embedder": engine.embedder_name,
        "accuracy": round(report.accuracy, 5),
        "accuracy_std": round(report.accuracy_std, 5),
        "val_at_far_1e-3": round(report.val_at_far_1e3, 5),
        "val_std": round(report.val_std, 5),
        "threshold": round(report.threshold, 4),
        "pairs": len(pairs),
        "images": len(files),
        "no_face": len(stats["no_face"]),
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }
