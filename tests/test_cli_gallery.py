"""The gallery subcommands (cli/gallery_commands.py) as the CLI runs them, on real LFW photos
with the real models: enroll, identify --json, people, gallery export/import, reembed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from facelive.cli.common import run_command
from facelive.cli.gallery_commands import add_gallery_commands


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse and dispatch like facelive.cli.main does: an error -> one line, exit 2."""
    parser = argparse.ArgumentParser(prog="facelive")
    add_gallery_commands(parser.add_subparsers(dest="command", required=True))
    code = run_command(parser.parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def common(models_dir: Path, tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--models-dir", str(models_dir)]


def test_gallery_commands_end_to_end(
    common: list[str], lfw_dir: Path, test_data: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_only = common[:2]
    code, out, _ = run(["people", "list", *data_only], capsys)
    assert code == 0 and "no people" in out

    agassi = sorted((lfw_dir / "Andre_Agassi").glob("*.jpg"))
    group = test_data / "group" / "two_people.jpg"
    enroll = [str(p) for p in agassi[:3]] + [str(group)]
    code, out, err = run(["enroll", *common, "--embedder", "dlib-resnet", "Andre Agassi",
                          *enroll], capsys)
    assert code == 1  # one photo skipped
    assert "Andre Agassi: 3 added, 1 skipped" in out
    assert f"{group}: 2 faces found" in err

    folder = tmp_path / "people" / "Angelina_Jolie"
    folder.mkdir(parents=True)
    for photo in sorted((lfw_dir / "Angelina_Jolie").glob("*.jpg"))[:6]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    code, out, err = run(["enroll", *common, "--from-dir", str(folder.parent), "--json"],
                         capsys)
    payload = json.loads(out)
    (person,) = payload["people"]
    assert person["name"] == "Angelina Jolie" and person["added"] >= 3
    assert code == (1 if person["skipped"] else 0)

    missing = tmp_path / "missing.jpg"
    code, out, err = run(["identify", *common, "--json", str(agassi[5]), str(missing)], capsys)
    assert code == 1 and f"{missing}:" in err
    payload = json.loads(out)
    assert payload["embedder"] == "dlib-resnet"
    first, second = payload["images"]
    assert first["image"] == str(agassi[5]) and second["faces"] == [] and "error" in second
    face = max(first["faces"], key=lambda f: f["box"][2] * f["box"][3])
    assert set(face) == {"box", "name", "distance", "confidence"}
    assert face["name"] == "Andre Agassi" and 0 <= face["confidence"] <= 1

    code, out, _ = run(["people", "list", *data_only, "--json"], capsys)
    listed = {p["name"]: p["examples"] for p in json.loads(out)["people"]}
    assert listed["Andre Agassi"] == 3 and set(listed) == {"Andre Agassi", "Angelina Jolie"}

    code, out, err = run(["people", "rename", *data_only, "andre agassi", "ANGELINA JOLIE"],
                         capsys)
    assert code == 2 and err.count("\n") == 1 and "already a person" in err
    code, out, _ = run(["people", "rename", *data_only, "andre agassi", "André Agassi"], capsys)
    assert code == 0

    archive = tmp_path / "backup.zip"
    assert run(["gallery", "export", *data_only, str(archive)], capsys)[0] == 0
    code, _, err = run(["people", "clear", *data_only], capsys)
    assert code == 2 and "--yes" in err
    assert run(["people", "clear", *data_only, "--yes"], capsys)[0] == 0
    code, out, _ = run(["gallery", "import", *data_only, str(archive)], capsys)
    assert code == 0 and "2 new people" in out
    code, _, err = run(["people", "delete", *data_only, "Nobody"], capsys)
    assert code == 2 and "no person named" in err
    code, out, _ = run(["people", "delete", *data_only, "andré agassi"], capsys)
    assert code == 0 and "3 example(s)" in out

    code, out, _ = run(["reembed", *common, "--all"], capsys)
    assert code == 0 and f"{listed['Angelina Jolie']} face(s) re-embedded" in out

    code, _, err = run(["enroll", *common, "a/b", str(agassi[0])], capsys)
    assert code == 2 and "'/'" in err
