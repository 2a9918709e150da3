"""Stand-in base images for building docker/Dockerfile where Docker Hub cannot be reached.

Made on the machine, under the tags the Dockerfile names, so that the Dockerfile is built
unchanged: Debian bookworm from `debootstrap` (Debian's mirror), the Python 3.11 that runs the
tests copied into it as the python image's interpreter (in /usr/local, as there), Debian's
nodejs and npm as the node image; both trust this machine's CA bundle (the registries may be
reached through a TLS proxy that only the host's bundle knows). Each carries a label with a key
of its recipe and inputs: a rerun reuses it, a changed recipe or interpreter remakes it. An
image under such a tag without the label (a real one, pulled) is used as it is.

A module, not a conftest.py (see tests/app/live_harness.py); `python tests/docker_bases.py`
makes the stand-ins by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
LABEL = "org.facelive.standin"
DEBIAN_TAG = "facelive-standin/debian:bookworm"
DEBIAN_MIRROR = os.environ.get("FACELIVE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path(os.environ.get("FACELIVE_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# Bump when a recipe below changes: stand-ins with another key are remade.
RECIPE = "1"
# What the python image's slim Debian carries beside Python: the libraries its modules link
# (ssl, sqlite3, ctypes, bz2, lzma, readline, curses, uuid, pyexpat), certificates, zones.
DEBIAN_PACKAGES = [
    "ca-certificates", "netbase", "tzdata", "libssl3", "libsqlite3-0", "libffi8",
    "libbz2-1.0", "liblzma5", "libreadline8", "libncursesw6", "libuuid1", "libexpat1",
    "libnsl2", "libtirpc3", "zlib1g",
]
# Where the stand-ins look for certificates (the host's bundle replaces Debian's).
CA_ENV = (
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "
    "PIP_CERT=/etc/ssl/certs/ca-certificates.crt "
    "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt "
    "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
)
# Parts of the interpreter's tree that no image needs: its installed packages (a venv is made
# from ensurepip), the test suite, the static library, the GUI modules.
SKIPPED = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "__pycache__",
           "libpython3.11.a"}

Log = Callable[[str], None]


class StandinError(RuntimeError):
    """A stand-in base could not be made (with what failed)."""


def base_images(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The Dockerfile's base images by ARG name (PYTHON_IMAGE, NODE_IMAGE): its defaults."""
    found = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", dockerfile.read_text(), re.MULTILINE))
    for name in ("PYTHON_IMAGE", "NODE_IMAGE"):
        if name not in found:
            raise StandinError(f"{dockerfile}: no ARG {name}=... default")
    return found


def run(command: Sequence[str], *, timeout: float, log: Log, **kwargs: object) -> str:
    """Run a command; its output goes to the error when it fails."""
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                            **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise StandinError(f"{' '.join(command[:4])} ... failed ({result.returncode}):\n{tail}")
    return result.stdout


def _label(docker: str, tag: str) -> str | None:
    """The stand-in key of the local image `tag`: None when there is no such image, "" for an
    image that is not a stand-in."""
    result = subprocess.run(
        [docker, "image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        return None
    value = result.stdout.strip()
    return "" if value in ("", "<no value>") else value


def _key(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in (RECIPE, *parts):
        digest.update(str(part).encode() + b"\0")
    return digest.hexdigest()[:16]


def _ca_digest() -> str:
    if not HOST_CA_BUNDLE.is_file():
        raise StandinError(f"no CA bundle at {HOST_CA_BUNDLE} (set FACELIVE_CA_BUNDLE)")
    return hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()


def _debian(docker: str, log: Log) -> str:
    key = _key("debian", DEBIAN_MIRROR, *DEBIAN_PACKAGES)
    if _label(docker, DEBIAN_TAG) == key:
        return key
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).is_file():
        raise StandinError("debootstrap is not installed (apt-get install debootstrap)")
    log(f"debootstrap bookworm from {DEBIAN_MIRROR}")
    with tempfile.TemporaryDirectory(prefix="facelive-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        run(["nice", debootstrap, "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
             "bookworm", str(root), DEBIAN_MIRROR], timeout=900, log=log)
        # An image, not a machine: no downloaded packages or package lists in it.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."],
                               stdout=subprocess.PIPE)
        try:
            run([docker, "import", "--change", f"LABEL {LABEL}={key}",
                 "--change", 'CMD ["bash"]', "-", DEBIAN_TAG],
                timeout=600, log=log, stdin=tar.stdout)
        finally:
            tar.wait(timeout=60)
    return key


