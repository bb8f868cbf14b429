"""One indicator item of a strategy file: its catalog entry, parameters, source and series.

:class:`ItemReader` checks one item, whichever layout wrote it (a v2 list item with ``name``,
a v3 mapping entry with ``type``): every spelling any KTRDR version accepted resolves through
the indicator catalog; parameters are the catalog entry's, with its bounds; what KTRDR dropped
silently is kept aside and noticed (decision 11): parameters the indicator does not take
(``timeframe``, ``periods``, ``period`` on MACD …), ``source`` on an indicator that reads no
price column. A key close to one of the indicator's parameters is a typo (an error with a
"did you mean"), and an indicator no KTRDR version had is an error that says so (decision 14).
"""

from __future__ import annotations

import difflib
from typing import Any

from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.registry import IndicatorDef, IndicatorParameter, normalize_indicator_name
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean, listing
from ktrdr_lib.strategy._spec_types import is_whole, type_info
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import SourceColumn

__all__ = ["NEVER_COMPUTED", "ItemReader", "value_text"]

NEVER_COMPUTED = frozenset({"volumeprofile", "orderflowimbalance", "donchianchannel", "volatility"})
"""Indicator names (normalised) that KTRDR's files use but no KTRDR version could compute."""

# Keys KTRDR dropped silently; never taken for a typo of a parameter.
_DROPPED = frozenset({"timeframe", "periods", "period", "smooth", "bollinger_bands_source"})
# Synonyms KTRDR dropped (so it used the default) that are read here as the parameter named.
_DROPPED_SYNONYMS = frozenset({"std_dev", "fast", "slow", "signal"})
_SOURCES: tuple[SourceColumn, ...] = ("open", "high", "low", "close", "volume")
_CLOSE_ENOUGH = 0.8


