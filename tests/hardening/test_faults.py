"""Fault tests: kill -9 during enrolment (50 times), a read-only or corrupt gallery file, a full
disk. Every fault is real: a SIGKILLed process, file permissions enforced even when the tests
run as root, writes refused by the kernel. Every test checks that its fault really happened.

Enrolment's persistence is Gallery.add_examples (one SQLite transaction), so most tests drive
the gallery in a child process with no models; the REST and `facelive serve` tests start the
real server.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
import requests

from facelive.recognition.gallery import FILENAME, FacePatch, Gallery
from facelive.recognition.patches import make_patch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "recognition"))
sys.path.insert(0, str(HERE.parent / "app"))
from gallery_samples import patches, vectors  # noqa: E402
from live_harness import start_server, stop_server  # noqa: E402

EMBEDDER = "dlib-resnet"
# Where the face is on LFW's 250x250 images (they are centred on it): enough for real face
# patches without running a detector.
LFW_BOX = np.array([68, 68, 182, 182], np.float32)
LFW_LANDMARKS = np.array([[100, 115], [150, 115], [125, 140], [105, 165], [145, 165]],
                         np.float32)


def lfw_patches(lfw_dir: Path, count: int, seed: int) -> list[FacePatch]:
    """Real face patches: the first photo of `count` different LFW people (seeded choice)."""
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())
    chosen = random.Random(seed).sample(people, count)
    out = []
    for person in chosen:
        bgr = cv2.imread(str(sorted(person.glob("*.jpg"))[0]))
        out.append(make_patch(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), LFW_BOX, LFW_LANDMARKS))
    return out


def unit_vectors(seed: int, n: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def contents(gallery: Gallery) -> dict[str, tuple[list[bytes], np.ndarray]]:
    """name -> (JPEG crops, vectors), both in example order."""
    names = {p.id: p.name for p in gallery.people()}
    crops: dict[int, list[bytes]] = {pid: [] for pid in names}
    for example in gallery.examples():
        crops[example.person].append(example.patch.jpeg)
    stored = gallery.vectors(EMBEDDER)
    return {name: (crops[pid], stored.matrix[stored.labels == pid])
            for pid, name in names.items()}


def assert_holds(found: tuple[list[bytes], np.ndarray], crops: list[bytes],
                 matrix: np.ndarray, what: str) -> None:
    assert found[0] == crops, f"{what}: crops differ ({len(found[0])} stored, {len(crops)} sent)"
    np.testing.assert_array_equal(found[1], matrix, err_msg=what)


def python_child(code: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# ================================================================ kill -9 during enrolment
ROUNDS = 50
PER_ENROLMENT = 8  # real face patches per enrolment: one transaction of ~100 kB
KILL_WITHIN_S = 0.03  # each child is killed this soon after it is ready (keeps the file small)
PLAN_SIZE = 5000  # enrolments the children may get through; far more than 50 rounds need

# Enrols plan[first], plan[first + 1]... into one gallery, saying "start k" before each
# add_examples and "committed k" once it has returned, so the parent knows what must survive.
ENROL_CHILD = textwrap.dedent(
    """
    import pickle, sys
    from facelive.recognition.gallery import Gallery
    path, plan_path, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(plan_path, "rb") as handle:
        pool_patches, pool_vectors, plan = pickle.load(handle)
    gallery = Gallery(path)
    print("ready", flush=True)
    for k in range(first, len(plan)):
        name, patch_ids, vector_ids = plan[k]
        crops = [pool_patches[i] for i in patch_ids]
        print(f"start {k}", flush=True)
        gallery.add_examples(name, crops, pool_vectors[list(vector_ids)], "dlib-resnet",
                             "webcam")
        print(f"committed {k}", flush=True)
    print("plan exhausted", flush=True)
    sys.stdin.read()
    """
)


def test_kill_9_during_enrolment_50_times_loses_nothing(tmp_path: Path, lfw_dir: Path) -> None:
    pool_patches = lfw_patches(lfw_dir, 24, seed=50)
    pool_vectors = unit_vectors(50, 257)  # a prime count: rows differ between neighbours
    plan = [(f"Person {k:04d}",
             tuple((k * PER_ENROLMENT + j) % len(pool_patches) for j in range(PER_ENROLMENT)),
             tuple((k * PER_ENROLMENT + j) % len(pool_vectors) for j in range(PER_ENROLMENT)))
            for k in range(PLAN_SIZE)]
    plan_path = tmp_path / "plan.pickle"
    plan_path.write_bytes(pickle.dumps((pool_patches, pool_vectors, plan)))
    expected = {
        name: ([pool_patches[i].jpeg for i in patch_ids], pool_vectors[list(vector_ids)])
        for name, patch_ids, vector_ids in plan
    }
    path = tmp_path / FILENAME
    rng = random.Random(2024)
    committed: set[str] = set()
    outcomes: Counter[str] = Counter()
    first = 0
    for round_ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", ENROL_CHILD, str(path), str(plan_path), str(first)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(rng.uniform(0, KILL_WITHIN_S))
        alive = child.poll() is None
        child.send_signal(signal.SIGKILL)  # no cleanup, no rollback, no atexit
        child.wait()
        # Complete lines only: the kill may cut the child's last line short ("star").
        lines = child.stdout.read().split("\n")[:-1]
        error = child.stderr.read()
        assert alive and child.returncode == -signal.SIGKILL, error
        assert "plan exhausted" not in lines
        started = [int(line.split()[1]) for line in lines if line.startswith("start ")]
        done = {int(line.split()[1]) for line in lines if line.startswith("committed ")}
        committed.update(plan[k][0] for k in done)
        in_flight = plan[started[-1]][0] if started and started[-1] not in done else None

        # Read-only: the check must not be what repairs or completes the file.
        with Gallery(path, read_only=True) as gallery:
            assert gallery.integrity_check() == "ok", f"round {round_}"
            stored = contents(gallery)
        if in_flight is None:
            outcomes["between enrolments"] += 1
        elif in_flight in stored:
            outcomes["in flight, found whole"] += 1
            committed.add(in_flight)  # whole is checked below with the others
        else:
            outcomes["in flight, found absent"] += 1
        missing = committed - set(stored)
        assert not missing, f"round {round_}: committed enrolments lost: {sorted(missing)}"
        assert set(stored) == committed, f"round {round_}: {set(stored) - committed} appeared"
        for name in committed:
            assert_holds(stored[name], *expected[name], f"round {round_}, {name}")
        first = started[-1] + 1 if started else first

    print(f"{ROUNDS} kills, {len(committed)} enrolments kept "
          f"({len(committed) * PER_ENROLMENT} examples): {dict(outcomes)}")
    # The test proves something only if kills landed inside enrolments. "Absent" ones died
    # before the commit (all but microseconds of that is inside the transaction), "whole" ones
    # after the commit's write (mostly during its fsync, or a checkpoint).
    in_flight_kills = outcomes["in flight, found whole"] + outcomes["in flight, found absent"]
    assert in_flight_kills >= ROUNDS // 2, outcomes
    assert outcomes["in flight, found absent"] >= ROUNDS // 10, outcomes
    assert len(committed) >= ROUNDS, outcomes


# ================================================================ read-only and corrupt files
# Root ignores file permissions through three capabilities. The children give them up (any
# process may drop its own), so that the permissions apply to them as to anyone else.
DROP_FILE_CAPABILITIES = textwrap.dedent(
    """
    import ctypes, os

    def drop_file_capabilities():
        if os.geteuid() != 0:
            return
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
        if libc.capget(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capget")
        keep = ~0b1110 & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[0], field, getattr(data[0], field) & keep)
        if libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
    """
)

READ_ONLY_CHILD = DROP_FILE_CAPABILITIES + textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from facelive.recognition.gallery import Gallery, GalleryError
    data = Path(sys.argv[1])
    drop_file_capabilities()
    result = {}
    try:
        open(data / "gallery.sqlite3", "r+b").close()
        result["file_writable"] = True
    except PermissionError:
        result["file_writable"] = False
    try:
        (data / "probe").touch()
        (data / "probe").unlink()
        result["folder_writable"] = True
    except PermissionError:
        result["folder_writable"] = False
    try:
        Gallery.in_dir(data).close()
        result["writable_open"] = "opened"
    except GalleryError as exc:
        result["writable_open"] = [type(exc).__name__, str(exc)]
    try:
        with Gallery.in_dir(data, read_only=True) as gallery:
            result["read_only_open"] = {p.name: p.examples for p in gallery.people()}
            result["vectors"] = len(gallery.vectors("dlib-resnet").matrix)
    except GalleryError as exc:
        result["read_only_open"] = [type(exc).__name__, str(exc)]
    print(json.dumps(result))
    """
)

