"""The open-set rule for a gallery as the CLI sees it, without loading any model: which
threshold a server would decide with at this gallery's size, and the share of strangers it is
expected to name (`facelive people list`). The Recognizer makes the same choice at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facelive.recognition.calibration import load_calibration
from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.openset import FarTable, effective_people


def describe_rule(
    data_dir: Path,
    embedder: str,
    default_threshold: float | None,
    override: float | None,
    target_far: float,
    people: int,
    examples: int,
) -> dict[str, Any]:
    """{threshold, threshold_source, people, target_far, expected_far} as in
    Recognizer.open_set(); threshold None when it cannot be told without the embedder."""
    stored = load_calibration(data_dir, embedder)
    table: FarTable | None = None
    if override is None and stored is not None and stored.far_table:
        try:
            table = FarTable.from_json(stored.far_table)
        except (KeyError, TypeError, ValueError):
            table = None
    builtin = BUILT_IN.get(embedder)
    size = effective_people(people, examples)
    threshold: float | None
    if override is not None:
        threshold, source = float(override), "FACELIVE_THRESHOLD"
    elif table is not None:
        threshold, source = table.threshold_for(size, target_far), "calibration table"
    elif stored is not None:
        threshold, source = float(stored.threshold), "calibration"
    elif builtin is not None:
        table = builtin
        threshold, source = builtin.threshold_for(size, target_far), "built-in table"
    else:
        threshold, source = default_threshold, "default"
    expected = None
    known = table or builtin
    if known is not None and threshold is not None:
        expected = round(known.expected_far(threshold, size), 5)
    return {"threshold": None if threshold is None else round(threshold, 4),
            "threshold_source": source, "people": people,
            "target_far": target_far if table is not None else None,
            "expected_far": expected}
