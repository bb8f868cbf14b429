"""``training_data`` (or a legacy file's ``data:``) and ``context_data``, checked and normalised.

What KTRDR's training did with ``training_data`` is kept: it read ``list`` first and
``symbol``/``timeframe`` second whatever ``mode`` said, so ``mode: single`` with a ``list``
loads (the list wins), and ``single_symbol`` / ``single_timeframe`` (modes no KTRDR enum had)
mean ``single``. ``date_range: {start, end}`` is the default training window, as
``start_date`` / ``end_date``. The result is written in one canonical form: one symbol is
``single`` with ``symbol``, several are ``multi_symbol`` with ``list`` (timeframes alike).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ktrdr_lib.strategy._field_rules import FieldChecker
from ktrdr_lib.strategy._kept_keys import set_aside_keys
from ktrdr_lib.strategy._spec_types import yaml_keys
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.sections import (
    ContextDataSpec,
    SymbolsSpec,
    TimeframesSpec,
    TrainingDataSpec,
)
from ktrdr_lib.strategy.v2_file import LegacyDataSpec

__all__ = ["read_context_data", "read_legacy_data", "read_training_data"]

_MODE_ALIASES = {"single_symbol": "single", "single_timeframe": "single"}


def _as_text_date(value: object) -> object:
    """A YAML date (or date-time) as ``YYYY-MM-DD`` text; anything else unchanged."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _mode(checker: FieldChecker, section: dict[Any, Any], path: FieldPath) -> None:
    """Read a mode no KTRDR enum had (``single_symbol``) as the one it evidently means."""
    mode = section.get("mode")
    if isinstance(mode, str) and mode in _MODE_ALIASES:
        section["mode"] = _MODE_ALIASES[mode]
        checker.note(
            (*path, "mode"),
            f"`{mode}` was never a KTRDR mode (its training ignored mode); read as `single`",
            mode,
        )


def _symbols(checker: FieldChecker, raw: dict[Any, Any], path: FieldPath) -> dict[str, Any] | None:
    section = set_aside_keys(checker, raw, path, yaml_keys(SymbolsSpec))
    _mode(checker, section, path)
    before = len(checker.findings)
    checker.walk(section, SymbolsSpec, path)
    mode, symbols = section.get("mode", "single"), section.get("list")
    if mode == "single" and "symbol" not in section and "list" not in section:
        checker.add(
            (*path, "symbol"),
            "mode `single` needs `symbol: AAPL` (or use `mode: multi_symbol` with a `list`)",
        )
    if mode == "multi_symbol" and "list" not in section:
        checker.add((*path, "list"), "mode `multi_symbol` needs `list: [AAPL, MSFT]` (≥ 1)")
    if len(checker.findings) > before:
        return None
    if symbols and "symbol" in section and [section["symbol"]] != symbols:
        checker.note(
            (*path, "symbol"),
            "not used: KTRDR's training read `list` first, and so does this",
            section["symbol"],
        )
    if symbols and mode == "single" and len(symbols) > 1:
        checker.note(
            (*path, "list"),
            f"mode `single` with {len(symbols)} symbols: KTRDR trained on the whole list "
            "whatever the mode said; so does this",
            symbols,
        )
    names = list(symbols or [section["symbol"]])
    if len(names) == 1:
        return {"mode": "single", "symbol": names[0]}
    return {"mode": "multi_symbol", "list": names}


def _timeframes(
    checker: FieldChecker, raw: dict[Any, Any], path: FieldPath
) -> dict[str, Any] | None:
    section = set_aside_keys(checker, raw, path, yaml_keys(TimeframesSpec))
    _mode(checker, section, path)
    before = len(checker.findings)
    checker.walk(section, TimeframesSpec, path)
    if len(checker.findings) > before:
        return None
    mode, listed = section.get("mode", "single"), section.get("list")
    if mode == "single" and "timeframe" not in section and "list" not in section:
        checker.add(
            (*path, "timeframe"),
            "mode `single` needs `timeframe: 1d` (or use `mode: multi_timeframe`)",
        )
        return None
    if mode == "multi_timeframe" and listed is None:
        checker.add((*path, "list"), "mode `multi_timeframe` needs `list: [1h, 1d]` (≥ 2)")
        return None
    timeframes = list(listed or [section["timeframe"]])
    if mode == "multi_timeframe" and len(timeframes) < 2:
        checker.add(
            (*path, "list"),
            "mode `multi_timeframe` needs at least 2 timeframes; use `mode: single` "
            "with `timeframe:` for one",
            show_value(timeframes),
        )
        return None
    if len(set(timeframes)) != len(timeframes):
        checker.add((*path, "list"), "lists a timeframe twice; list each once", show_value(listed))
        return None
    base = section.get("base_timeframe")
    if base is not None and base not in timeframes:
        checker.add(
            (*path, "base_timeframe"),
            f"must be one of the strategy's timeframes: {', '.join(map(str, timeframes))}",
            show_value(base),
        )
        return None
    result: dict[str, Any] = (
        {"mode": "single", "timeframe": timeframes[0]}
        if len(timeframes) == 1
        else {"mode": "multi_timeframe", "list": timeframes}
    )
    if base is not None:
        result["base_timeframe"] = base
    return result


