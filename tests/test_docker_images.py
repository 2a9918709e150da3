"""docker/Dockerfile built and run: the `runtime` image serves, turns healthy, enrols and
identifies over REST with the token and keeps its gallery in its volume across containers; the
`notebook` image runs lfw_analysis.ipynb headless on a tiny LFW subset mounted read-only.

Needs a Docker daemon (CI starts one: .ci/docker-daemon); without one the tests skip with the
reason (fail in CI). The daemon runs without iptables or a bridge, so builds and containers use
the host's network, and each container gets a free port of its own.

FACELIVE_DOCKER_BASES chooses the base images: `standin` (the default; Docker Hub cannot be
reached from the CI machines) makes stand-ins under the Dockerfile's tags (tests/docker_bases.py),
`hub` pulls the real ones (`docker build --pull`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import skip_or_fail
from docker_bases import StandinError, ensure_standins
from test_notebooks import SMALL_RUNS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
IMAGE = "facelive-test"  # IMAGE:runtime and IMAGE:notebook
BASES = os.environ.get("FACELIVE_DOCKER_BASES", "standin")
HEALTHY_TIMEOUT_S = 300  # TensorFlow's import and the warm-up, in a container on 2 busy cores
BUSH = [f"George_W_Bush/George_W_Bush_{i:04d}.jpg" for i in range(1, 7)]
POWELL = [f"Colin_Powell/Colin_Powell_{i:04d}.jpg" for i in range(1, 5)]


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        skip_or_fail("no docker CLI (apt-get install docker.io)")
    return found


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run([docker_cli(), *args], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} failed ({result.returncode}):\n"
                    f"{(result.stdout + result.stderr)[-4000:]}")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def daemon() -> None:
    result = subprocess.run([docker_cli(), "info", "-f", "{{.ServerVersion}}"],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        skip_or_fail("no Docker daemon answers (as root, `bash .ci/docker-daemon` installs and "
                     f"starts one): {result.stderr.strip()[-300:]}")


def _build(target: str) -> float:
    started = time.monotonic()
    args = ["build", "--network", "host", "-f", "docker/Dockerfile", "--target", target,
            "-t", f"{IMAGE}:{target}"]
    if BASES == "hub":
        args.append("--pull")
    result = subprocess.run(["nice", docker_cli(), *args, "."], cwd=REPO, capture_output=True,
                            text=True, timeout=1800)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"docker build --target {target} failed:\n{log[-6000:]}")
    # install.sh must not print a failure in a build that succeeds (its fallback was noisy).
    for failure in ("project.license", "subprocess-exited-with-error"):
        assert failure not in log, log[-6000:]
    for line in log.splitlines():
        if "install.sh:" in line:
            print("docker:", line.strip())
    return time.monotonic() - started


@pytest.fixture(scope="module")
def images(daemon: None) -> dict[str, str]:
    if BASES == "standin":
        try:
            ensure_standins(docker_cli(), log=lambda line: print("docker:", line))
        except StandinError as error:
            skip_or_fail(f"no stand-in base images: {error}")
    elif BASES != "hub":
        pytest.fail(f"FACELIVE_DOCKER_BASES={BASES!r}: use 'standin' or 'hub'")
    # The notebook target first: the classic builder builds every stage before the target, so
    # building runtime second reuses it (and the shared base) from the cache.
    for target in ("notebook", "runtime"):
        seconds = _build(target)
        size = int(docker("image", "inspect", "-f", "{{.Size}}", f"{IMAGE}:{target}"))
        print(f"docker: {IMAGE}:{target} built in {seconds:.0f} s, {size / 1e9:.2f} GB")
    # Earlier builds of these tags, now untagged: their layers would fill the disk run by run.
    docker("image", "prune", "-f", timeout=300)
    return {"runtime": f"{IMAGE}:runtime", "notebook": f"{IMAGE}:notebook"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Container:
    """`docker run -d` of the runtime image on a free port of the host's network."""

    def __init__(self, image: str, volume: str, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.http = requests.Session()
        # The image's HEALTHCHECK, probed every 2 s instead of 30 s so the test waits less.
        self.id = docker(
            "run", "-d", "--network", "host", "--health-interval", "2s",
            "-v", f"{volume}:/data", "-e", f"FACELIVE_PORT={self.port}",
            "-e", "FACELIVE_HOST=127.0.0.1", "-e", f"FACELIVE_TOKEN={token}", image,
        )
        self.started = time.monotonic()

    def state(self) -> dict[str, Any]:
        return json.loads(docker("inspect", "-f", "{{json .State}}", self.id))

    def logs(self) -> str:
        return docker("logs", "--tail", "60", self.id, check=False)

    def wait_healthy(self) -> float:
        """Seconds from `docker run` until Docker reports the container healthy."""
        while time.monotonic() - self.started < HEALTHY_TIMEOUT_S:
            state = self.state()
            health = state.get("Health", {}).get("Status")
            if health == "healthy":
                return time.monotonic() - self.started
            assert state["Running"] and health != "unhealthy", (state, self.logs())
            time.sleep(1)
        pytest.fail(f"not healthy after {HEALTHY_TIMEOUT_S} s:\n{self.logs()}")

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url + path, verify=False, timeout=120, **kwargs)

    def remove(self) -> None:
        docker("rm", "-f", self.id, check=False)


@pytest.fixture()
def volume() -> Iterator[str]:
    name = f"facelive-test-{secrets.token_hex(4)}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "-f", name, check=False)


