"""The engine every entry point goes through: frame -> detect -> align -> embed.

CLI commands, batch tools and (later) the web layer call this; nothing else reaches into
`facelive.vision` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facelive.settings import Settings
from facelive.vision.embedder_choice import create_embedder
from facelive.vision.embedders import Embedder
from facelive.vision.mtcnn import MTCNN, Detection


@dataclass(frozen=True)
class Face:
    """One detected face: where it is, its aligned crop, and its embedding ((D,) float32,
    unit length) when asked for."""

    detection: Detection
    chip: np.ndarray
    embedding: np.ndarray | None = None


def pick_primary(detections: Sequence[Detection], image_shape: tuple[int, ...]) -> int | None:
    """Index of the face a single-subject photo is about: the largest, penalised by its
    distance from the image centre (the rule of facenet's align_dataset_mtcnn)."""
    if not detections:
        return None
    height, width = image_shape[:2]
    centre = np.array([width / 2, height / 2])
    best, best_value = 0, -np.inf
    for i, det in enumerate(detections):
        x1, y1, x2, y2 = det.box
        area = (x2 - x1) * (y2 - y1)
        offset = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - centre
        value = area - 2.0 * float(offset @ offset)
        if value > best_value:
            best, best_value = i, value
    return best


# Enrolment takes the largest of several faces only when its side is at least this many
# times the next one's. Measured on all 13,233 LFW images (docs/quality.md): 1,689 show more
# than one face; at 1.3 (with faces at the edge left out, below) 173 are refused and none of
# those taken is another face than the photo's subject; at 1.2 two would be.
DOMINANT_RATIO = 1.3
# A face whose box comes within this many pixels of the image edge (or past it) is cut off
# or at the margin of the picture: it is never taken, and it does not compete with a whole
# face in the middle (LFW's background faces are mostly such).
EDGE_MARGIN = 5.0


def cut_by_edge(detection: Detection, image_shape: tuple[int, ...]) -> bool:
    """Whether a face reaches the image edge (see EDGE_MARGIN)."""
    height, width = image_shape[:2]
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    m = EDGE_MARGIN
    return x1 < m or y1 < m or x2 > width - m or y2 > height - m


def _side(detection: Detection) -> float:
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    return min(x2 - x1, y2 - y1)


def dominant_face(
    detections: Sequence[Detection], image_shape: tuple[int, ...],
    ratio: float = DOMINANT_RATIO,
) -> tuple[int | None, str | None]:
    """The face an enrolment photo is about: (its index, None), or (None, why there is none).
    The one face, or the largest whole face when its side is at least `ratio` times that of
    every other whole face; faces at the image edge are never taken and do not compete."""
    if not detections:
        return None, "no face found"
    if len(detections) == 1:
        # One face: the photo is about it, even close to the edge (a tight crop).
        return 0, None
    whole = [i for i in range(len(detections)) if not cut_by_edge(detections[i], image_shape)]
    if not whole:
        return None, f"{len(detections)} faces found, all cut off by the edge of the photo"
    whole.sort(key=lambda i: _side(detections[i]), reverse=True)
    best = whole[0]
    if len(whole) > 1:
        first, second = _side(detections[best]), _side(detections[whole[1]])
        if first < ratio * second:
            return None, (
                f"{len(detections)} faces found and none is clearly the largest ({first:.0f} "
                f"and {second:.0f} px); use a photo in which this person's face is the "
                "biggest by far, or crop it"
            )
    return best, None


class FaceEngine:
    """Detector plus embedder, loaded once. Safe to call from several threads: both hold only
    read-only TensorFlow state."""

    def __init__(
        self,
        settings: Settings,
        detector: MTCNN | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.detector = detector if detector is not None else MTCNN.from_settings(settings)
        self.embedder = embedder if embedder is not None else create_embedder(settings)

    @property
    def embedder_name(self) -> str:
        return self.embedder.name

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detector.detect(image)

    def analyze(self, image: np.ndarray, embed: bool = True) -> list[Face]:
        """All faces of one RGB uint8 image, aligned and (optionally) embedded in one batch."""
        return self.analyze_batch([image], embed=embed)[0]

    def analyze_batch(self, images: Sequence[np.ndarray], embed: bool = True) -> list[list[Face]]:
        """Several images at once: detection per image, one embedding batch for all faces."""
        detections = self.detector.detect_batch(list(images))
        return self._align_and_embed(images, detections, embed)

    def primary_faces(self, images: Sequence[np.ndarray]) -> list[Face | None]:
        """For each single-subject image, its main face (see pick_primary), embedded."""
        detections = self.detector.detect_batch(list(images))
        chosen: list[list[Detection]] = []
        for image, dets in zip(images, detections, strict=True):
            index = pick_primary(dets, image.shape)
            chosen.append([] if index is None else [dets[index]])
        faces = self._align_and_embed(images, chosen, embed=True)
        return [found[0] if found else None for found in faces]

    def _align_and_embed(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Sequence[Detection]],
        embed: bool,
    ) -> list[list[Face]]:
        chips = [
            [self.embedder.align(image, det) for det in dets]
            for image, dets in zip(images, detections, strict=True)
        ]
        flat = [chip for per_image in chips for chip in per_image]
        vectors = self.embedder.embed(np.stack(flat)) if (embed and flat) else None
        out: list[list[Face]] = []
        k = 0
        for dets, per_image in zip(detections, chips, strict=True):
            faces = []
            for det, chip in zip(dets, per_image, strict=True):
                faces.append(Face(det, chip, None if vectors is None else vectors[k]))
                k += 1
            out.append(faces)
        return out

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        return self.embedder.embed(chips)
