"""The hardening figure of one run: at least 1,000 hostile inputs (REST requests, Socket.IO
messages and connection attempts, counted by test_hostile_rest.py and test_hostile_socket.py in
tally.TALLY), with 0 server crashes, 0 responses 5xx (nor socket `server error` replies) and 0
gallery changes.

Runs after those modules (pytest takes a folder's files in name order); when they did not both
run to their end in this session (one file picked alone, say), there is no figure to check.
"""

from __future__ import annotations

import pytest
from tally import TALLY

MIN_HOSTILE_INPUTS = 1000


def test_a_thousand_hostile_inputs_did_no_harm(capsys: pytest.CaptureFixture) -> None:
    missing = {"REST", "socket"} - TALLY.finished
    if missing:
        pytest.skip(f"hostile modules not run to their end in this session: {sorted(missing)}")
    with capsys.disabled():
        print(f"\n{TALLY.line()}")
    assert TALLY.total >= MIN_HOSTILE_INPUTS, TALLY.line()
    assert (TALLY.crashes, TALLY.http_5xx, TALLY.server_errors, TALLY.gallery_changes) == (
        0, 0, 0, 0), TALLY.line()