def value_text(value: object) -> str:
    """A parameter value as a person writes it (``14``, not ``14.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class ItemReader:
    """Checks indicator items and reads each into an internal spec (without its id).

    Keys dropped from an item wait in :attr:`pending_ignored` (their internal path holds
    ``{id}``) until the item's id is known.
    """

    def __init__(self, checker: FieldChecker, context_ids: set[str] | None) -> None:
        self.checker = checker
        self.context_ids = context_ids
        self.pending_ignored: list[tuple[FieldPath, str, object, str]] = []
        self.entry_known = False

    def entry(self, name: object, path: FieldPath, key: str) -> IndicatorDef | None:
        """The catalog entry for the name written at ``path``, or a problem."""
        known = ", ".join(INDICATOR_CATALOG.names())
        if name is None:
            self.checker.add((*path, key), f"every indicator needs `{key}`, one of: {known}")
            return None
        entry = INDICATOR_CATALOG.find(name) if isinstance(name, str) else None
        if entry is not None:
            return entry
        if isinstance(name, str) and normalize_indicator_name(name) in NEVER_COMPUTED:
            self.checker.add(
                (*path, key),
                f"no KTRDR version could compute a `{name}` indicator (it was never "
                f"implemented), so no model was ever trained on it; use one of: {known}",
                show_value(name),
            )
            return None
        close = INDICATOR_CATALOG.suggestion(name)
        suggestion = f"; did you mean `{close}`?" if close else ""
        self.checker.add(
            (*path, key), f"unknown indicator; known: {known}{suggestion}", show_value(name)
        )
        return None

    def gathered(self, item: dict[Any, Any], path: FieldPath) -> dict[Any, Any]:
        """The item with a nested ``params:`` mapping merged beside its other keys."""
        nested = item.get("params")
        if nested is None:
            return item
        if not isinstance(nested, dict):
            self.checker.add((*path, "params"), "must be a mapping of parameters")
            return {k: v for k, v in item.items() if k != "params"}
        merged = {k: v for k, v in item.items() if k != "params"}
        for key, value in nested.items():
            if key in merged:
                self.checker.add_at_key(
                    (*path, "params", str(key)),
                    f"`{key}` is given twice (beside `name` and under `params`); give it once",
                )
            merged[key] = value
        return merged

    def parameter_value(
        self, parameter: IndicatorParameter, value: object, path: FieldPath
    ) -> object:
        """A checked parameter value (a choice matched without regard to case)."""
        if parameter.choices and isinstance(value, str):
            for word in parameter.choices:
                if word.lower() == value.lower():
                    return word
        if self.checker.check_value(value, type_info(parameter.constraint), path):
            return value
        return None

    def read_item(
        self, item: dict[Any, Any], path: FieldPath, own: set[str], name_key: str
    ) -> tuple[IndicatorDef, dict[str, Any], set[str]] | None:
        """The entry, the internal spec (without id) and the parameters given, or ``None``."""
        name = item.get(name_key)
        entry = self.entry(name, path, name_key)
        self.entry_known = entry is not None
        if entry is None:
            return None
        assert isinstance(name, str)
        item = self.gathered(item, path)
        where = "indicators.{id}"
        takes = f"it takes {listing(entry.params)}" if entry.params else "it takes no parameters"
        renamed = entry.renamed_parameters
        given: dict[str, Any] = {}
        before = len(self.checker.findings)
        for raw_key, value in item.items():
            key = str(raw_key)
            key_path = (*path, key)
            if key in own:
                continue
            if key in renamed:
                target = renamed[key]
                if target in item:
                    self.checker.add_at_key(
                        key_path,
                        f"`{key}` and `{target}` are the same parameter of `{name}`; "
                        f"give only `{target}`",
                    )
                    continue
                default = entry.params.get(target)
                if key in _DROPPED_SYNONYMS and value != default:
                    self.checker.note(
                        key_path,
                        f"read as `{target}`; KTRDR dropped `{key}` silently and computed "
                        f"`{name}` with {target} {value_text(default)}",
                        value,
                    )
                given[target] = (value, key_path)
            elif key in entry.params:
                given[key] = (value, key_path)
            else:
                close = difflib.get_close_matches(key, list(entry.params), 1, _CLOSE_ENOUGH)
                if close and key not in _DROPPED:
                    self.checker.add_at_key(
                        key_path,
                        f"`{name}` does not take `{key}`; {takes}{did_you_mean(key, close)}",
                    )
                    continue
                message = (
                    f"`{name}` does not take `{key}`; KTRDR dropped it silently and so does "
                    f"this ({takes})"
                )
                self.pending_ignored.append((key_path, f"{where}.{key}", value, message))
        params: dict[str, Any] = {}
        for parameter in entry.parameters:
            if parameter.name in given:
                value, key_path = given[parameter.name]
                params[parameter.name] = self.parameter_value(parameter, value, key_path)
            elif parameter.required:
                self.checker.add(
                    (*path, parameter.name),
                    f"`{name}` needs `{parameter.name}`, e.g. `{parameter.name}: 20`",
                )
            else:
                params[parameter.name] = parameter.default
        self.check_fast_slow(params, given, path)
        spec: dict[str, Any] = {"type": entry.name, "params": params}
        self.read_source(item, entry, spec, path, name)
        data_source = item.get("data_source")
        if data_source is not None:
            self.read_data_source(data_source, (*path, "data_source"), spec)
        if len(self.checker.findings) > before:
            return None
        return entry, spec, set(given)

    def check_fast_slow(
        self, params: dict[str, Any], given: dict[str, Any], path: FieldPath
    ) -> None:
        """``fast_period < slow_period`` (defaults count)."""
        fast, slow = params.get("fast_period"), params.get("slow_period")
        if is_whole(fast) and is_whole(slow) and fast >= slow:
            self.checker.add(
                (*path, "fast_period") if "fast_period" in given else path,
                f"fast_period must be less than slow_period ({slow}"
                + ("" if "slow_period" in given else ", the default")
                + ")",
                show_value(fast),
            )

    def read_source(
        self,
        item: dict[Any, Any],
        entry: IndicatorDef,
        spec: dict[str, Any],
        path: FieldPath,
        name: str,
    ) -> None:
        """``source``: the bar column for an indicator that reads one; dropped (noticed)
        elsewhere. ``volume_sma`` is computed on volume, as its name says."""
        source = item.get("source")
        reads = ", ".join(column for column in entry.inputs if column != "source")
        if normalize_indicator_name(name) == "volumesma" and source is None:
            spec["source"] = "volume"
            self.checker.note(
                (*path, "name"),
                "computed on volume, as the name says; KTRDR computed this moving average on close",
                name,
            )
            return
        if source is None:
            return
        if not entry.uses_source:
            message = (
                f"`{name}` reads {reads}, not a source column; KTRDR dropped `source` "
                "silently and so does this"
            )
            self.pending_ignored.append(
                ((*path, "source"), "indicators.{id}.source", source, message)
            )
            return
        if source not in _SOURCES:
            self.checker.add(
                (*path, "source"), f"must be one of: {', '.join(_SOURCES)}", show_value(source)
            )
            return
        spec["source"] = source

    def read_data_source(self, value: object, path: FieldPath, spec: dict[str, Any]) -> None:
        """``data_source``: one of the ids ``context_data`` provides."""
        ids = self.context_ids
        if not isinstance(value, str):
            self.checker.add(path, "must be the id of a context_data series", show_value(value))
        elif ids is not None and value not in ids:
            offered = (
                f"context_data provides: {', '.join(sorted(ids))}"
                if ids
                else ("there is no context_data section")
            )
            self.checker.add(
                path,
                f"names no context_data series; {offered}{did_you_mean(value, ids)}",
                show_value(value),
            )
        else:
            spec["data_source"] = value

    # -- the section -------------------------------------------------------------------------
