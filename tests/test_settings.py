from __future__ import annotations

from pathlib import Path

import pytest

from facelive.settings import Settings, SettingsError


def test_env_then_flags() -> None:
    env = {
        "FACELIVE_DATA": "/d",
        "FACELIVE_MODELS": "/m",
        "FACELIVE_EMBEDDER": "dlib-resnet",
        "FACELIVE_MIN_FACE": "20",
        "FACELIVE_MTCNN_THRESHOLDS": "0.5, 0.6, 0.7",
    }
    s = Settings.from_env(env)
    assert s.data_dir == Path("/d") and s.models_dir == Path("/m")
    assert s.embedder == "dlib-resnet" and s.min_face_size == 20
    assert s.mtcnn_thresholds == (0.5, 0.6, 0.7)
    flagged = Settings.from_env(env, data_dir="/flag", embedder=None)
    assert flagged.data_dir == Path("/flag") and flagged.embedder == "dlib-resnet"


def test_defaults_follow_xdg() -> None:
    s = Settings.from_env({"XDG_DATA_HOME": "/x"})
    assert s.data_dir == Path("/x/facelive") and s.models_dir == Path("/x/facelive/models")
    assert s.embedder == "auto" and s.pyramid_factor == pytest.approx(0.709)


@pytest.mark.parametrize(
    "env, name",
    [
        ({"FACELIVE_EMBEDDER": "resnet"}, "FACELIVE_EMBEDDER"),
        ({"FACELIVE_MIN_FACE": "big"}, "FACELIVE_MIN_FACE"),
        ({"FACELIVE_MIN_FACE": "2"}, "FACELIVE_MIN_FACE"),
        ({"FACELIVE_MTCNN_THRESHOLDS": "0.6,0.7"}, "FACELIVE_MTCNN_THRESHOLDS"),
        ({"FACELIVE_PYRAMID_FACTOR": "2"}, "FACELIVE_PYRAMID_FACTOR"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
