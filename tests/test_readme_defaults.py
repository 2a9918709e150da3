"""The README's defaults against the code: what a new user reads is what the commands do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

README = (REPO / "README.md").read_text()


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facelive.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FACELIVE_") or k == "FACELIVE_TEST_DATA"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(REPO / "server")
    return env


def test_models_status_with_a_data_dir_prints_the_documented_path(tmp_path: Path) -> None:
    assert "`--data-dir D` alone puts the models in `D/models`" in README
    data = tmp_path / "data"
    done = _run("models", "status", "--data-dir", str(data), env=_clean_env(tmp_path))
    assert f"models dir: {data / 'models'}" in done.stdout, done.stdout + done.stderr
    # --models-dir still wins, and FACELIVE_DATA behaves as --data-dir.
    other = tmp_path / "weights"
    done = _run("models", "status", "--data-dir", str(data), "--models-dir", str(other),
                env=_clean_env(tmp_path))
    assert f"models dir: {other}" in done.stdout
    env = {**_clean_env(tmp_path), "FACELIVE_DATA": str(data)}
    assert f"models dir: {data / 'models'}" in _run("models", "status", env=env).stdout


def test_defaults_table_matches_the_settings(tmp_path: Path) -> None:
    from facelive.settings import Settings

    settings = Settings.from_env({"XDG_DATA_HOME": str(tmp_path)})
    rows = dict(re.findall(r"^\| `(FACELIVE_[A-Z_]+)`[^|]*\| ([^|]+) \|", README, re.M))
    assert rows["FACELIVE_DATA"].strip() == "`~/.local/share/facelive`"
    assert settings.data_dir == tmp_path / "facelive"
    assert rows["FACELIVE_MODELS"].strip() == "`<data>/models`"
    assert settings.models_dir == settings.data_dir / "models"
    expected = {
        "FACELIVE_MIN_FACE": str(settings.min_face_size),
        "FACELIVE_KNN_K": str(settings.knn_k),
        "FACELIVE_MAX_IMAGE_BYTES": str(settings.max_image_bytes),
        "FACELIVE_MAX_IMAGE_PIXELS": str(settings.max_image_pixels),
        "FACELIVE_MAX_CLIENTS": str(settings.max_clients),
        "FACELIVE_EMBEDDER": settings.embedder,
        "FACELIVE_OPEN_VIEWING": "1" if settings.open_viewing else "0",
        "FACELIVE_ACCESS_LOG": "1" if settings.access_log else "0",
        "FACELIVE_TF_LOG": "1" if settings.tf_log else "0",
    }
    for name, value in expected.items():
        assert rows[name].strip() == f"`{value}`", (name, rows[name], value)


def test_quick_start_targets_exist() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    makefile = (REPO / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", quick, re.M):
        assert re.search(rf"^{target}:", makefile, re.M), target
