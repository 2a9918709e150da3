"""A face as JSON: the one encoder, for the live `faces` replies, REST, `--json` output and the
video tool's JSON. Inside Python every box is corners (x1, y1, x2, y2) in frame pixels (the
detector's, RecognizedFace's, the tracker's, an enrolment's Picked); on the wire it is
[x, y, w, h] (README, "the faces reply"): `box_json` (through `xywh`) is the one conversion,
done here at the edge. Pixels are rounded to 0.1, scores, distances and confidences to 1e-4."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def xywh(corners: Iterable[float]) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) corners -> (x, y, w, h), in the same pixels."""
    x1, y1, x2, y2 = (float(v) for v in corners)
    return (x1, y1, x2 - x1, y2 - y1)


def box_json(corners: Iterable[float]) -> list[float]:
    """(x1, y1, x2, y2) corners -> the wire's [x, y, w, h], rounded to 0.1 px."""
    return [round(v, 1) for v in xywh(corners)]


def face_json(
    box: Iterable[float],
    score: float | None = None,
    landmarks: Iterable[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """{box: [x, y, w, h], score?, landmarks?: [[x, y] x 5]} from an (x1, y1, x2, y2) corners
    box; score and landmarks are left out when None."""
    out: dict[str, Any] = {"box": box_json(box)}
    if score is not None:
        out["score"] = round(float(score), 4)
    if landmarks is not None:
        out["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in landmarks]
    return out


def rounded(value: float | None) -> float | None:
    """A distance or confidence for the wire: 4 decimals, None stays None."""
    return None if value is None else round(float(value), 4)
