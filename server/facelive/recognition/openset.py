"""The open-set rule that knows the gallery: a match threshold for the number of people enrolled.

A stranger is named when some enrolled photo is within the threshold (and the margin rule of
knn.py lets the match through), so the share of strangers named grows with the gallery: one
threshold is too strict for the 1-5 people most galleries hold and too loose for 1,000. The
rule here picks, for the gallery at hand, the loosest threshold whose expected stranger
false-accept rate (FAR) is the target, from a table of stranger FAR against threshold and
gallery size measured on LFW (`FarTable`).

Gallery size is counted in *effective people*: people x (photos per person) ** PHOTO_EXPONENT.
More photos of a person give a stranger more chances to fall near one of them, but a person's
photos resemble each other, so five count for 5 ** 0.7 = 3.1 people, not 5 (on LFW: 100
people x 5 photos name as many strangers as ~300 people x 1 photo, docs/openset.md).

The target (DEFAULT_TARGET_FAR, 0.9%): fewer than one stranger in a hundred named, on their
single photo; a live stream decides per track over many frames, so the per-face rate is an
upper bound of what a viewer sees. The bound users are promised is 1%; the target sits a tenth
under it because the table is itself an estimate from a few thousand LFW strangers, and one
sample of 1,000 strangers has a standard error of 0.3 points: at a 1% target the fused
embedder's 100 x 5 run named 1.1% (BENCHMARKS.md, issues 11 + 12). 0.9% costs nothing of
top-1 there (0.982) and keeps 0.961 at 100 x 1; 0.5% would cost ~2 points. `FACELIVE_TARGET_FAR`
changes it; `FACELIVE_THRESHOLD` overrides the whole rule with one fixed threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facelive.vision.fused_distance import FusedDistance, pairwise

DEFAULT_TARGET_FAR = 0.009
PHOTO_EXPONENT = 0.9


def effective_people(people: int, examples: int) -> float:
    """people x (examples per person) ** PHOTO_EXPONENT; 0 for an empty gallery."""
    if people <= 0:
        return 0.0
    per_person = max(examples / people, 1.0)
    return people * per_person**PHOTO_EXPONENT


@dataclass(frozen=True)
class FarTable:
    """Stranger FAR measured at thresholds `thresholds` (ascending) for galleries of `sizes`
    people (ascending, one photo each): far[i][j] at sizes[i], thresholds[j]. Between sizes
    it is interpolated in log(size), between thresholds linearly; outside, the ends hold."""

    sizes: tuple[int, ...]
    thresholds: tuple[float, ...]
    far: tuple[tuple[float, ...], ...]
    source: str = ""

    def __post_init__(self) -> None:
        matrix = np.asarray(self.far, np.float64)
        if matrix.shape != (len(self.sizes), len(self.thresholds)) or len(self.sizes) < 1:
            raise ValueError("far table: one row per size, one column per threshold")
        if np.any(np.diff(self.sizes) <= 0) or np.any(np.diff(self.thresholds) <= 0):
            raise ValueError("far table: sizes and thresholds must be ascending")

    def _row(self, people: float) -> np.ndarray:
        """The FAR curve (per threshold) at a gallery of `people` effective people."""
        matrix = np.asarray(self.far, np.float64)
        logs = np.log(np.asarray(self.sizes, np.float64))
        x = math.log(max(people, 1.0))
        if x <= logs[0]:
            return matrix[0]
        if x >= logs[-1]:
            return matrix[-1]
        i = int(np.searchsorted(logs, x)) - 1
        w = (x - logs[i]) / (logs[i + 1] - logs[i])
        return (1 - w) * matrix[i] + w * matrix[i + 1]

    def expected_far(self, threshold: float, people: float) -> float:
        """The share of strangers expected to get a name at this threshold and size."""
        if people <= 0:
            return 0.0
        row = np.maximum.accumulate(self._row(people))  # measured noise must not dip
        return float(np.interp(threshold, self.thresholds, row))

    def threshold_for(self, people: float, target_far: float) -> float:
        """The largest threshold whose expected FAR at this size is at most target_far (the
        smallest in the table when even that exceeds it)."""
        row = np.maximum.accumulate(self._row(max(people, 1.0)))
        ts = np.asarray(self.thresholds, np.float64)
        if row[0] > target_far:
            return float(ts[0])
        if row[-1] <= target_far:
            return float(ts[-1])
        j = int(np.flatnonzero(row <= target_far)[-1])
        # Linear between the last point within the target and the first beyond it.
        lo, hi = row[j], row[j + 1]
        w = 0.0 if hi <= lo else (target_far - lo) / (hi - lo)
        return round(float(ts[j] + w * (ts[j + 1] - ts[j])), 4)

    def to_json(self) -> dict[str, object]:
        return {"sizes": list(self.sizes), "thresholds": list(self.thresholds),
                "far": [list(row) for row in self.far], "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FarTable:
        sizes = tuple(int(v) for v in data["sizes"])  # type: ignore[attr-defined]
        thresholds = tuple(float(v) for v in data["thresholds"])  # type: ignore[attr-defined]
        far = tuple(tuple(float(v) for v in row) for row in data["far"])  # type: ignore[attr-defined]
        return cls(sizes, thresholds, far, str(data.get("source", "")))


def measure_far_table(
    vectors: np.ndarray,
    identities: Sequence[str],
    sizes: Sequence[int],
    thresholds: Sequence[float],
    margin: float,
    strangers: int = 3000,
    seeds: int = 3,
    metric: FusedDistance | None = None,
) -> FarTable:
    """Measure a FarTable on labelled unit embeddings (LFW: one per image): for each size N
    and seed, enrol one photo each of N random people, take one photo each of up to
    `strangers` other people, and count the strangers the rule (nearest person within the
    threshold and, with a margin, the next person at least `margin` farther) would name.
    metric: the embedder's distance (None: Euclidean)."""
    matrix = np.asarray(vectors, np.float32)
    _, person = np.unique(np.asarray(identities), return_inverse=True)
    photos = [np.flatnonzero(person == p) for p in range(person.max() + 1)]
    ts = np.asarray(thresholds, np.float64)
    rows = []
    for size in sizes:
        if size >= len(photos):
            raise ValueError(f"{len(photos)} people cannot make a gallery of {size} + strangers")
        curves = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = rng.choice(len(photos), size, replace=False)
            gallery = np.array([rng.choice(photos[p]) for p in chosen])
            others = np.setdiff1d(np.arange(len(photos)), chosen)
            others = rng.choice(others, min(strangers, len(others)), replace=False)
            probes = np.array([rng.choice(photos[p]) for p in others])
            dist = pairwise(metric, matrix[probes], matrix[gallery])
            dist.sort(axis=1)
            first = dist[:, 0]
            second = dist[:, 1] if size > 1 else np.full(len(probes), np.inf)
            clear = (second - first >= margin) if margin > 0 else np.ones(len(probes), bool)
            curves.append([float(np.mean((first <= t) & clear)) for t in ts])
        rows.append(tuple(round(v, 6) for v in np.mean(curves, axis=0)))
    return FarTable(tuple(int(s) for s in sizes), tuple(float(t) for t in ts), tuple(rows))
