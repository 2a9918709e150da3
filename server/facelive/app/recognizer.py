"""What the live worker calls: a recognizer turns RGB frames into JSON-ready faces.

Any callable `(frames) -> faces` works, where frames is a list of (H, W, 3) uint8 RGB arrays and
faces has one list per frame of dicts shaped by `protocol.face_json`. A recognizer may also
offer, read when present:
    embedder_name: str          shown by /api/health and the start-up banner
    gallery_size: int           shown by /api/health (0 when absent)
    last_timings: dict          {detect, embed, knn} in ms of the latest call
    warm_up() -> None           run once before serving, so the first frame is not slow

`EngineRecognizer` is the one used until the gallery's `Recognizer` exists: it detects and
embeds through the pipeline, and calls every face "unknown".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from facelive.app.protocol import face_json
from facelive.settings import Settings

Faces = list[list[dict[str, Any]]]


class Recognizer(Protocol):
    def __call__(self, frames: Sequence[np.ndarray]) -> Faces: ...


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class EngineRecognizer:
    """FaceEngine -> faces with name "unknown". Embeddings are computed (and dropped) so the
    live timings already include the embedder; the gallery's KNN will use them."""

    gallery_size = 0

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.last_timings: dict[str, float] = {}

    @property
    def embedder_name(self) -> str:
        return str(self.engine.embedder_name)

    def __call__(self, frames: Sequence[np.ndarray]) -> Faces:
        start = time.perf_counter()
        analyzed = self.engine.analyze_batch(list(frames), embed=False)  # detect + align
        detect_ms = _ms(start)
        start = time.perf_counter()
        chips = [face.chip for faces in analyzed for face in faces]
        if chips:
            self.engine.embed_chips(np.stack(chips))
        self.last_timings = {"detect": detect_ms, "embed": _ms(start), "knn": 0.0}
        return [
            [face_json(f.detection.box, f.detection.score, f.detection.landmarks)
             for f in faces]
            for faces in analyzed
        ]

    def warm_up(self, width: int = 480, height: int = 360) -> None:
        """Trace the detector for a typical frame size and the embedder for one chip."""
        self.engine.analyze_batch([np.zeros((height, width, 3), np.uint8)], embed=False)
        size = int(self.engine.embedder.chip_size)
        self.engine.embed_chips(np.zeros((1, size, size, 3), np.uint8))


def load_recognizer(settings: Settings) -> EngineRecognizer:
    """Load the models (TensorFlow is imported here, not at module import). Raises
    facelive.models.store.ModelMissingError when weights are missing."""
    from facelive.models.store import mtcnn_paths

    # Check the detector's weights before TensorFlow's import, whose start-up chatter would
    # otherwise bury the one-line error of the most common case (no models fetched yet).
    mtcnn_paths(settings.models_dir)
    from facelive.recognition.pipeline import FaceEngine

    return EngineRecognizer(FaceEngine(settings))


def describe(recognizer: Callable[..., Any]) -> dict[str, Any]:
    """The recognizer's optional attributes, with defaults, for /api/health and the banner."""
    return {
        "embedder": str(getattr(recognizer, "embedder_name", "unknown")),
        "gallery_size": int(getattr(recognizer, "gallery_size", 0)),
    }
