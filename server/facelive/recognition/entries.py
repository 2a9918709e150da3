"""How soon a face that enters a stream is boxed: the measure behind the stream economy's
entry bound (recognition/economy.py; bench/economy.py, tests/recognition/test_economy.py).

The reference is the full detector run on every frame. Its detections are chained from frame
to frame by box overlap into reference faces; a reference face that starts after the first
frame is an entry. Its delay is how many frames after its start the boxes under test (those a
stream's recognizer answered with) first cover it (overlap >= `match_iou` with the reference
face's box in that frame); None when they never do while it lasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facelive.recognition.tracks import iou

Boxes = Sequence[Sequence[float]]  # per frame: x1, y1, x2, y2 corners


@dataclass(frozen=True)
class Entry:
    """A reference face that entered at `frame` and was seen by the reference for `frames`
    frames in a row; `delay`: frames until the boxes under test covered it (None: never)."""

    frame: int
    frames: int
    delay: int | None


def _chains(reference: Sequence[Boxes], link_iou: float) -> list[tuple[int, list[np.ndarray]]]:
    """Reference detections linked frame to frame (greedy, best overlap first)."""
    done: list[tuple[int, list[np.ndarray]]] = []
    open_: list[tuple[int, list[np.ndarray]]] = []
    for frame, raw in enumerate(reference):
        boxes = [np.asarray(b, np.float64) for b in raw]
        pairs = sorted(((iou(chain[-1], box), ci, bi) for ci, (_, chain) in enumerate(open_)
                        for bi, box in enumerate(boxes)), reverse=True)
        taken_c: set[int] = set()
        taken_b: set[int] = set()
        for overlap, ci, bi in pairs:
            if overlap < link_iou or ci in taken_c or bi in taken_b:
                continue
            taken_c.add(ci)
            taken_b.add(bi)
            open_[ci][1].append(boxes[bi])
        still = [c for ci, c in enumerate(open_) if ci in taken_c]
        done += [c for ci, c in enumerate(open_) if ci not in taken_c]
        open_ = still + [(frame, [boxes[bi]]) for bi in range(len(boxes)) if bi not in taken_b]
    return done + open_


def entries(
    reference: Sequence[Boxes], found: Sequence[Boxes],
    link_iou: float = 0.3, match_iou: float = 0.3,
) -> list[Entry]:
    """The entries of `reference` (per frame, the full detector's boxes) and how soon `found`
    (per frame, the boxes under test) covered each. Frames of the two lists correspond."""
    if len(reference) != len(found):
        raise ValueError(f"{len(reference)} reference frames, {len(found)} found")
    out = []
    for start, chain in _chains(reference, link_iou):
        if start == 0:
            continue  # there at the start: not an entry
        delay = None
        for k, box in enumerate(chain):
            if any(iou(box, np.asarray(f, np.float64)) >= match_iou for f in found[start + k]):
                delay = k
                break
        out.append(Entry(start, len(chain), delay))
    return out


def within(found: Sequence[Entry], bound: int) -> tuple[int, int]:
    """(entries boxed within `bound` frames, i.e. delay < bound; entries that lasted at least
    `bound` frames in the reference). Shorter ones (a face the detector saw in only one or two
    frames) cannot be held to the bound and are left out of both counts."""
    lasting = [e for e in found if e.frames >= bound]
    return sum(e.delay is not None and e.delay < bound for e in lasting), len(lasting)
