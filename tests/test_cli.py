"""The `facelive` command as a user runs it: a real subprocess on real images."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

FACELIVE = [sys.executable, "-m", "facelive.cli"]


def run_cli(
    args: list[str], models_dir: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "FACELIVE_MODELS": str(models_dir),
        "FACELIVE_DATA": str(tmp_path / "data"),
        "FACELIVE_EMBEDDER": "auto",
        **env,
    }
    return subprocess.run(
        FACELIVE + args, capture_output=True, text=True, env=environment, timeout=600
    )


def _bomb_png(path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)))


def test_detect_json_many_images_one_process(models_dir: Path, test_data: Path,
                                             tmp_path: Path) -> None:
    group = test_data / "group" / "multiface.jpg"
    lfw = test_data / "lfw" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    result = run_cli(["detect", "--json", str(group), str(lfw)], models_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["embedder"] == "dlib-resnet"  # no FaceNet weights here: auto falls back
    images = payload["images"]
    assert [Path(i["image"]).name for i in images] == ["multiface.jpg", "Aaron_Eckhart_0001.jpg"]
    assert len(images[0]["faces"]) == 6
    assert len(images[1]["faces"]) >= 1
    face = images[1]["faces"][0]
    x, y, w, h = face["box"]
    assert 40 < w < 200 and 40 < h < 250 and 0 < face["score"] <= 1
    assert len(face["landmarks"]) == 5
    for lx, ly in face["landmarks"]:
        assert x <= lx <= x + w and y <= ly <= y + h
    assert "dlib-resnet" in result.stderr  # the embedder choice is logged at start


def test_detect_bad_inputs_one_line_each(models_dir: Path, test_data: Path,
                                         tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((test_data / "group" / "multiface.jpg").read_bytes()[:200])
    tiny = tmp_path / "tiny.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    bomb = tmp_path / "bomb.png"
    _bomb_png(bomb)
    missing = tmp_path / "missing.jpg"
    files = [text, truncated, tiny, bomb, missing]
    result = run_cli(["detect", *map(str, files)], models_dir, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    for path in (text, truncated, bomb, missing):
        assert sum(line.startswith(f"{path}: ") for line in lines) == 1, result.stderr
    assert f"{tiny}: 0 face(s)" in result.stdout
    assert "too large" in result.stderr


def test_missing_models_one_line_naming_the_fix(tmp_path: Path, test_data: Path) -> None:
    empty = tmp_path / "no-models"
    result = run_cli(["detect", str(test_data / "group" / "multiface.jpg")], empty, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "facelive models fetch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_same_and_different(models_dir: Path, lfw_dir: Path, tmp_path: Path) -> None:
    a1 = lfw_dir / "Angelina_Jolie" / "Angelina_Jolie_0001.jpg"
    a2 = lfw_dir / "Angelina_Jolie" / "Angelina_Jolie_0002.jpg"
    b = lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"file_x,file_y\n{a1},{a2}\n{a1},{b}\n")
    result = run_cli(["compare", "--pairs", str(pairs), "--json"], models_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["embedder"] == "dlib-resnet" and 0 < payload["threshold"] < 2
    same, different = payload["pairs"]
    assert same["same"] is True and different["same"] is False
    assert same["distance"] < payload["threshold"] < different["distance"]
    plain = run_cli(["compare", str(a1), str(a2)], models_dir, tmp_path)
    assert plain.returncode == 0 and "same" in plain.stdout


def test_models_status(models_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    det2 = copy / "mtcnn" / "det2.npy"
    det2.write_bytes(det2.read_bytes()[:-10] + b"0123456789")
    result = run_cli(["models", "status", "--json"], copy, tmp_path)
    assert result.returncode == 0, result.stderr
    states = json.loads(result.stdout)["models"]
    assert states == {"mtcnn": "corrupt", "mtcnn-pypi": "present", "facenet": "missing",
                      "facenet-ckpt": "missing", "facenet-keras": "missing",
                      "dlib-resnet": "present"}


@pytest.mark.parametrize("args", [["compare", "only-one.jpg"], ["detect"]])
def test_usage_errors_are_short(args: list[str], models_dir: Path, tmp_path: Path) -> None:
    result = run_cli(args, models_dir, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
