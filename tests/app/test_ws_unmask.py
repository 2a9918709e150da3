"""Our WebSocket unmasking gives exactly eventlet's bytes, and `serve` installs it."""

from __future__ import annotations

import random
import subprocess
import sys
import warnings

import pytest

from facelive.app import ws_unmask

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet's maintenance-mode notice
    from eventlet.websocket import RFC6455WebSocket

# eventlet's own function, kept before anything replaces it on the class.
ORIGINAL = RFC6455WebSocket.__dict__["_apply_mask"].__func__


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 127, 1000, 45_001])
def test_same_bytes_as_eventlet(size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    mask = rng.randbytes(4)
    for offset in range(6):
        assert ws_unmask.apply_mask(data, mask, size, offset) == ORIGINAL(data, mask, size, offset)
    assert ws_unmask.apply_mask(bytearray(data), mask) == ORIGINAL(data, mask)
    # Unmasking twice gives the frame back (XOR), as a client's masking then ours does.
    assert ws_unmask.apply_mask(ws_unmask.apply_mask(data, mask), mask) == data


def test_leading_zero_bytes_survive() -> None:
    data, mask = b"\x00\x00\x00\x07", b"\x00\x00\x00\x00"
    assert ws_unmask.apply_mask(data, mask) == data


def test_install_replaces_the_class_method() -> None:
    class Fake:
        @staticmethod
        def _apply_mask(data, mask, length=None, offset=0):  # noqa: ANN001, ANN205
            raise AssertionError("the byte-by-byte original must not be called")

    ws_unmask.install(Fake)
    ws_unmask.install(Fake)  # idempotent
    assert Fake._apply_mask(b"ab", b"\x01\x02\x03\x04", 2, 0) == ORIGINAL(
        b"ab", b"\x01\x02\x03\x04", 2, 0)


def test_serve_installs_it() -> None:
    """serve()'s eventlet set-up puts our function on eventlet's class (the path every real
    server takes: `facelive serve`, the tests' live servers, the bench). In a child process:
    the set-up monkey-patches the standard library, which this test process must keep."""
    code = ("from facelive.app import server, ws_unmask; server._patch_eventlet(); "
            "from eventlet.websocket import RFC6455WebSocket as W; "
            "print(W.__dict__['_apply_mask'].__func__ is ws_unmask.apply_mask)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
