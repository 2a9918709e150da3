"""kill -9 in the middle of an enrolment: a real subprocess writes to a real gallery (the SQLite
file, and a real PostgreSQL database) and is killed at random instants; every time, the
gallery must hold the last committed state."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from gallery_samples import patches, vectors

from facelive.recognition.gallery import Gallery

B_EXAMPLES = 40

# The child enrols B (B_EXAMPLES big face patches in one transaction), deletes B, enrols B
# again... and says what it is about to do before each step, so the parent knows whether the
# kill landed inside a transaction.
CHILD = textwrap.dedent(
    f"""
    import sys
    import numpy as np
    from facelive.recognition.gallery import Gallery
    from facelive.recognition.gallery_pg import PgGallery
    sys.path.insert(0, {str(Path(__file__).parent)!r})
    from gallery_samples import patches, vectors

    crops = patches(2, {B_EXAMPLES})
    vecs = vectors(2, {B_EXAMPLES})
    target = sys.argv[1]
    gallery = PgGallery(target) if target.startswith("postgresql:") else Gallery(target)
    print("ready", flush=True)
    while True:
        print("adding", flush=True)
        gallery.add_examples("B", crops, vecs, "dlib-resnet", "upload")
        print("added", flush=True)
        print("deleting", flush=True)
        gallery.delete("B")
        print("deleted", flush=True)
    """
)


def snapshot_of(gallery: Gallery, name: str) -> tuple[int, list[bytes], np.ndarray] | None:
    people = {p.name: p for p in gallery.people()}
    if name not in people:
        return None
    pid = people[name].id
    stored = gallery.vectors("dlib-resnet")
    crops = [e.patch.jpeg for e in gallery.examples() if e.person == pid]
    return people[name].examples, crops, stored.matrix[stored.labels == pid]


def open_target(target: str) -> Gallery:
    if target.startswith("postgresql:"):
        from facelive.recognition.gallery_pg import PgGallery

        return PgGallery(target)  # type: ignore[return-value]
    return Gallery(target)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "gallery.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def test_kill_9_mid_enrolment_leaves_the_last_committed_state(target: str) -> None:
    path = target
    with open_target(path) as gallery:
        gallery.add_examples("A", patches(1, 5), vectors(1, 5), "dlib-resnet", "webcam")
        a_before = snapshot_of(gallery, "A")
    b_crops = [p.jpeg for p in patches(2, B_EXAMPLES)]
    b_vectors = vectors(2, B_EXAMPLES)
    rng = random.Random(1234)
    outcomes: list[tuple[str, str]] = []
    for _attempt in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "ready", child.stderr.read() if child.stderr else line
        time.sleep(rng.uniform(0.02, 0.5))
        child.kill()  # SIGKILL: no cleanup, no rollback, no atexit
        child.wait()
        steps = child.stdout.read().split()
        last = steps[-1] if steps else "ready"

        with open_target(path) as gallery:
            assert gallery.integrity_check() == "ok"
            assert snapshot_of(gallery, "A") is not None
            a_now = snapshot_of(gallery, "A")
            assert a_now[0] == a_before[0] and a_now[1] == a_before[1]
            np.testing.assert_array_equal(a_now[2], a_before[2])
            b = snapshot_of(gallery, "B")
            if b is None:
                state = "absent"
            else:
                count, crops, matrix = b
                assert count == B_EXAMPLES and crops == b_crops
                np.testing.assert_array_equal(matrix, b_vectors)
                state = "whole"
            # Leave B absent for the next round, as the child expects.
            if b is not None:
                gallery.delete("B")
        outcomes.append((last, state))
        mid = sum(step in ("adding", "deleting") for step, _ in outcomes)
        if _attempt >= 5 and mid >= 4:
            break
    print("kill instants (last step -> B):", outcomes)
    # The test means something only if kills landed inside transactions.
    assert sum(step in ("adding", "deleting") for step, _ in outcomes) >= 1, outcomes
    # A kill after "added" (before "deleting") must find B whole; after "deleted", absent.
    for step, state in outcomes:
        if step == "added":
            assert state == "whole", outcomes
        if step in ("deleted", "ready"):
            assert state == "absent", outcomes