def _window(checker: FieldChecker, section: dict[Any, Any], path: FieldPath) -> None:
    """``date_range: {start, end}`` → ``start_date`` / ``end_date``, dates as text."""
    window = section.pop("date_range", None)
    if window is not None:
        if not isinstance(window, dict) or not set(window) <= {"start", "end"}:
            checker.add(
                (*path, "date_range"),
                "must be `{start: 2020-01-01, end: 2024-12-31}`",
                show_value(window),
            )
        elif "start_date" in section or "end_date" in section:
            checker.add(
                (*path, "date_range"),
                "give either date_range or start_date / end_date, not both",
            )
        else:
            for key, target in (("start", "start_date"), ("end", "end_date")):
                if key in window:
                    section[target] = window[key]
    for key in ("start_date", "end_date"):
        if key in section:
            section[key] = _as_text_date(section[key])


def read_training_data(checker: FieldChecker, top: dict[Any, Any]) -> dict[str, Any] | None:
    """``training_data`` in canonical form (``None`` when absent or wrong)."""
    path: FieldPath = ("training_data",)
    if top.get("training_data") is None:
        return None
    raw = top["training_data"]
    if not isinstance(raw, dict):
        checker.add(path, "must be a mapping (indented `key: value` lines)", show_value(raw))
        return None
    section = set_aside_keys(checker, raw, path, {*yaml_keys(TrainingDataSpec), "date_range"})
    _window(checker, section, path)
    result: dict[str, Any] = {}
    for key, read in (("symbols", _symbols), ("timeframes", _timeframes)):
        value = section.pop(key, None)
        if value is None:
            continue
        if not isinstance(value, dict):
            checker.add((*path, key), "must be a mapping (indented `key: value` lines)")
            continue
        canonical = read(checker, value, (*path, key))
        if canonical is not None:
            result[key] = canonical
    before = len(checker.findings)
    checker.walk(section, TrainingDataSpec, path)
    start, end = section.get("start_date"), section.get("end_date")
    if len(checker.findings) == before and start and end and str(start) >= str(end):
        checker.add((*path, "end_date"), f"must be after start_date ({start})", show_value(end))
    result.update(section)
    return result


def read_legacy_data(checker: FieldChecker, top: dict[Any, Any]) -> dict[str, Any] | None:
    """A legacy file's ``data:`` as ``training_data`` (KTRDR's v1 → v2 rule)."""
    path: FieldPath = ("data",)
    data = top.get("data")
    if data is None:
        return None
    if not isinstance(data, dict):
        checker.add(path, "must be a mapping with `symbols` and `timeframes` lists")
        return None
    before = len(checker.findings)
    checker.walk(data, LegacyDataSpec, path)
    if len(checker.findings) > before:
        return None
    result: dict[str, Any] = {"history_required": data.get("history_required", 200)}
    symbols, timeframes = data.get("symbols"), data.get("timeframes")
    if symbols:
        result["symbols"] = (
            {"mode": "single", "symbol": symbols[0]}
            if len(symbols) == 1
            else {"mode": "multi_symbol", "list": list(symbols)}
        )
    if timeframes:
        result["timeframes"] = (
            {"mode": "single", "timeframe": timeframes[0]}
            if len(timeframes) == 1
            else {
                "mode": "multi_timeframe",
                "list": list(timeframes),
                "base_timeframe": timeframes[0],
            }
        )
    return result


def read_context_data(
    checker: FieldChecker, top: dict[Any, Any]
) -> tuple[list[dict[str, Any]], set[str] | None]:
    """``context_data`` entries, and the source ids indicators may name (``None``: an entry's
    provider names its series in a way not known here, so any id is accepted)."""
    path: FieldPath = ("context_data",)
    entries = top.get("context_data")
    if entries is None:
        return [], set()
    if not isinstance(entries, list):
        checker.add(path, "must be a list of external series, e.g. `- {provider: fred, ...}`")
        return [], set()
    result: list[dict[str, Any]] = []
    ids: set[str] | None = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            checker.add((*path, index), "each entry must be a mapping with `provider`")
            continue
        before = len(checker.findings)
        checker.walk(entry, ContextDataSpec, (*path, index))
        if len(checker.findings) > before:
            continue
        result.append(dict(entry))
        provided = ContextDataSpec(**{str(k): v for k, v in entry.items()}).source_ids()
        if provided is None or ids is None:
            ids = None
        else:
            ids.update(provided)
    return result, ids
