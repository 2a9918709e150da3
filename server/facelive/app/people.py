"""Gallery operations for the web layer (REST routes and the capture events), in JSON shapes.

Every call into the recognizer and its gallery runs on the inference thread (`run`, which is
`worker.on_inference_thread` in the server): one OS thread does all recognizer work, one call
at a time, so a change never races a live batch and the recognizer's locks (green ones, once
eventlet has patched `threading`) are never taken from two OS threads. Decoding an uploaded
image runs there too: it is CPU work the event loop must not do.

Failures the client can act on are FaceLiveErrors (the gallery's, the names', the images', or
`Refusal(status, message)` for the web layer's own); api.py turns them into HTTP answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from facelive import wire
from facelive.app.summary import lookalike_summary, rejected_summary
from facelive.errors import FaceLiveError, kind_of_status
from facelive.recognition.gallery import PersonNotFound
from facelive.recognition.same_person import UnlikeFaces, check_same_person
from facelive.vision.image import decode_image

Run = Callable[..., Any]


class Refusal(FaceLiveError):
    """A request that changes nothing: HTTP status, one-line message, extra JSON fields.
    (507 Insufficient Storage, the gallery's "no_room": the server's disk, not the request, is
    at fault; nothing was stored, and the same request succeeds once there is room.)"""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind_of_status(status)
        self.extra = extra


def thumbnail_url(name: str, example_id: int | None) -> str | None:
    """Where the page finds a person's thumbnail; `v` changes with the picture (cache key)."""
    if example_id is None:
        return None
    return f"/api/people/{quote(name, safe='')}/thumbnail?v={example_id}"


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client gave it and its bytes."""

    filename: str
    data: bytes


class People:
    """recognizer: facelive.recognition.recognizer.Recognizer; run: `(fn, *args) -> fn(*args)`
    on the inference thread; max_pixels/max_bytes: the guards for uploaded images."""

    def __init__(self, recognizer: Any, run: Run, max_pixels: int, max_bytes: int) -> None:
        self.recognizer = recognizer
        self._run = run
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # A FaceLiveError raised there reaches api.py's handler (or the capture's ack) as is.
        return self._run(fn, *args)

    # ------------------------------------------------------------ reading
    def everyone(self) -> list[dict[str, Any]]:
        """[{name, examples, created, thumbnail}], sorted by name ignoring case."""
        return [
            {"name": p.name, "examples": p.examples, "created": round(p.created, 3),
             "thumbnail": thumbnail_url(p.name, p.thumbnail)}
            for p in self._call(self.recognizer.people)
        ]

    def thumbnail(self, name: str) -> bytes:
        """The JPEG face crop of the person's first example."""

        def crop() -> bytes:
            person = self.recognizer.gallery.person(name)
            if person.thumbnail is None:
                raise Refusal(404, f"{person.name!r} has no examples")
            return self.recognizer.gallery.crop(person.thumbnail)

        return self._call(crop)

    def identify(self, data: bytes) -> dict[str, Any]:
        """An encoded image -> {width, height, faces} (faces as in the live protocol)."""

        def recognize() -> dict[str, Any]:
            image = decode_image(data, self._max_pixels, self._max_bytes)
            faces = self.recognizer.recognize(image)
            return {"width": int(image.shape[1]), "height": int(image.shape[0]),
                    "faces": [face.to_dict() for face in faces]}

        return self._call(recognize)

    # ------------------------------------------------------------ changes
    def enroll(
        self, name: str, uploads: Sequence[Upload], source: str,
        add: bool = False, force: bool = False,
    ) -> dict[str, Any]:
        """Add example images of `name` (created if new): {name, examples_added, rejected:
        [{file, reason}], picked: [{file, faces, box, message}] (photos with several faces:
        the one taken), rejected_summary, warnings, lookalike_summary}. Refusal 400, and
        nothing stored, when no image shows one usable face.

        An existing name is refused 409 (reason "exists") unless `add`: a second person must
        not join the first by a typing slip. With `add`, faces unlike that person's examples
        are refused 409 (reason "unlike") unless `force`."""
        if not add:
            existing = self._call(self._existing, name)
            if existing is not None:
                examples = f"{existing.examples} example{'s' if existing.examples != 1 else ''}"
                raise Refusal(
                    409, f"{existing.name} is already in the gallery ({examples}): add these "
                         "faces to that person (add=true) or choose another name",
                    reason="exists", name=existing.name, examples=existing.examples)
        check = None if force else check_same_person(
            self.recognizer.gallery, self.recognizer.embedder_name, self.recognizer.threshold,
            self.recognizer.knn.metric)
        try:
            report = self._call(
                self.recognizer.enroll, name, [u.data for u in uploads], source, check
            )
        except UnlikeFaces as exc:
            raise Refusal(409, str(exc), reason="unlike", name=exc.name, unlike=exc.unlike,
                          faces=exc.total, closest_distance=round(exc.closest, 4),
                          threshold=round(exc.threshold, 4)) from None
        rejected = [{"file": uploads[s.index].filename, "reason": s.reason}
                    for s in report.skipped]
        not_used = rejected_summary(rejected, len(uploads))
        if not report.example_ids:
            raise Refusal(400, f"no example added: {not_used}", name=report.name,
                          examples_added=0, rejected=rejected, rejected_summary=not_used)
        picked = [{"file": uploads[p.index].filename, "faces": p.faces,
                   "box": wire.box_json(p.box), "message": p.message}
                  for p in report.picked]
        return {"name": report.name, "examples_added": len(report.example_ids),
                "rejected": rejected, "rejected_summary": not_used, "picked": picked,
                "warnings": report.warnings,
                "lookalike_summary": lookalike_summary(
                    getattr(report, "lookalikes", []), len(report.example_ids))}

    def _existing(self, name: str) -> Any:
        """The stored person of that name (any case), or None."""
        try:
            return self.recognizer.gallery.person(name)
        except PersonNotFound:
            return None

    def rename(self, old: str, new: Any) -> dict[str, Any]:
        """{name: as stored, previous}. 404 nobody, 409 someone else's name, 400 bad name."""
        if not isinstance(new, str):
            raise Refusal(400, 'send the new name as JSON: {"name": "..."}')

        def change() -> dict[str, Any]:
            previous = self.recognizer.gallery.person(old).name
            return {"name": self.recognizer.rename(old, new), "previous": previous}

        return self._call(change)

    def delete(self, name: str) -> dict[str, Any]:
        """{name, examples_removed}; 404 when there is no such person."""

        def change() -> dict[str, Any]:
            stored = self.recognizer.gallery.person(name).name
            return {"name": stored, "examples_removed": self.recognizer.delete(name)}

        return self._call(change)

    def clear(self) -> dict[str, Any]:
        return {"people_removed": self._call(self.recognizer.clear)}

    @property
    def gallery_size(self) -> int:
        return int(self.recognizer.gallery_size)