# `facelive serve` with the capabilities dropped (the module run as `python -m` would run it).
SERVE_CHILD = DROP_FILE_CAPABILITIES + textwrap.dedent(
    """
    import runpy, sys
    drop_file_capabilities()
    try:  # a server that could write the file would start and serve, not fail
        open(sys.argv[1], "r+b").close()
        sys.exit(f"{sys.argv[1]} is still writable")
    except PermissionError:
        pass
    sys.argv = ["facelive", *sys.argv[2:]]
    runpy.run_module("facelive.cli.serve", run_name="__main__", alter_sys=True)
    """
)


def make_gallery(data: Path) -> Path:
    with Gallery.in_dir(data) as gallery:
        gallery.add_examples("Anna", patches(1, 3), vectors(1, 3), EMBEDDER, "upload")
        gallery.add_examples("Bob", patches(2, 2), vectors(2, 2), EMBEDDER, "webcam")
    return data / FILENAME


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry of a folder with its bytes (None for folders)."""
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in folder.iterdir()}


@pytest.mark.parametrize(("file_mode", "folder_mode"),
                         [(0o444, 0o755), (0o644, 0o555), (0o444, 0o555)],
                         ids=["read-only file", "read-only folder", "both"])
def test_read_only_gallery_is_refused_clearly_and_still_readable(
    tmp_path: Path, file_mode: int, folder_mode: int
) -> None:
    data = tmp_path / "data"
    path = make_gallery(data)
    before = listing(data)
    path.chmod(file_mode)
    data.chmod(folder_mode)
    try:
        result = python_child(READ_ONLY_CHILD, str(data))
    finally:
        data.chmod(0o755)
        path.chmod(0o644)
    # The permissions really applied to the child (root included).
    assert result["file_writable"] == bool(file_mode & stat.S_IWUSR), result
    assert result["folder_writable"] == bool(folder_mode & stat.S_IWUSR), result
    kind, message = result["writable_open"]
    assert kind == "GalleryError" and str(path) in message and "read-only" in message, message
    # Reading stays possible: a backup on read-only storage can still be listed.
    assert result["read_only_open"] == {"Anna": 3, "Bob": 2}, result
    assert result["vectors"] == 5
    after = listing(data)
    assert after[FILENAME] == before[FILENAME], "the gallery file changed"
    # At most SQLite's own empty side files (a reader's WAL index), never a new gallery.
    assert set(after) - set(before) <= {f"{FILENAME}-shm", f"{FILENAME}-wal"}, after.keys()
    assert not after.get(f"{FILENAME}-wal"), "a reader wrote to the WAL"


def test_read_only_folder_with_unmerged_changes_is_not_read_stale(tmp_path: Path) -> None:
    """A copy taken while a writer had changes only in the WAL, on read-only storage: reading
    the file without its WAL would hide committed people, so it is refused instead."""
    live = tmp_path / "live"
    with Gallery.in_dir(live) as gallery:
        gallery.add_examples("Anna", patches(1, 3), vectors(1, 3), EMBEDDER, "upload")
        data = tmp_path / "copy"
        data.mkdir()
        for suffix in ("", "-wal"):  # as a crash or a careless backup leaves them
            shutil.copy(live / f"{FILENAME}{suffix}", data / f"{FILENAME}{suffix}")
    assert (data / f"{FILENAME}-wal").stat().st_size > 0
    before = listing(data)
    data.chmod(0o555)
    try:
        result = python_child(READ_ONLY_CHILD, str(data))
    finally:
        data.chmod(0o755)
    assert result["folder_writable"] is False, result
    kind, message = result["read_only_open"]
    assert kind == "GalleryError" and "not yet merged" in message and str(data) in message
    assert listing(data) == before


def serve_and_fail(models_dir: Path, data: Path,
                   drop: bool) -> subprocess.CompletedProcess[str]:
    """`facelive serve` on `data`; drop: without the capabilities that bypass permissions."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("FACELIVE_TOKEN", "FACELIVE_HOST", "FACELIVE_PORT", "FACELIVE_CERTFILE",
                 "FACELIVE_KEYFILE"):
        env.pop(name, None)
    args = ["--data-dir", str(data), "--models-dir", str(models_dir),
            "--host", "127.0.0.1", "--port", "0"]
    command = ([sys.executable, "-c", SERVE_CHILD, str(data / FILENAME), *args] if drop
               else [sys.executable, "-m", "facelive.cli.serve", *args])
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2 and one `facelive: error:` line naming the problem (TensorFlow's start-up
    notices may come before it: the gallery is opened after the models are loaded)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "https://" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("facelive:")]
    assert len(errors) == 1 and errors[0].startswith("facelive: error: "), result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def assert_no_new_gallery(before: dict[str, bytes | None], after: dict[str, bytes | None]) -> None:
    assert after[FILENAME] == before[FILENAME], "the gallery file changed"
    # The server makes its certificate and token before it opens the gallery; nothing else.
    assert set(after) - set(before) <= {"tls", "token", "view_token"}, sorted(after)


