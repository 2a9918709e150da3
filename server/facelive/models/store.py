"""The models dir: is each model present, missing or corrupt, and where are its files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facelive.errors import FaceLiveError
from facelive.models.manifest import MODELS, ModelFile, files_of

State = Literal["present", "missing", "corrupt"]

FETCH_HINT = "run `facelive models fetch` (or `make models`)"


class ModelMissingError(FaceLiveError, RuntimeError):
    """Weights needed for the requested work are not in the models dir."""

    kind = "unavailable"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStatus:
    file: ModelFile
    path: Path
    state: State


def check_file(models_dir: Path, entry: ModelFile, verify: bool = True) -> FileStatus:
    """`verify=False` trusts size alone (cheap, for start-up); `True` also hashes the file."""
    path = models_dir / entry.relpath
    if not path.is_file():
        return FileStatus(entry, path, "missing")
    if entry.size is not None and path.stat().st_size != entry.size:
        return FileStatus(entry, path, "corrupt")
    if verify and sha256_of(path) != entry.sha256:
        return FileStatus(entry, path, "corrupt")
    return FileStatus(entry, path, "present")


def model_state(models_dir: Path, model: str, verify: bool = True) -> State:
    """A model is present when all its files are; corrupt when any file is corrupt."""
    states = [check_file(models_dir, f, verify).state for f in files_of(model)]
    if "corrupt" in states:
        return "corrupt"
    if "missing" in states:
        return "missing"
    return "present"


def status(models_dir: Path, verify: bool = True) -> dict[str, State]:
    return {model: model_state(models_dir, model, verify) for model in MODELS}


def require(models_dir: Path, model: str) -> list[Path]:
    """The paths of a model's files, or ModelMissingError with one line naming the fix."""
    statuses = [check_file(models_dir, f, verify=False) for f in files_of(model)]
    bad = [s for s in statuses if s.state != "present"]
    if bad:
        what = "corrupt" if any(s.state == "corrupt" for s in bad) else "missing"
        raise ModelMissingError(
            f"{model} weights are {what} in {models_dir} ({bad[0].path.name}): {FETCH_HINT}"
        )
    return [s.path for s in statuses]


def mtcnn_paths(models_dir: Path) -> tuple[str, list[Path]]:
    """Which MTCNN weight set to load: the upstream det*.npy files when present, else the
    copy of the PyPI `mtcnn` package's bundled weights. Returns (model name, paths)."""
    for model in ("mtcnn", "mtcnn-pypi"):
        if model_state(models_dir, model, verify=False) == "present":
            return model, require(models_dir, model)
    raise ModelMissingError(f"MTCNN weights are missing in {models_dir}: {FETCH_HINT}")


# FaceNet weights in order of preference: (store model, embedder name). The 2018 model's
# checkpoint and .pb hold the same weights.
FACENET_MODELS: tuple[tuple[str, str], ...] = (
    ("facenet-ckpt", "facenet"), ("facenet", "facenet"), ("facenet-keras", "facenet-2017"),
)
# What `auto` takes when FaceNet weights are present: the most accurate embedder whose live
# frame rate meets 15 fps / p95 120 ms on the 2-core machine (issue 12). Fused does, once faces
# are embedded only when their track needs it (issue 17): one client 41 fps, p95 42 ms, quiet
# (BENCHMARKS.md). Without FaceNet's weights auto is dlib-resnet, always available offline.
AUTO_WITH_FACENET = "fused"


def facenet_model(models_dir: Path) -> tuple[str, str] | None:
    """(store model, embedder name) of the best FaceNet weights present, else None."""
    for model, name in FACENET_MODELS:
        if model_state(models_dir, model, verify=False) == "present":
            return model, name
    return None


def choose_embedder(requested: str, models_dir: Path) -> str:
    """The embedder a request means on this machine (no TensorFlow needed to decide):
    `facenet` is `facenet` (2018 weights) or `facenet-2017`, `fused` is `fused` (with the
    2017 FaceNet) or `fused-facenet`; `auto` takes AUTO_WITH_FACENET when FaceNet weights are
    present, else dlib-resnet, always available offline. Without FaceNet weights a request for
    it stays unresolved (`facenet`/`fused`), and loading it names the fix."""
    found = facenet_model(models_dir)
    if requested == "auto":
        requested = AUTO_WITH_FACENET if found else "dlib-resnet"
    if requested == "facenet" and found:
        return found[1]
    if requested == "fused" and found:
        return "fused" if found[1] == "facenet-2017" else f"fused-{found[1]}"
    return requested


def require_embedder(models_dir: Path, name: str) -> dict[str, list[Path]]:
    """Paths of every model file an embedder needs, by store model; ModelMissingError (one
    line naming the fix) when any is missing or corrupt."""
    needed: dict[str, list[Path]] = {}
    if name != "dlib-resnet":
        found = facenet_model(models_dir)
        if found is None:
            corrupt = [
                m for m, _ in FACENET_MODELS if model_state(models_dir, m, False) == "corrupt"
            ]
            what = f"corrupt ({', '.join(corrupt)})" if corrupt else "missing"
            raise ModelMissingError(
                f"FaceNet weights for the {name} embedder are {what} in {models_dir}: "
                f"{FETCH_HINT}"
            )
        needed[found[0]] = require(models_dir, found[0])
    if name == "dlib-resnet" or name.startswith("fused"):
        needed["dlib-resnet"] = require(models_dir, "dlib-resnet")
    return needed


def check_ready(models_dir: Path, requested_embedder: str | None) -> str | None:
    """Raise ModelMissingError (one line naming the fix) unless MTCNN and, when asked for, the
    embedder's weights are present; returns the embedder name. Cheap: sizes only, no TF."""
    mtcnn_paths(models_dir)
    if requested_embedder is None:
        return None
    name = choose_embedder(requested_embedder, models_dir)
    require_embedder(models_dir, name)
    return name
