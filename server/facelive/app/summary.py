"""One-line summaries of an enrolment's notes, for people: how many, who, the closest distance.
The details (one line per image) stay in the JSON for whoever wants them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def _of(count: int, total: int, noun: str) -> str:
    plural = noun if total == 1 else noun + "s"
    return f"the {noun}" if total == 1 else f"{count} of {total} {plural}" if count < total \
        else f"all {total} {plural}"


def lookalike_summary(lookalikes: Sequence[Any], total: int) -> str | None:
    """Lookalikes (index, name, distance) among `total` accepted faces -> "3 of 10 faces look
    like George W Bush (closest distance 0.092)", or None when there are none."""
    if not lookalikes:
        return None
    by_name: dict[str, list[float]] = {}
    for item in lookalikes:
        by_name.setdefault(item.name, []).append(float(item.distance))
    subject = _of(len(lookalikes), total, "face")
    verb = "looks" if len(lookalikes) == 1 else "look"
    parts = [f"{name} ({len(d)}, closest distance {min(d):.3f})" if len(by_name) > 1
             else f"{name} (closest distance {min(d):.3f})"
             for name, d in sorted(by_name.items(), key=lambda kv: min(kv[1]))]
    return f"{subject[0].upper()}{subject[1:]} {verb} like {', '.join(parts)}."


def rejected_summary(rejected: Sequence[Mapping[str, str]], total: int) -> str | None:
    """[{file, reason}] of `total` images -> "3 of 10 images not used: no face found (2),
    2 faces found; use a photo of one face only (1)", or None when all were used."""
    if not rejected:
        return None
    reasons = Counter(r["reason"] for r in rejected)
    why = ", ".join(f"{reason} ({n})" if len(reasons) > 1 else reason
                    for reason, n in reasons.most_common())
    subject = _of(len(rejected), total, "image")
    return f"{subject[0].upper()}{subject[1:]} not used: {why}."