def test_serve_refuses_a_read_only_gallery(tmp_path: Path, models_dir: Path) -> None:
    data = tmp_path / "data"
    path = make_gallery(data)
    path.chmod(0o444)
    before = listing(data)
    try:
        result = serve_and_fail(models_dir, data, drop=True)
    finally:
        path.chmod(0o644)
    assert_one_error_line(result, str(path), "read-only")
    assert_no_new_gallery(before, listing(data))


def test_serve_refuses_a_corrupt_gallery(tmp_path: Path, models_dir: Path) -> None:
    data = tmp_path / "data"
    path = make_gallery(data)
    # A half-copied file: the header and schema are fine, the data pages are missing.
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    before = listing(data)
    result = serve_and_fail(models_dir, data, drop=False)
    assert_one_error_line(result, str(path), "corrupt", "restore it from a backup")
    assert_no_new_gallery(before, listing(data))


# ================================================================ full disk
# Under a file size limit (RLIMIT_FSIZE) the kernel refuses writes past it (EFBIG; Python
# ignores SIGXFSZ): a real write failure, as a full disk gives, that needs no privileges.
FULL_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    sys.path.insert(0, sys.argv[3])
    from gallery_samples import patches, vectors
    from facelive.recognition.gallery import Gallery, GalleryError
    path, room = sys.argv[1], int(sys.argv[2])
    result = {}
    gallery = Gallery(path)
    largest = max(os.path.getsize(path + s) for s in ("", "-wal", "-shm")
                  if os.path.exists(path + s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest + room, resource.RLIM_INFINITY))
    try:
        gallery.add_examples("Carl", patches(3, 12), vectors(3, 12), "dlib-resnet", "upload")
        result["full"] = "stored"
    except GalleryError as exc:
        result["full"] = [type(exc).__name__, str(exc)]
    result["people_meanwhile"] = {p.name: p.examples for p in gallery.people()}
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    gallery.add_examples("Carl", patches(3, 12), vectors(3, 12), "dlib-resnet", "upload")
    result["people_after"] = {p.name: p.examples for p in gallery.people()}
    gallery.close()
    print(json.dumps(result))
    """
)


@pytest.mark.parametrize("room", [0, 20_000, 60_000])
def test_file_size_limit_fails_clearly_and_keeps_committed_data(tmp_path: Path,
                                                                room: int) -> None:
    path = make_gallery(tmp_path / "data")
    result = python_child(FULL_CHILD, str(path), str(room), str(HERE.parent / "recognition"))
    kind, message = result["full"]  # "stored" would mean the limit never bit
    assert kind == "GalleryFull" and str(path) in message, message
    assert "cannot grow" in message and "not saved" in message, message
    assert result["people_meanwhile"] == {"Anna": 3, "Bob": 2}
    assert result["people_after"] == {"Anna": 3, "Bob": 2, "Carl": 12}
    with Gallery(path, read_only=True) as gallery:
        assert gallery.integrity_check() == "ok"
        stored = contents(gallery)
    assert_holds(stored["Anna"], [p.jpeg for p in patches(1, 3)], vectors(1, 3), "Anna")
    assert_holds(stored["Bob"], [p.jpeg for p in patches(2, 2)], vectors(2, 2), "Bob")
    assert_holds(stored["Carl"], [p.jpeg for p in patches(3, 12)], vectors(3, 12), "Carl")


# A really full filesystem (ENOSPC): a small tmpfs in a private mount namespace. The child
# fills it, enrols (refused), frees the space, enrols again, and copies the gallery out.
TMPFS_CHILD = textwrap.dedent(
    """
    import errno, json, os, shutil, sys
    sys.path.insert(0, sys.argv[3])
    from gallery_samples import patches, vectors
    from facelive.recognition.gallery import Gallery, GalleryError
    disk, out = sys.argv[1], sys.argv[2]
    path = os.path.join(disk, "gallery.sqlite3")
    result = {}
    with Gallery(path) as gallery:
        gallery.add_examples("Anna", patches(1, 3), vectors(1, 3), "dlib-resnet", "upload")
    gallery = Gallery(path)
    filler = os.path.join(disk, "filler")
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(handle, b"x" * 4096)
    except OSError as exc:
        result["filled"] = exc.errno == errno.ENOSPC
    finally:
        os.close(handle)
    try:
        gallery.add_examples("Carl", patches(3, 12), vectors(3, 12), "dlib-resnet", "upload")
        result["full"] = "stored"
    except GalleryError as exc:
        result["full"] = [type(exc).__name__, str(exc)]
    try:
        with Gallery(path) as again:
            result["reopened"] = {p.name: p.examples for p in again.people()}
    except GalleryError as exc:
        result["reopened"] = [type(exc).__name__, str(exc)]
    os.remove(filler)
    gallery.add_examples("Carl", patches(3, 12), vectors(3, 12), "dlib-resnet", "upload")
    gallery.close()
    shutil.copy(path, out)
    print(json.dumps(result))
    """
)


def in_tmpfs(mount: Path, *command: str) -> list[str]:
    script = 'mount -t tmpfs -o size=1m tmpfs "$1" && shift && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh", str(mount), *command]


def test_full_disk_fails_clearly_and_keeps_committed_data(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("unshare") is None or subprocess.run(
        in_tmpfs(disk, "true"), capture_output=True
    ).returncode != 0:
        pytest.skip("no private mount namespace here (unshare -rm); the file size limit "
                    "tests above still make writes fail")
    out = tmp_path / "copy.sqlite3"
    command = in_tmpfs(disk, sys.executable, "-c", TMPFS_CHILD, str(disk), str(out),
                       str(HERE.parent / "recognition"))
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["filled"] is True
    kind, message = result["full"]
    assert kind == "GalleryFull" and "disk is full" in message and "not saved" in message
    assert str(disk / FILENAME) in message, message
    # Opening on a full disk neither fails nor rewrites anything.
    assert result["reopened"] == {"Anna": 3}, result
    with Gallery(out, read_only=True) as gallery:
        assert gallery.integrity_check() == "ok"
        stored = contents(gallery)
    assert set(stored) == {"Anna", "Carl"}
    assert_holds(stored["Anna"], [p.jpeg for p in patches(1, 3)], vectors(1, 3), "Anna")
    assert_holds(stored["Carl"], [p.jpeg for p in patches(3, 12)], vectors(3, 12), "Carl")


def test_rest_enrolment_on_a_full_disk_answers_507(tmp_path: Path, models_dir: Path,
                                                   lfw_dir: Path) -> None:
    """Through a real server: the file size limit is lowered on the running process (prlimit)
    for one enrolment, then lifted: as a disk that fills up and is freed."""
    server = start_server(models_dir, tmp_path / "data")

    def enrol(name: str, person: str) -> requests.Response:
        files = [("images", (p.name, p.read_bytes(), "image/jpeg"))
                 for p in sorted((lfw_dir / person).glob("*.jpg"))[:3]]
        return server.http.post(f"{server.url}/api/people/{quote(name)}/examples",
                                files=files, verify=False, timeout=120,
                                headers={"Authorization": f"Bearer {server.token}"})

    def people() -> dict[str, int]:
        listed = server.get("/api/people").json()["people"]
        return {p["name"]: p["examples"] for p in listed}

    path = server.data_dir / FILENAME
    try:
        assert enrol("Anna", "Colin_Powell").status_code == 200
        largest = max(os.path.getsize(f"{path}{s}") for s in ("", "-wal", "-shm")
                      if os.path.exists(f"{path}{s}"))
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE,
                         (largest + 4096, resource.RLIM_INFINITY))
        refused = enrol("Bob", "Tony_Blair")
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        assert refused.status_code == 507, refused.text
        message = refused.json()["error"]
        assert str(path) in message and "cannot grow" in message, message
        assert people() == {"Anna": 3}
        again = enrol("Bob", "Tony_Blair")
        assert again.status_code == 200, again.text
        assert again.json()["examples_added"] == 3
        assert people() == {"Anna": 3, "Bob": 3}
    finally:
        stop_server(server)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT p.name, COUNT(*) FROM people p JOIN examples e "
                            "ON e.person = p.id GROUP BY p.id ORDER BY p.name").fetchall()
    finally:
        conn.close()
    assert rows == [("Anna", 3), ("Bob", 3)]
