"""The recogniser: frames in, named faces out; enrolment and gallery changes, kept in step
between the SQLite gallery (what survives a restart) and the in-graph KNN (what answers).

    recognizer = Recognizer.from_settings(settings)
    report = recognizer.enroll("Zoë 李", [jpeg_bytes, rgb_array], source="upload")
    faces = recognizer.recognize(frame)          # [RecognizedFace, ...]
    faces[0].name, faces[0].distance, faces[0].confidence

Every change goes to the gallery first (one transaction) and then to the KNN, under one lock,
so the two never disagree about order; a crash between them is repaired by the next start,
which loads the KNN from the gallery. At start, stored faces that have no vector of the
current embedder (a switch of embedders, an import) are re-embedded from their face patches.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelive.recognition import streams
from facelive.recognition.archive import export_gallery, import_archive
from facelive.recognition.confidence import probability_right
from facelive.recognition.economy import Economy
from facelive.recognition.embed_batches import EMBED_BATCHES, padded
from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.gallery import Gallery, ImportReport, PersonInfo
from facelive.recognition.gallery_open import open_gallery
from facelive.recognition.gallery_rule import rule_in_force, rule_report
from facelive.recognition.knn import UNKNOWN_LABEL, KnnIndex, KnnResult
from facelive.recognition.names import UNKNOWN, name_key, validate_name
from facelive.recognition.openset import DEFAULT_TARGET_FAR, FarTable, effective_people
from facelive.recognition.patches import PatchError, decode_patch, make_patch
from facelive.recognition.pipeline import Face, FaceEngine, dominant_face
from facelive.recognition.results import (
    EnrollCheck,
    EnrollReport,
    Lookalike,
    Picked,
    RecognizedFace,
    Skipped,
    box_side,
    corners_of,
)
from facelive.recognition.small_faces import SmallFaceRule, classify_faces, small_face_rule
from facelive.recognition.tracks import Tracker, tracker_for
from facelive.settings import Settings
from facelive.vision.image import ImageError, decode_image
from facelive.vision.mtcnn import Detection, as_rgb
from facelive.vision.quality import face_quality

log = logging.getLogger(__name__)


# An RGB image ((H, W, 3) uint8) or the encoded bytes of one (JPEG, PNG...).
ImageInput = np.ndarray | bytes
# Images per detector call during enrolment / re-embedding: bounds memory for big uploads.
ENROLL_BATCH = 8
REEMBED_BATCH = 32


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class Recognizer:
    """Thread-safe: recognise from many threads; enrol/rename/delete from any thread."""

    def __init__(
        self,
        engine: FaceEngine,
        gallery: Gallery,
        *,
        k: int = 5,
        threshold: float | None = None,
        margin: float | None = None,
        max_pixels: int = 40_000_000,
        max_bytes: int = 20 * 1024 * 1024,
        refresh_interval: float | None = None,
        far_table: FarTable | None = None,
        target_far: float = DEFAULT_TARGET_FAR,
        threshold_source: str = "",
        economy: Economy | None = None,
    ) -> None:
        self.engine = engine
        # What a frame of a stream is spared (recognize_tracked, recognition/economy.py).
        self.economy = economy if economy is not None else Economy()
        self.gallery = gallery
        self.embedder = engine.embedder
        # With a FAR table the threshold follows the gallery's size (recognition/openset.py,
        # recomputed by _update_threshold on every change); without one it is fixed.
        self.far_table = far_table
        self.target_far = float(target_far)
        self.threshold_source = threshold_source or ("table" if far_table else "fixed")
        self.threshold = float(self.embedder.threshold if threshold is None else threshold)
        # The open-set margin (see knn.py) is measured per embedder, like its threshold.
        margin = float(getattr(self.embedder, "margin", 0.0) if margin is None else margin)
        self.max_pixels, self.max_bytes = max_pixels, max_bytes
        self.knn = KnnIndex(int(self.embedder.dim), k=k, margin=margin,
                            metric=getattr(self.embedder, "metric", None))
        # The fused embedder judges small faces by its dlib-resnet half alone, with dlib-
        # resnet's rule (_classify_faces); None for the other embedders.
        self.small_faces: SmallFaceRule | None = None
        self._classify = padded(self.knn.crop_classifier(self.embedder))
        half = getattr(self.embedder, "dlib_half", lambda: None)()
        self._classify_small = None if half is None else padded(
            self.knn.crop_classifier(half, query_scale=half.query_scale))
        self._names: dict[int, str] = {}
        self._mutate = threading.RLock()
        # Asking a SQLite file whether another process changed it costs a query (every 1 s);
        # a PostgreSQL gallery hears of changes, so it is asked before every batch.
        poll = getattr(gallery, "change_poll_s", 1.0)
        self._refresh_interval = float(poll if refresh_interval is None else refresh_interval)
        # Reloads for outside changes, and how many each stream's tracker has seen: one that
        # missed a change decides its names afresh (recognize_streams).
        self._outside_changes = 0
        self._tracker_seen: weakref.WeakKeyDictionary[Tracker, int] = weakref.WeakKeyDictionary()
        self._last_refresh = time.monotonic()
        self._reload_pending = False
        self.last_timings: dict[str, float] = {}
        self.reload()

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: FaceEngine | None = None, gallery: Gallery | None = None
    ) -> Recognizer:
        """Load the models (or use `engine`) and open `gallery.sqlite3` in the data dir (or use
        `gallery`, which is then closed on failure). The match threshold is
        FACELIVE_THRESHOLD, else the one `facelive calibrate` stored in the data dir for this
        embedder, else the embedder's shipped default."""
        # The gallery first: a corrupt or read-only file is then reported at once, not after
        # the seconds the models take to load.
        gallery = gallery if gallery is not None else open_gallery(settings, listen=True)
        try:
            engine = engine if engine is not None else FaceEngine(settings)
            threshold, table, label = rule_in_force(settings, engine.embedder)
            recognizer = cls(
                engine,
                gallery,
                k=settings.knn_k,
                threshold=threshold,
                max_pixels=settings.max_image_pixels,
                max_bytes=settings.max_image_bytes,
                far_table=table,
                target_far=settings.target_far,
                threshold_source=label,
                economy=Economy(full_every=settings.full_every,
                                embed_every=settings.embed_every),
            )
            log.info("match threshold %.4f (%s, %d people)", recognizer.threshold, label,
                     recognizer.people_count)
            return recognizer
        except BaseException:
            gallery.close()
            raise

    def close(self) -> None:
        self.gallery.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ state
    @property
    def embedder_name(self) -> str:
        return str(self.embedder.name)

    @property
    def gallery_size(self) -> int:
        """Stored examples the KNN searches."""
        return len(self.knn)

    def people(self) -> list[PersonInfo]:
        return self.gallery.people()

    @property
    def people_count(self) -> int:
        return len(self._names)

    def _update_threshold(self) -> None:
        """Follow the gallery's size (caller holds _mutate, or is __init__)."""
        size = effective_people(len(self._names), len(self.knn))
        if self.far_table is not None:
            self.threshold = self.far_table.threshold_for(size, self.target_far)
        self.small_faces = small_face_rule(self.embedder, self.far_table, self.threshold,
                                           size, self.target_far)

    def _classify_faces(
        self, chips: np.ndarray, sides: Sequence[float]
    ) -> tuple[np.ndarray, KnnResult, list[tuple[str, float]]]:
        """The embed + KNN call for these chips (faces of `sides` px, the shorter side of
        each box); with the fused embedder, the faces smaller than its SMALL_FACE_PX by the
        dlib-resnet half alone (small_faces.py). Also per face the rule it was judged by:
        (embedder whose distance it is, threshold)."""
        return classify_faces(self.small_faces, self._classify, self._classify_small, chips,
                              sides, (self.embedder_name, self.threshold))

    def open_set(self) -> dict[str, Any]:
        """{threshold, threshold_source, people, target_far, expected_far}: the rule in force
        and the share of strangers it is expected to name at the current gallery size
        (expected_far is None when no FAR table is known for this embedder)."""
        return rule_report(self.threshold, self.threshold_source, self.far_table,
                           BUILT_IN.get(self.embedder_name), self.target_far,
                           len(self._names), len(self.knn))

    def reload(self) -> None:
        """Rebuild the KNN from the gallery, re-embedding stored faces that lack a vector of
        this embedder first."""
        with self._mutate:
            if self.gallery.count_missing(self.embedder_name):
                self.reembed(only_missing=True)  # which loads the KNN
                return
            stored = self.gallery.vectors(self.embedder_name)
            if len(stored.matrix) and stored.matrix.shape[1] != self.embedder.dim:
                log.warning("stored %s vectors have the wrong size; re-embedding all",
                            self.embedder_name)
                self.reembed(only_missing=False)
                return
            self._load(stored)

    def _load(self, stored: Any) -> None:
        self.knn.replace_all(stored.matrix.reshape(-1, self.embedder.dim), stored.labels,
                             stored.example_ids)
        self._names = dict(stored.names)
        self._update_threshold()
        log.info("gallery: %d people, %d examples (%s)", len(self._names), len(self.knn),
                 self.embedder_name)

    def refresh(self) -> bool:
        """Reload when another process (e.g. the CLI) changed the gallery; True if it did."""
        self._last_refresh = time.monotonic()
        # changed_elsewhere() says so once: a reload that fails is remembered and retried.
        if self.gallery.changed_elsewhere() or self._reload_pending:
            self._reload_pending = True
            self.reload()
            self._reload_pending, self._outside_changes = False, self._outside_changes + 1
            return True
        return False

    def reembed(self, only_missing: bool = False) -> int:
        """Compute this embedder's vectors from the stored face patches (all of them, or those
        without one) and store them, REEMBED_BATCH per transaction, so an interrupted run
        keeps its progress. Returns how many were embedded; the KNN is reloaded."""
        with self._mutate:
            done = 0
            batch: list[tuple[int, np.ndarray]] = []
            missing_for = self.embedder_name if only_missing else None
            for example in self.gallery.examples(missing_for=missing_for):
                try:
                    image = decode_patch(example.patch)
                    detection = Detection(example.patch.box, 1.0, example.patch.landmarks)
                    batch.append((example.id, self.embedder.align(image, detection)))
                except (PatchError, ValueError) as exc:
                    log.warning("example %d cannot be re-embedded: %s", example.id, exc)
                if len(batch) == REEMBED_BATCH:
                    done += self._store_vectors(batch)
                    batch = []
            if batch:
                done += self._store_vectors(batch)
            if done:
                log.info("re-embedded %d stored faces with %s", done, self.embedder_name)
            self._load(self.gallery.vectors(self.embedder_name))
            return done

    def _store_vectors(self, batch: list[tuple[int, np.ndarray]]) -> int:
        vectors = self.embedder.embed(np.stack([chip for _, chip in batch]))
        return self.gallery.set_embeddings(
            self.embedder_name, {eid: v for (eid, _), v in zip(batch, vectors, strict=True)}
        )

    # ------------------------------------------------------------ recognition
    def to_rgb(self, frame: ImageInput) -> np.ndarray:
        if isinstance(frame, bytes | bytearray | memoryview):
            return decode_image(bytes(frame), self.max_pixels, self.max_bytes)
        return as_rgb(np.asarray(frame))

    def recognize(self, frame: ImageInput) -> list[RecognizedFace]:
        """One RGB uint8 (H, W, 3) array or encoded image (JPEG, PNG...) -> its faces.
        Raises ImageError for undecodable bytes."""
        return self.recognize_batch([frame])[0]

    def recognize_batch(self, frames: Sequence[ImageInput]) -> list[list[RecognizedFace]]:
        """Several frames: one detector batch, then one fused embed + KNN call for all
        faces. last_timings gets {detect, embed, knn} in ms; the KNN runs inside the
        embedding call, so its time is part of `embed` and `knn` is 0."""
        if time.monotonic() - self._last_refresh > self._refresh_interval:
            self.refresh()
        images = [self.to_rgb(frame) for frame in frames]
        start = time.perf_counter()
        analyzed = self.engine.analyze_batch(images, embed=False)
        detect_ms = _ms(start)
        start = time.perf_counter()
        flat = [face for faces in analyzed for face in faces]
        if not flat:
            self.last_timings = {"detect": detect_ms, "embed": 0.0, "knn": 0.0}
            return [[] for _ in analyzed]
        embeddings, result, rules = self._classify_faces(
            np.stack([f.chip for f in flat]), [box_side(f.detection.box) for f in flat])
        self.last_timings = {"detect": detect_ms, "embed": _ms(start), "knn": 0.0}
        out: list[list[RecognizedFace]] = []
        position = 0
        for image, faces in zip(images, analyzed, strict=True):
            row = []
            for face in faces:
                quality = face_quality(image, face.detection.box, face.detection.landmarks)
                row.append(self.face_of(face, result, position, embeddings[position],
                                        quality.score, rules[position]))
                position += 1
            out.append(row)
        return out

    def face_of(
        self, face: Face, result: KnnResult, i: int, embedding: np.ndarray,
        quality: float | None = None, rule: tuple[str, float] | None = None,
    ) -> RecognizedFace:
        """Row i of a KNN result as a face; rule: (embedder, threshold) it was judged by
        (default this recogniser's own, see _classify_faces)."""
        embedder, threshold = rule if rule is not None else (self.embedder_name, self.threshold)
        det = face.detection
        label = int(result.label[i])
        candidate = int(result.candidate[i])
        distance = float(result.distance[i])
        return RecognizedFace(
            box=corners_of(det.box),
            landmarks=tuple((float(x), float(y)) for x, y in det.landmarks),
            score=float(det.score),
            # UNKNOWN_LABEL is no person's id (ids count from 1): it falls through to UNKNOWN.
            name=self._names.get(label, UNKNOWN),
            distance=distance if np.isfinite(distance) else None,
            # What a person reads: P(the name is right), calibrated on LFW (confidence.py).
            confidence=probability_right(distance, embedder, threshold),
            person=None if label == UNKNOWN_LABEL else label,
            embedding=embedding,
            nearest=candidate if candidate >= 0 else None,
            quality=quality,
            threshold=threshold,
        )

    @property
    def names(self) -> dict[int, str]:
        """The gallery's people now: {person id: name}."""
        return dict(self._names)

    def new_tracker(self) -> Tracker:
        """A tracker for one stream, linking faces on this embedder's scale."""
        return tracker_for(self.embedder)

    def recognize_streams(self, frames: Sequence[ImageInput], trackers: Sequence[Tracker],
                          cuts: Sequence[bool] | None = None) -> list[list[dict[str, Any]]]:
        """Streams' next frames -> JSON-ready faces named by track (recognition/streams.py)."""
        return streams.recognize_streams(self, frames, trackers, cuts)

    def recognize_tracked(self, frames: Sequence[ImageInput], trackers: Sequence[Tracker],
                          cuts: Sequence[bool] | None = None) -> list[list[streams.Pair]]:
        """Streams' next frames, worked on only where new (recognition/streams.py)."""
        return streams.recognize_tracked(self, frames, trackers, cuts)

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """The live worker's interface: frames -> JSON-ready faces per frame."""
        return [[face.to_dict() for face in faces] for faces in self.recognize_batch(frames)]

    def warm_up(self, height: int = 480, width: int = 640, max_faces: int = 16) -> None:
        """Run the detector at every batch shape of a height x width stream (the page asks
        the camera for 640x480) and the fused embed + KNN call at every face count up to
        max_faces (its EMBED_BATCHES sizes), so the first clients neither wait for nor grow
        memory with these one-off allocations (see MTCNN.warm_up)."""
        self.engine.detector.warm_up(height, width)
        size = int(self.embedder.chip_size)
        for count in (b for b in EMBED_BATCHES if b <= max(max_faces, 1)):
            for classify in filter(None, (self._classify, self._classify_small)):
                classify(np.zeros((count, size, size, 3), np.uint8), self.threshold)

    # ------------------------------------------------------------ changes
    def enroll(
        self, name: str, images: Sequence[ImageInput], source: str = "upload",
        check: EnrollCheck | None = None,
    ) -> EnrollReport:
        """Add example faces of a person (created if new; an existing name in any case is the
        same person). Each image must show one face, or one clearly dominant face (see
        pipeline.dominant_face; the report's `picked` says which was taken), good enough to
        learn from (vision/quality.py: not too small, blurred or turned); others are skipped
        with the reason. Nothing is stored when no image is usable. Raises InvalidName for a
        bad name."""
        name = validate_name(name)
        skipped: list[Skipped] = []
        decoded: list[tuple[int, np.ndarray]] = []
        for i, image in enumerate(images):
            try:
                decoded.append((i, self.to_rgb(image)))
            except (ImageError, ValueError) as exc:
                skipped.append(Skipped(i, str(exc)))
        accepted: list[tuple[int, np.ndarray, Face]] = []
        picked: list[Picked] = []
        for start in range(0, len(decoded), ENROLL_BATCH):
            chunk = decoded[start : start + ENROLL_BATCH]
            found = self.engine.analyze_batch([image for _, image in chunk], embed=False)
            for (i, image), faces in zip(chunk, found, strict=True):
                choice, why = dominant_face([f.detection for f in faces], image.shape)
                if choice is None:
                    skipped.append(Skipped(i, why or "no usable face"))
                    continue
                face = faces[choice]
                quality = face_quality(image, face.detection.box, face.detection.landmarks)
                if quality.problem is not None:
                    skipped.append(Skipped(i, quality.problem))
                    continue
                accepted.append((i, image, face))
                if len(faces) > 1:
                    picked.append(Picked(i, len(faces), corners_of(face.detection.box)))
        skipped.sort(key=lambda s: s.index)
        if not accepted:
            return EnrollReport(name, None, [], [], skipped, [])
        vectors = self.embedder.embed(np.stack([face.chip for _, _, face in accepted]))
        patches = [
            make_patch(image, face.detection.box, face.detection.landmarks)
            for _, image, face in accepted
        ]
        with self._mutate:
            if check is not None:
                check(name, vectors, [i for i, _, _ in accepted])
            lookalikes = self._lookalikes(name, vectors, [i for i, _, _ in accepted])
            warnings = [f"image {a.index} looks like {a.name} (distance {a.distance:.3f})"
                        for a in lookalikes]
            added = self.gallery.add_examples(
                name, patches, vectors, self.embedder_name, source
            )
            self._names = {**self._names, added.person: added.name}
            self.knn.add(vectors, added.person, np.array(added.example_ids))
            self._update_threshold()
        return EnrollReport(
            added.name, added.person, added.example_ids, [i for i, _, _ in accepted],
            skipped, warnings, picked, lookalikes,
        )

    def _lookalikes(self, name: str, vectors: np.ndarray, positions: list[int]) -> list[Lookalike]:
        """The faces that the gallery already knows as someone else."""
        if not len(self.knn):
            return []
        result = self.knn.query(vectors, self.threshold)
        out = []
        for position, label, distance in zip(
            positions, result.label, result.distance, strict=True
        ):
            other = self._names.get(int(label))
            if other is not None and name_key(other) != name_key(name):
                out.append(Lookalike(position, other, float(distance)))
        return out

    def rename(self, old: str, new: str) -> str:
        """Rename a person: the gallery row and the label table, nothing else."""
        with self._mutate:
            stored = self.gallery.rename(old, new)
            self._names = self.gallery.names()
            return stored

    def delete(self, name: str) -> int:
        """Delete a person, their faces and vectors; returns how many examples went."""
        with self._mutate:
            person = self.gallery.person(name).id
            count = self.gallery.delete(name)
            self.knn.remove_labels([person])
            self._names = self.gallery.names()
            self._update_threshold()
            return count

    def remove_examples(self, example_ids: Sequence[int]) -> int:
        with self._mutate:
            count = self.gallery.remove_examples(example_ids)
            self.knn.remove_examples(np.asarray(example_ids, np.int64))
            self._names = self.gallery.names()
            self._update_threshold()
            return count

    def clear(self) -> int:
        with self._mutate:
            count = self.gallery.clear()
            self.knn.clear()
            self._names = {}
            self._update_threshold()
            return count

    def import_(self, path: str | Path) -> ImportReport:
        """Merge an export archive, then reload (re-embedding faces that came without this
        embedder's vectors)."""
        with self._mutate:
            report = import_archive(self.gallery, path)
            self.reload()
            return report

    def export(self, path: str | Path) -> int:
        return export_gallery(self.gallery, path)
