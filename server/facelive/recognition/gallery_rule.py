"""The open-set rule for a gallery as the CLI sees it, without loading any model: which
threshold a server would decide with at this gallery's size, and the share of strangers it is
expected to name (`facelive people list`). The Recognizer makes the same choice at start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from facelive.recognition.calibration import active_threshold, load_calibration
from facelive.recognition.far_tables import BUILT_IN
from facelive.recognition.openset import FarTable, effective_people

log = logging.getLogger(__name__)


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
    return rule_report(threshold, source, table, builtin, target_far, people, examples)


def rule_report(
    threshold: float | None, source: str, table: FarTable | None, builtin: FarTable | None,
    target_far: float, people: int, examples: int,
) -> dict[str, Any]:
    """{threshold, threshold_source, people, target_far, expected_far}: the rule in force and
    the share of strangers it is expected to name at this gallery size (from `table`, the one
    deciding, else `builtin`; None when neither is known). target_far only when a table
    decides."""
    expected = None
    known = table or builtin
    if known is not None and threshold is not None:
        expected = round(known.expected_far(threshold, effective_people(people, examples)), 5)
    return {"threshold": None if threshold is None else round(threshold, 4),
            "threshold_source": source, "people": people,
            "target_far": target_far if table is not None else None,
            "expected_far": expected}


def rule_in_force(settings: Any, embedder: Any) -> tuple[float, FarTable | None, str]:
    """What a Recognizer starts with: (threshold, FAR table or None, where they come from).
    FACELIVE_THRESHOLD, else the stored calibration of this embedder and recipe (its table if
    it has one), else the built-in table, else the embedder's shipped threshold."""
    recipe = getattr(embedder, "recipe", None)
    threshold, source = active_threshold(settings.data_dir, embedder.name, embedder.threshold,
                                         settings.match_threshold, recipe)
    table: FarTable | None = None
    if source == "calibration":
        stored = load_calibration(settings.data_dir, embedder.name, recipe)
        if stored is not None and stored.far_table:
            try:
                table = FarTable.from_json(stored.far_table)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("stored FAR table is unusable (%s); using the threshold", exc)
        return threshold, table, "calibration table" if table else "calibration"
    if source == "default":
        table = BUILT_IN.get(embedder.name)
        return threshold, table, "built-in table" if table else "default"
    return threshold, None, source
