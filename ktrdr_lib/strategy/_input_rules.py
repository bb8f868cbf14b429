"""``nn_inputs``: the network's inputs, in order — a v3 file's list, or one per fuzzy set.

A v3 entry is a fuzzy set's memberships (``fuzzy_set``) or an indicator output's raw value
(``raw_indicator``, with an optional ``normalization``), over ``all`` of the run's timeframes
or a list of them. A v2 or legacy file gets one ``{fuzzy_set, timeframes: all}`` per fuzzy set
in file order (KTRDR's own migration rule). Indicators no input reads, and v3 fuzzy sets no
input names, are noticed: they are not computed.
"""

from __future__ import annotations

from typing import Any

from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean
from ktrdr_lib.strategy._indicator_refs import check_reference, reference
from ktrdr_lib.strategy._indicator_rules import IndicatorTable
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import NNInputSpec

__all__ = ["read_nn_inputs"]


def _entry(
    checker: FieldChecker,
    item: dict[Any, Any],
    path: FieldPath,
    table: IndicatorTable,
    set_ids: list[str],
    timeframes: list[str] | None,
) -> dict[str, Any] | None:
    """One v3 entry, checked and written in canonical form."""
    before = len(checker.findings)
    checker.walk(item, NNInputSpec, path)
    if len(checker.findings) > before:
        return None
    fuzzy_set, raw = item.get("fuzzy_set"), item.get("raw_indicator")
    if (fuzzy_set is None) == (raw is None):
        checker.add(path, "each input names either `fuzzy_set` or `raw_indicator` (one of them)")
        return None
    result: dict[str, Any] = {}
    if fuzzy_set is not None:
        if "normalization" in item:
            checker.add_at_key(
                (*path, "normalization"),
                "applies to `raw_indicator` inputs only (memberships are already in [0, 1])",
            )
            return None
        if fuzzy_set not in set_ids:
            suggestion = did_you_mean(fuzzy_set, set_ids)
            checker.add(
                (*path, "fuzzy_set"),
                f"names no fuzzy set; defined: {', '.join(set_ids)}{suggestion}",
                show_value(fuzzy_set),
            )
            return None
        result["fuzzy_set"] = fuzzy_set
    else:
        found = check_reference(checker, table, raw, (*path, "raw_indicator"))
        if found is None:
            return None
        result["raw_indicator"] = reference(table.by_id[found[0]], found[1])
        normalization = item.get("normalization")
        if normalization in ("minmax", "zscore"):
            checker.note(
                (*path, "normalization"),
                "fitted on the training split and applied; KTRDR declared raw normalization "
                "but its training fed raw values unscaled",
                normalization,
            )
        if normalization is not None:
            result["normalization"] = normalization
    chosen = item.get("timeframes", "all")
    if isinstance(chosen, list) and timeframes is not None:
        unknown = [tf for tf in chosen if tf not in timeframes]
        if unknown:
            checker.add(
                (*path, "timeframes"),
                f"must be among the strategy's timeframes ({', '.join(timeframes)}); "
                f"{', '.join(unknown)} is not",
                show_value(chosen),
            )
            return None
    result["timeframes"] = chosen
    return result


def _unused(
    checker: FieldChecker,
    table: IndicatorTable,
    fuzzy_sets: dict[str, dict[str, Any]],
    inputs: list[dict[str, Any]],
    layout: StrategyLayout,
) -> None:
    """Notice indicators no input reads and v3 fuzzy sets no input names."""
    named = {item["fuzzy_set"] for item in inputs if "fuzzy_set" in item}
    used = {item["raw_indicator"].partition(".")[0] for item in inputs if "raw_indicator" in item}
    used |= {
        body["indicator"].partition(".")[0] for key, body in fuzzy_sets.items() if key in named
    }
    for key in fuzzy_sets:
        if layout == "v3" and key not in named:
            checker.note_at_key(
                ("fuzzy_sets", key),
                "no nn_inputs entry names this fuzzy set, so it is not an input (KTRDR left it "
                "out too)",
            )
    for indicator_id, read in table.by_id.items():
        if indicator_id not in used:
            checker.note_at_key(
                read.path,
                f"no fuzzy set or raw input reads `{indicator_id}`, so it is not computed",
            )


def read_nn_inputs(
    checker: FieldChecker,
    top: dict[Any, Any],
    layout: StrategyLayout,
    table: IndicatorTable,
    fuzzy_sets: dict[str, dict[str, Any]],
    timeframes: list[str] | None,
) -> list[dict[str, Any]]:
    """The network's inputs in canonical form (v2/legacy: one per fuzzy set, in order).

    Args:
        checker: collects problems and notices.
        top: the whole strategy mapping.
        layout: the file's layout.
        table: the indicators read.
        fuzzy_sets: the fuzzy sets read, by id, in file order.
        timeframes: the strategy's timeframes, when ``training_data`` names them.
    """
    inputs: list[dict[str, Any]] = []
    if layout != "v3":
        inputs = [{"fuzzy_set": key, "timeframes": "all"} for key in fuzzy_sets]
        if table.complete and not table.unreadable:
            _unused(checker, table, fuzzy_sets, inputs, layout)
        return inputs
    path: FieldPath = ("nn_inputs",)
    entries = top.get("nn_inputs")
    if not isinstance(entries, list) or not entries:
        checker.add(
            path,
            "must be a non-empty list of inputs, e.g. `- {fuzzy_set: rsi_zones, timeframes: all}`",
            show_value(entries),
        )
        return []
    written_sets = top.get("fuzzy_sets")
    set_ids = [str(key) for key in written_sets] if isinstance(written_sets, dict) else []
    for index, item in enumerate(entries):
        where = (*path, index)
        if not isinstance(item, dict):
            checker.add(where, "each input must be a mapping with `fuzzy_set` or `raw_indicator`")
            continue
        read = _entry(checker, item, where, table, set_ids, timeframes)
        if read is not None and (read.get("fuzzy_set") in fuzzy_sets or "raw_indicator" in read):
            inputs.append(read)
    if table.complete and not table.unreadable and len(fuzzy_sets) == len(set_ids):
        _unused(checker, table, fuzzy_sets, inputs, layout)
    return inputs
