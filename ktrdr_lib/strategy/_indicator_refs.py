"""Which indicator output a fuzzy set reads: v3 ``id.output`` references and v2 fuzzy keys.

A v3 set says ``indicator: <id>`` (the primary output) or ``indicator: <id>.<output>``. A v2
set is keyed by what it reads, which KTRDR matched in several ways over its eras; here, in
order (decision 3):

1. an indicator id (``feature_id``, else ``name``) → its primary output;
2. a late-v2 technical column of an indicator (``ADX_14``, ``DI_Plus_14``, ``Aroon_25_Up`` …,
   from the catalog entry's ``technical_columns``) → that output;
3. an id, or a technical column, matched without regard to case;
4. in a file written for early v2, an indicator's name or its early-v2 column name,
   ``<name>_<parameter values>`` (``rsi_14``, ``stochastic_14_3_3``,
   ``bollingerbands_20_2.0``) → the primary output;
5. a name that says an output (``aroon_down_25``, ``macd_signal``, ``adx_plus_di``) → it.

:func:`named_output` is also how a v3 set's own name is compared with what it reads, which
catches KTRDR's v2 → v3 migration hazard (``DI_Plus_14`` reading the ADX line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ktrdr_lib.features.registry import normalize_indicator_name
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean
from ktrdr_lib.strategy._indicator_rules import IndicatorTable, ReadIndicator
from ktrdr_lib.strategy._spec_types import is_number
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value

__all__ = [
    "KeyMatch",
    "check_reference",
    "named_output",
    "reference",
    "resolve_key",
    "technical_columns",
]

Way = Literal["id", "column", "id_case", "column_case", "early_column", "named"]

_OUTPUT_WORDS = {
    "hist": "histogram",
    "plus": "plus_di",
    "minus": "minus_di",
    "diplus": "plus_di",
    "diminus": "minus_di",
    "osc": "oscillator",
    "main": "line",
    "macd": "line",
}


@dataclass(frozen=True)
class KeyMatch:
    """What a key names: an indicator id and one of its outputs (``None``: the primary)."""

    indicator_id: str
    output: str | None
    way: Way


def reference(read: ReadIndicator, output: str | None) -> str:
    """``id`` (the primary output), or ``id.output`` when an output is named."""
    if output is None or len(read.entry.outputs) == 1:
        return read.id
    return f"{read.id}.{output}"


def check_reference(
    checker: FieldChecker, table: IndicatorTable, value: object, path: FieldPath
) -> tuple[str, str | None] | None:
    """``<id>`` or ``<id>.<output>`` checked: (id, output), or ``None`` when it is wrong
    (reported) or names an indicator that could not be read (already reported)."""
    if not isinstance(value, str) or not value:
        checker.add(path, "must name an indicator: `<id>` or `<id>.<output>`", show_value(value))
        return None
    indicator_id, dot, output = value.partition(".")
    read = table.by_id.get(indicator_id)
    if read is None:
        if indicator_id in table.unreadable or not table.complete:
            return None
        declared = ", ".join(table.by_id)
        checker.add(
            path,
            f"names no indicator; declared: {declared}{did_you_mean(indicator_id, table.by_id)}",
            show_value(value),
        )
        return None
    outputs = read.entry.outputs
    if dot and len(outputs) == 1:
        checker.add(
            path,
            f"`{read.entry.name}` has a single output; write `{indicator_id}` without `.{output}`",
            show_value(value),
        )
        return None
    if dot and output not in outputs:
        checker.add(
            path,
            f"`{read.entry.name}` has no output `{output}`; its outputs are "
            f"{', '.join(outputs)} (the first is read without `.output`)",
            show_value(value),
        )
        return None
    return indicator_id, output or None


def technical_columns(read: ReadIndicator) -> dict[str, str]:
    """Late-v2 KTRDR's column names for this indicator's outputs (may be empty)."""
    columns = read.entry.technical_columns
    if columns is None:
        return {}
    try:
        return dict(columns(**read.params))
    except (TypeError, ValueError):  # parameters the function cannot format
        return {}


def _number_text(value: object) -> list[str]:
    """How early-v2 KTRDR may have written a parameter value in a column name."""
    if isinstance(value, bool) or not is_number(value):
        return []
    if float(value).is_integer():
        return [str(int(value)), f"{float(value)}"]
    return [f"{value}", f"{value:g}"]


def _early_columns(read: ReadIndicator) -> set[str]:
    """``<name>_<values>`` spellings (lower-case) of one indicator's early-v2 columns."""
    names = {
        read.written_name.lower(),
        read.entry.name,
        normalize_indicator_name(read.written_name),
        *(alias.lower() for alias in read.entry.aliases),
    }
    value_lists: list[list[str]] = [[]]
    all_values = [_number_text(value) for value in read.params.values()]
    given_values = [_number_text(read.params[key]) for key in read.params if key in read.given]
    for values in (all_values, given_values):
        spelled: list[list[str]] = [[]]
        for options in values:
            if options:
                spelled = [[*prefix, option] for prefix in spelled for option in options][:64]
        value_lists.extend(spelled)
    return {
        "_".join([name, *values]) if values else name for name in names for values in value_lists
    }


