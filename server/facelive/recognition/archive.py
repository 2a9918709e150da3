"""Gallery export archives: a portable, versioned file to back up a gallery or move it to
another machine, merged on import.

A zip holding `manifest.json` and one `crops/<n>.jpg` per example (the face patch):

    {"format": "facelive-gallery", "version": 1, "exported": <unix seconds>,
     "vector_encoding": "base64 float32 little-endian",
     "people": [{"name": "Zoë 李", "created": <unix seconds>,
                 "examples": [{"crop": "crops/7.jpg", "source": "webcam",
                               "created": <unix seconds>, "box": [x1, y1, x2, y2],
                               "landmarks": [[x, y] * 5],
                               "embeddings": {"dlib-resnet": "<base64>"}}]}]}

Box and landmarks are in crop pixels. Vectors travel with their embedder id; a gallery that
uses another embedder re-embeds the crops. An archive is untrusted input: it is checked in full
(names, sizes, shapes, finite numbers) before anything is written.
"""

from __future__ import annotations

import base64
import json
import math
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from facelive.atomic import PRIVATE, atomic_path
from facelive.recognition.gallery import (
    SOURCES,
    FacePatch,
    Gallery,
    GalleryError,
    ImportedExample,
    ImportedPerson,
    ImportReport,
)
from facelive.recognition.names import InvalidName, validate_name

EXPORT_FORMAT = "facelive-gallery"
EXPORT_VERSION = 1
MAX_CROP_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024


def _b64(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, "<f4").tobytes()).decode("ascii")


def import_archive(gallery: Gallery, path: str | Path) -> ImportReport:
    """Merge the archive `path` (made by export_gallery) into `gallery`, in one transaction;
    people are matched by name, examples already stored are skipped (see Gallery.merge)."""
    return gallery.merge(read_archive(Path(path)))


def export_gallery(gallery: Gallery, path: str | Path) -> int:
    """Write `gallery` to the archive `path`; returns the number of examples. The archive is
    written to a temporary file beside `path`, synced and renamed, so `path` is never left
    half-written (an existing file there is replaced only by a complete archive)."""
    with (atomic_path(path, suffix=".tmp", mode=PRIVATE, sync=True) as tmp,
          open(tmp, "wb") as out):
        return _write(gallery, out)


def _write(gallery: Gallery, handle: Any) -> int:
    with gallery.snapshot():
        people: dict[int, dict[str, Any]] = {
            info.id: {"name": info.name, "created": info.created, "examples": []}
            for info in gallery.people()
        }
        vectors: dict[int, dict[str, str]] = {}
        for embedder in gallery.embedders():
            stored = gallery.vectors(embedder)
            for example, row in zip(stored.example_ids, stored.matrix, strict=True):
                vectors.setdefault(int(example), {})[embedder] = _b64(row)
        count = 0
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for example in gallery.examples():
                # JPEGs are stored as they are: deflate would not shrink them.
                member = f"crops/{example.id}.jpg"
                archive.writestr(member, example.patch.jpeg)
                people[example.person]["examples"].append(
                    {
                        "crop": member,
                        "source": example.source,
                        "created": example.created,
                        "box": np.asarray(example.patch.box).tolist(),
                        "landmarks": np.asarray(example.patch.landmarks).tolist(),
                        "embeddings": vectors.get(example.id, {}),
                    }
                )
                count += 1
            manifest = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "exported": time.time(),
                "vector_encoding": "base64 float32 little-endian",
                "people": list(people.values()),
            }
            archive.writestr(
                "manifest.json",
                json.dumps(manifest, ensure_ascii=False),
                compress_type=zipfile.ZIP_DEFLATED,
            )
    return count


class _Bad(Exception):
    pass


def read_archive(path: Path) -> list[ImportedPerson]:
    """Parse and check a whole archive; GalleryError naming the first problem."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise GalleryError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise GalleryError(f"{path}: not a FaceLive gallery export ({exc})") from None
    with archive:
        try:
            return _parse(archive, path)
        except _Bad as exc:
            raise GalleryError(f"{path}: not a usable FaceLive gallery export ({exc})") from None
        except InvalidName as exc:
            raise GalleryError(f"{path}: bad name in the export ({exc})") from None
        except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
            raise GalleryError(
                f"{path}: not a usable FaceLive gallery export ({type(exc).__name__}: {exc})"
            ) from None


def _number(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _Bad(f"bad {what}")
    return number


def _parse(archive: zipfile.ZipFile, path: Path) -> list[ImportedPerson]:
    try:
        info = archive.getinfo("manifest.json")
    except KeyError:
        raise _Bad("no manifest.json") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise _Bad("manifest.json too large")
    manifest = json.loads(archive.read(info))
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise _Bad("wrong format field")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise _Bad(f"bad version {version!r}")
    if version > EXPORT_VERSION:
        raise GalleryError(
            f"{path} is export version {version}, made by a newer FaceLive; this one reads up "
            f"to {EXPORT_VERSION}"
        )
    people = []
    for person in manifest["people"]:
        created = _number(person.get("created", time.time()), "timestamp")
        examples = []
        for example in person["examples"]:
            member = archive.getinfo(example["crop"])
            if member.file_size > MAX_CROP_BYTES:
                raise _Bad(f"{member.filename} too large")
            patch = FacePatch(
                archive.read(member),
                np.asarray(example["box"], np.float32),
                np.asarray(example["landmarks"], np.float32),
            )
            if patch.box.shape != (4,) or patch.landmarks.shape != (5, 2):
                raise _Bad("bad box or landmarks")
            if not (np.all(np.isfinite(patch.box)) and np.all(np.isfinite(patch.landmarks))):
                raise _Bad("bad box or landmarks")
            if not patch.jpeg.startswith(b"\xff\xd8"):
                raise _Bad(f"{member.filename} is not a JPEG")
            if example["source"] not in SOURCES:
                raise _Bad(f"unknown source {example['source']!r}")
            embeddings = {}
            for embedder, text in example.get("embeddings", {}).items():
                vector = np.frombuffer(base64.b64decode(text, validate=True), "<f4")
                if vector.size == 0 or not np.all(np.isfinite(vector)):
                    raise _Bad(f"bad {embedder} vector")
                embeddings[str(embedder)] = vector.astype(np.float32)
            examples.append(
                ImportedExample(
                    patch,
                    example["source"],
                    _number(example.get("created", created), "timestamp"),
                    embeddings,
                )
            )
        people.append(ImportedPerson(validate_name(person["name"]), created, examples))
    return people
