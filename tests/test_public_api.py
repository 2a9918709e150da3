"""`import facelive` is the public API: lazy (nothing heavy at import, so `serve` can patch the
standard library for eventlet first), and every listed name resolves to the real object."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import facelive


def test_import_facelive_loads_nothing_heavy() -> None:
    code = ("import sys, facelive; print(','.join(m for m in ('tensorflow', 'flask', 'eventlet',"
            " 'numpy', 'cv2', 'facelive.settings') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=True)
    assert out.stdout.strip() == ""


def test_every_public_name_resolves_and_is_listed() -> None:
    from facelive.errors import FaceLiveError
    from facelive.settings import Settings

    assert facelive.Settings is Settings
    assert facelive.FaceLiveError is FaceLiveError
    names = [n for n in facelive.__all__ if n != "__version__"]
    assert len(names) >= 12
    for name in names:
        assert getattr(facelive, name).__module__.startswith("facelive."), name
        assert name in dir(facelive)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        facelive.nothing  # noqa: B018