def named_output(key: str, table: IndicatorTable) -> KeyMatch | None:
    """The indicator and output a name such as ``aroon_down_25`` or ``macd_signal`` says."""
    tokens = [token for token in key.lower().replace("-", "_").split("_") if token]
    numbers = [token for token in tokens if token.replace(".", "", 1).isdigit()]
    words = [token for token in tokens if token not in numbers]
    found: list[KeyMatch] = []
    for read in table.by_id.values():
        heads = {
            normalize_indicator_name(read.written_name),
            read.entry.name,
            normalize_indicator_name(read.id.rstrip("0123456789_")),
            *(normalize_indicator_name(alias) for alias in read.entry.aliases),
        }
        values = {text for value in read.params.values() for text in _number_text(value)}
        if not set(numbers) <= values:
            continue
        outputs = {output.replace("_", ""): output for output in read.entry.outputs}
        for split in range(1, len(words)):
            head, rest = "".join(words[:split]), "".join(words[split:])
            output = outputs.get(rest) or _OUTPUT_WORDS.get(rest)
            if head in heads and output in read.entry.outputs:
                found.append(KeyMatch(read.id, output, "named"))
                break
        if not found or found[-1].indicator_id != read.id:
            # ``DI_Plus_14``: an output name first, then the indicator's numbers
            output = outputs.get("".join(words)) or _OUTPUT_WORDS.get("".join(words))
            if words and output in read.entry.outputs and len(read.entry.outputs) > 1:
                found.append(KeyMatch(read.id, output, "named"))
    distinct = {(match.indicator_id, match.output) for match in found}
    return found[0] if len(distinct) == 1 else None


def resolve_key(key: str, table: IndicatorTable, *, early_v2: bool) -> KeyMatch | None:
    """What a v2 fuzzy set key names (see the module docstring for the order; early-v2
    column names only for files written for early v2)."""
    if key in table.by_id:
        return KeyMatch(key, None, "id")
    columns = {
        column: (read.id, output)
        for read in table.by_id.values()
        for column, output in technical_columns(read).items()
    }
    if key in columns:
        return KeyMatch(columns[key][0], columns[key][1], "column")
    lowered = key.lower()
    for indicator_id in table.by_id:
        if indicator_id.lower() == lowered:
            return KeyMatch(indicator_id, None, "id_case")
    for column, (indicator_id, output) in columns.items():
        if column.lower() == lowered:
            return KeyMatch(indicator_id, output, "column_case")
    for read in table.by_id.values() if early_v2 else ():
        if lowered in _early_columns(read):
            return KeyMatch(read.id, None, "early_column")
    return named_output(key, table)
