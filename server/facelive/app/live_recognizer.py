"""What the live worker calls: a recognizer turns RGB frames into JSON-ready faces.

The server uses the gallery's `facelive.recognition.recognizer.Recognizer`; the live worker only
needs a `LiveRecognizer`: a callable `(frames) -> faces`, where frames is a list of (H, W, 3)
uint8 RGB arrays and faces has one list per frame of dicts shaped like `protocol.face_json`
(box, score, landmarks, name, distance, confidence). Optional attributes, read when present:
    embedder_name: str          shown by /api/health and the start-up banner
    gallery_size: int           examples searched, shown by /api/health (0 when absent)
    open_set() -> dict          the threshold at this gallery size and the expected stranger
                                false-accept rate, shown by /api/health
    last_timings: dict          {detect, embed, knn} in ms of the latest call
    warm_up() -> None           run once before serving, so the first frame is not slow
The gallery routes (app/people.py) need the full Recognizer: enroll, rename, delete, clear,
recognize and its `gallery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from facelive.settings import Settings

if TYPE_CHECKING:
    from facelive.recognition.recognizer import Recognizer


class LiveRecognizer(Protocol):
    """The live worker's contract (the optional attributes above are read with getattr)."""

    def __call__(self, frames: Sequence[Any], /) -> list[list[dict[str, Any]]]:
        """frames: (H, W, 3) uint8 RGB arrays -> per frame, the faces as JSON-ready dicts."""
        ...


def load_recognizer(settings: Settings) -> Recognizer:
    """Load the models and open the gallery in the data dir (TensorFlow is imported here, not
    at module import). Raises facelive.models.store.ModelMissingError when weights are missing,
    facelive.recognition.gallery.GalleryError when the gallery cannot be opened."""
    from facelive.models.store import mtcnn_paths

    # Check the detector's weights before TensorFlow's import, whose start-up chatter would
    # otherwise bury the one-line error of the most common case (no models fetched yet).
    mtcnn_paths(settings.models_dir)
    # The gallery too: a corrupt or read-only file is then one line, before any of it.
    from facelive.recognition.gallery_open import open_gallery

    # The server listens for other workers' changes (PostgreSQL; the SQLite file tells itself).
    gallery = open_gallery(settings, listen=True)
    try:
        from facelive.recognition.recognizer import Recognizer
    except BaseException:
        gallery.close()
        raise
    return Recognizer.from_settings(settings, gallery=gallery)


def describe(recognizer: LiveRecognizer) -> dict[str, Any]:
    """The recognizer's optional attributes, with defaults, for /api/health and the banner.
    Cheap attribute reads only: /api/health must answer while a batch is running."""
    out: dict[str, Any] = {
        "embedder": str(getattr(recognizer, "embedder_name", "unknown")),
        "gallery_size": int(getattr(recognizer, "gallery_size", 0)),
    }
    open_set = getattr(recognizer, "open_set", None)
    if callable(open_set):
        # {threshold, threshold_source, people, target_far, expected_far}: plain reads.
        out.update(open_set())
    return out