def _copy_interpreter(prefix: Path, target: Path) -> None:
    """The interpreter at `prefix` as /usr/local would hold it: python3.11, libpython, the
    standard library and headers (no installed packages)."""
    (target / "bin").mkdir(parents=True)
    shutil.copy2(prefix / "bin" / "python3.11", target / "bin" / "python3.11")
    (target / "lib").mkdir()
    for library in prefix.glob("lib/libpython3*.so*"):
        shutil.copy2(library, target / "lib" / library.name, follow_symlinks=False)
    shutil.copytree(prefix / "lib" / "python3.11", target / "lib" / "python3.11",
                    symlinks=True, ignore=lambda _dir, names: SKIPPED & set(names))
    (target / "lib" / "python3.11" / "site-packages").mkdir()
    if (prefix / "include" / "python3.11").is_dir():
        shutil.copytree(prefix / "include" / "python3.11", target / "include" / "python3.11")


def _build(docker: str, context: Path, dockerfile: str, tag: str, log: Log) -> None:
    (context / "Dockerfile").write_text(dockerfile)
    shutil.copy2(HOST_CA_BUNDLE, context / "host-ca.crt")
    run(["nice", docker, "build", "--network", "host", "-q", "-t", tag, str(context)],
        timeout=900, log=log)


def _python(docker: str, tag: str, debian_key: str, log: Log) -> None:
    prefix = Path(sys.base_prefix)
    version = sys.version_info
    if version[:2] != (3, 11) or version < (3, 11, 5):
        raise StandinError(f"the tests run on Python {sys.version.split()[0]}: a stand-in "
                           "python image needs 3.11 >= 3.11.5 (the pins need it)")
    key = _key("python", debian_key, sys.version, prefix, _ca_digest())
    if _label(docker, tag) in (key, ""):
        return
    log(f"stand-in {tag}: Python {sys.version.split()[0]} from {prefix}")
    with tempfile.TemporaryDirectory(prefix="facelive-python-") as tmp:
        context = Path(tmp)
        _copy_interpreter(prefix, context / "python")
        _build(docker, context, f"""\
FROM {DEBIAN_TAG}
COPY python/ /usr/local/
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
RUN ldconfig && ln -s python3.11 /usr/local/bin/python3 && ln -s python3.11 /usr/local/bin/python \\
    && python3 -c "import ssl, sqlite3, ctypes, bz2, lzma, zlib, uuid, ensurepip, venv"
ENV LANG=C.UTF-8 {CA_ENV}
LABEL {LABEL}={key}
CMD ["python3"]
""", tag, log)


def _node(docker: str, tag: str, debian_key: str, log: Log) -> None:
    key = _key("node", debian_key, _ca_digest())
    if _label(docker, tag) in (key, ""):
        return
    log(f"stand-in {tag}: Debian's nodejs and npm")
    with tempfile.TemporaryDirectory(prefix="facelive-node-") as tmp:
        _build(docker, Path(tmp), f"""\
FROM {DEBIAN_TAG}
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \\
    && rm -rf /var/lib/apt/lists/* && node --version && npm --version
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV {CA_ENV}
LABEL {LABEL}={key}
CMD ["node"]
""", tag, log)


def ensure_standins(docker: str = "docker", log: Log = print) -> dict[str, str]:
    """Make (or reuse) the stand-in bases under the Dockerfile's tags; returns those tags."""
    if os.geteuid() != 0:
        raise StandinError("making stand-in bases needs root (debootstrap)")
    images = base_images()
    debian_key = _debian(docker, log)
    _python(docker, images["PYTHON_IMAGE"], debian_key, log)
    _node(docker, images["NODE_IMAGE"], debian_key, log)
    return images


if __name__ == "__main__":
    print(ensure_standins())