def _upload(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def _identify(container: Container, path: Path) -> list[dict[str, Any]]:
    # Viewing is closed by default (issue 16): identify with the owner's token.
    response = container.request(
        "POST", "/api/identify", headers={"Authorization": f"Bearer {container.token}"},
        files={"image": (path.name, path.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()["faces"]


def test_runtime_image_serves_enrols_and_keeps_its_gallery(
    images: dict[str, str], volume: str, lfw_dir: Path
) -> None:
    token = secrets.token_urlsafe(16)
    bush, powell = [lfw_dir / p for p in BUSH], [lfw_dir / p for p in POWELL]
    first = Container(images["runtime"], volume, token)
    try:
        seconds = first.wait_healthy()
        print(f"docker: healthy {seconds:.0f} s after docker run")
        # The app's process (PID 1 after the start script's exec) is not root.
        status = docker("exec", first.id, "cat", "/proc/1/status")
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid == "1000", status
        # Only the runtime's needs: no notebook or test tools in this image.
        docker("exec", first.id, "python", "-c", "import importlib.util as u, sys; "
               "sys.exit(any(u.find_spec(m) for m in ('jupyterlab', 'matplotlib', 'pytest')))")

        refused = first.request("POST", "/api/people/George W Bush/examples",
                                files=_upload(bush[:2]))
        assert refused.status_code == 401, refused.text
        auth = {"Authorization": f"Bearer {token}"}
        for name, photos in (("George W Bush", bush[:5]), ("Colin Powell", powell[:3])):
            added = first.request("POST", f"/api/people/{name}/examples", headers=auth,
                                  files=_upload(photos))
            assert added.status_code == 200, added.text
            assert added.json()["examples_added"] == len(photos), added.json()
        [face] = _identify(first, bush[5])  # a photo that was not enrolled
        assert face["name"] == "George W Bush", face
        print(f"docker: identified {bush[5].name} as {face['name']} "
              f"(distance {face['distance']:.3f}, confidence {face['confidence']:.2f})")
    finally:
        first.remove()

    # A new container on the same volume: the gallery (and the token's changes) survived.
    second = Container(images["runtime"], volume, token)
    try:
        second.wait_healthy()
        people = second.request("GET", "/api/people",
                                headers={"Authorization": f"Bearer {token}"}).json()["people"]
        assert [(p["name"], p["examples"]) for p in people] == [
            ("Colin Powell", 3), ("George W Bush", 5)]
        [face] = _identify(second, powell[3])
        assert face["name"] == "Colin Powell", face
    finally:
        second.remove()


def _tiny_lfw(lfw_dir: Path, target: Path, per_half: int) -> Path:
    """The first `per_half` matched and mismatched pairs of every fold (its own pairs.txt) and
    the photos they name, plus 12 photos of four people with many: enough for the notebook's
    identification part (10 enrolled and 2 probes each; strangers from the pairs' people)."""
    lines = (lfw_dir / "pairs.txt").read_text().split("\n")
    folds, n = (int(v) for v in lines[0].split())
    rows = [line.split() for line in lines[1:] if line.strip()]
    kept = []
    for fold in range(folds):
        block = rows[2 * n * fold : 2 * n * (fold + 1)]
        kept += block[:per_half] + block[n : n + per_half]
    photos = set()
    for row in kept:
        if len(row) == 3:
            photos |= {(row[0], row[1]), (row[0], row[2])}
        else:
            photos |= {(row[0], row[1]), (row[2], row[3])}
    subset = target / "lfw"
    for name, number in photos:
        source = lfw_dir / name / f"{name}_{int(number):04d}.jpg"
        (subset / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, subset / name / source.name)
    for name in ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld"):
        (subset / name).mkdir(parents=True, exist_ok=True)
        for source in sorted((lfw_dir / name).glob("*.jpg"))[:12]:
            shutil.copy2(source, subset / name / source.name)
    (subset / "pairs.txt").write_text(
        f"{folds}\t{per_half}\n" + "".join("\t".join(row) + "\n" for row in kept))
    return target


def test_notebook_image_runs_the_analysis_headless(
    images: dict[str, str], lfw_dir: Path, tmp_path: Path
) -> None:
    env, figures_drawn = SMALL_RUNS["lfw_analysis"]
    data = _tiny_lfw(lfw_dir, tmp_path / "data", per_half=int(env["FACELIVE_NB_PAIRS"]) // 2)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # written by the image's user
    environment = [f"-e{key}={value}" for key, value in env.items()]
    started = time.monotonic()
    docker(
        "run", "--rm", "--network", "host", "-v", f"{data}:/shared/data:ro", "-v", f"{out}:/out",
        *environment, "-e", "FACELIVE_NB_FIGURES=/out/figures", images["notebook"],
        "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir", "/out",
        "--ExecutePreprocessor.timeout=600", "notebooks/lfw_analysis.ipynb",
        timeout=900,
    )
    print(f"docker: lfw_analysis.ipynb ran in the notebook image in "
          f"{time.monotonic() - started:.0f} s")
    executed = json.loads((out / "lfw_analysis.ipynb").read_text())
    drawn = sum("image/png" in output.get("data", {})
                for cell in executed["cells"] if cell["cell_type"] == "code"
                for output in cell.get("outputs", []))
    assert drawn == figures_drawn
    assert len(list((out / "figures").glob("*.png"))) == figures_drawn
