"""Calibrated match thresholds, one per embedder, kept in the data dir (`calibration.json`).

`facelive calibrate` measures a threshold on LFW and stores it here; the Recognizer (and every
tool that decides "same person or not") then takes, in this order: FACELIVE_THRESHOLD, the
stored calibration of the active embedder, the embedder's shipped default. A stored value is
only trusted for the embedder it was measured with, so switching embedders never applies one
model's threshold to another's distances.

File layout: {"version": 1, "embedders": {"dlib-resnet": {threshold, far, impostors, ...}}}
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facelive.atomic import PRIVATE, atomic_write

log = logging.getLogger(__name__)

FILENAME = "calibration.json"
VERSION = 1
ThresholdSource = Literal["FACELIVE_THRESHOLD", "calibration", "default"]
# Which impostor pairs a threshold is measured on (see tools/calibrate.py).
Impostors = Literal["listed", "all"]
IMPOSTOR_CHOICES: tuple[str, ...] = ("listed", "all")


@dataclass(frozen=True)
class Calibration:
    """A threshold measured for one embedder. threshold: Euclidean distance between unit
    embeddings (0..2); far: the target false-accept rate per impostor pair; impostors: which
    pairs it was measured on ("listed": the pairs file's different pairs, "all": every
    different-person pair among the pairs' images); measured_far, val (share of the same pairs
    accepted) and accuracy (over the listed pairs) at the threshold; recipe: the embedder's
    recipe it was measured with (a new recipe moves the distances, so it voids the value);
    pipeline: the whole embedding recipe (embedder, alignment, detector settings), for the
    record."""

    embedder: str
    threshold: float
    far: float
    impostors: str
    measured_far: float
    impostor_pairs: int
    val: float
    accuracy: float
    same_pairs: int
    recipe: str = ""
    pipeline: str = ""
    created: str = ""


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / FILENAME


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"version": VERSION, "embedders": {}}
    except (OSError, ValueError) as exc:
        # A damaged file must not stop recognition: fall back to the shipped default.
        log.warning("%s is unreadable (%s); ignoring it", path, exc)
        return {"version": VERSION, "embedders": {}}
    if not isinstance(data, dict) or not isinstance(data.get("embedders"), dict):
        log.warning("%s has an unknown layout; ignoring it", path)
        return {"version": VERSION, "embedders": {}}
    return data


def load_calibration(
    data_dir: Path, embedder: str, recipe: str | None = None
) -> Calibration | None:
    """The stored calibration of `embedder`, or None (none stored, unusable, or measured with
    another recipe than `recipe` when that is given)."""
    entry = _read(_path(data_dir))["embedders"].get(embedder)
    if not isinstance(entry, dict):
        return None
    known = {f.name for f in fields(Calibration)}
    try:
        calibration = Calibration(**{k: v for k, v in entry.items() if k in known})
        threshold = float(calibration.threshold)
    except (TypeError, ValueError):
        log.warning("calibration of %s in %s is malformed; ignoring it", embedder, data_dir)
        return None
    if not 0.0 < threshold <= 2.0 or calibration.embedder != embedder:
        log.warning("calibration of %s in %s is out of range; ignoring it", embedder, data_dir)
        return None
    if recipe and calibration.recipe and calibration.recipe != recipe:
        log.warning(
            "calibration of %s in %s was measured with %s, the embedder is now %s; ignoring "
            "it (run `facelive calibrate` again)", embedder, data_dir, calibration.recipe, recipe
        )
        return None
    return calibration


def save_calibration(data_dir: Path, calibration: Calibration) -> Path:
    """Store (or replace) the calibration of its embedder, keeping the others; atomic."""
    path = _path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read(path)
    data["version"] = VERSION
    data["embedders"][calibration.embedder] = asdict(calibration)
    atomic_write(path, json.dumps(data, indent=2) + "\n", mode=PRIVATE)
    return path


def active_threshold(
    data_dir: Path,
    embedder: str,
    default: float,
    override: float | None = None,
    recipe: str | None = None,
) -> tuple[float, ThresholdSource]:
    """The threshold to decide with and where it came from: the override (FACELIVE_THRESHOLD)
    first, then the stored calibration of `embedder` (if measured with `recipe`), then
    `default` (the shipped one)."""
    if override is not None:
        return float(override), "FACELIVE_THRESHOLD"
    stored = load_calibration(data_dir, embedder, recipe)
    if stored is not None:
        return float(stored.threshold), "calibration"
    return float(default), "default"


def threshold_at_far(smallest: np.ndarray, total: int, far: float) -> float:
    """The largest threshold accepting at most `far` of `total` impostor pairs, given (at
    least) the smallest of their distances, sorted ascending. Rounded down to 1e-4 so that
    the stored number is short and still meets the target."""
    if total <= 0:
        raise ValueError("no impostor pairs to calibrate on")
    allowed = int(math.floor(far * total + 1e-9))
    if allowed >= len(smallest):
        if len(smallest) < total:
            raise ValueError("not enough of the smallest impostor distances were kept")
        return math.floor(float(smallest[-1]) * 1e4) / 1e4
    # Accept at most `allowed` pairs: stay strictly below the next impostor distance.
    cut = float(smallest[allowed])
    threshold = math.floor(cut * 1e4) / 1e4
    if threshold >= cut:
        threshold -= 1e-4
    return round(threshold, 4)
