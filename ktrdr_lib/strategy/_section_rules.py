"""The rules of a strategy that no single field's type can say.

:class:`StrategyChecker` walks a parsed strategy mapping with the spec-driven field checks of
:mod:`ktrdr_lib.strategy._field_rules` and adds, as code, what ties values together:

- the required top-level sections (the Struct's required fields);
- ``training_data``: the symbol and timeframe ``mode`` rules and the base timeframe;
- ``indicators``: names from the indicator catalog, each indicator's parameters (their bounds
  declared in its catalog entry), unique ``feature_id``, ``fast_period < slow_period``;
- ``fuzzy_sets``: keys that are declared feature ids, and membership parameters of the right
  count (:data:`~ktrdr_lib.strategy.spec.MEMBERSHIP_PARAMETER_COUNTS`) and order;
- ``training.data_split``: fractions that sum to 1.

An indicator item is checked here rather than through ``IndicatorSpec`` because the YAML puts
its parameters beside ``name`` while the Struct gathers them into ``params``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec
from typing_extensions import override

from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.registry import IndicatorDef
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean, listing
from ktrdr_lib.strategy._spec_types import is_whole, struct_fields, type_info, yaml_keys
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import (
    MEMBERSHIP_PARAMETER_COUNTS,
    DataSplitSpec,
    FuzzySetSpec,
    IndicatorSpec,
    StrategySpec,
    SymbolsSpec,
    TimeframesSpec,
)

__all__ = ["REQUIRED_SECTIONS", "StrategyChecker"]

REQUIRED_SECTIONS = tuple(f.encode_name for f in struct_fields(StrategySpec) if f.required)
"""Top-level keys every strategy must have."""

# Set by the loader, never written in the file.
_NOT_IN_YAML = ("source",)
# Checked here, since their YAML layout is not the Struct's.
_OWN_LAYOUT = ("indicators", "fuzzy_sets")
# An indicator item's keys besides its parameters: IndicatorSpec's, less the gathered params.
_INDICATOR_KEYS = yaml_keys(IndicatorSpec, exclude=("params",))
_MEMBERSHIP_SHAPES = {
    "triangular": "[a, b, c] with a ≤ b ≤ c and a < c",
    "trapezoidal": "[a, b, c, d] with a ≤ b ≤ c ≤ d and a < d",
    "gaussian": "[mean, sigma] with sigma > 0",
}


def _membership_ordered(kind: str, points: list[float]) -> bool:
    if kind == "gaussian":
        return points[1] > 0
    return all(a <= b for a, b in itertools.pairwise(points)) and points[0] < points[-1]


class StrategyChecker(FieldChecker):
    """Walks a parsed strategy mapping and collects every problem."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_ids: list[str] = []
        self.all_declared = True  # False when an indicator's feature_id cannot be known

    def check(self, top: dict[Any, Any]) -> None:
        """Check the whole strategy; the problems are in :attr:`findings`."""
        self.keys(top, (), yaml_keys(StrategySpec, exclude=_NOT_IN_YAML))
        for key in REQUIRED_SECTIONS:
            if key not in top:
                self.add(
                    (key,),
                    f"required key `{key}` is missing; every strategy needs "
                    + ", ".join(REQUIRED_SECTIONS),
                )
        skip = (*_OWN_LAYOUT, *_NOT_IN_YAML)
        self.check_fields(top, StrategySpec, (), skip=skip, report_missing=False)
        self.walk_section(top, StrategySpec, "training_data", ())
        self.check_indicators(top)
        self.check_fuzzy_sets(top)
        self.walk_section(top, StrategySpec, "model", ())
        self.walk_section(top, StrategySpec, "training", ())

    @override
    def after_fields(
        self,
        struct: type[msgspec.Struct],
        mapping: dict[Any, Any],
        path: FieldPath,
        valid: set[str],
    ) -> None:
        """The rules across one section's fields, by section."""
        if struct is SymbolsSpec:
            self.check_symbol_mode(mapping, path)
        elif struct is TimeframesSpec:
            self.check_timeframe_mode(mapping, path, valid)
        elif struct is DataSplitSpec:
            self.check_split_sum(mapping, path, valid)
        elif struct is FuzzySetSpec:
            self.check_membership_shape(mapping, path, valid)

    # training_data

    def check_symbol_mode(self, section: dict[Any, Any], path: FieldPath) -> None:
        """``single`` needs ``symbol``; ``multi_symbol`` needs ``list``."""
        mode = section.get("mode", "single")
        if mode == "single" and "symbol" not in section:
            self.add(
                (*path, "symbol"),
                "mode `single` needs `symbol: AAPL` (or use `mode: multi_symbol` with a `list`)",
            )
        if mode == "multi_symbol" and "list" not in section:
            self.add((*path, "list"), "mode `multi_symbol` needs `list: [AAPL, MSFT]` (≥ 1)")

    def check_timeframe_mode(
        self, section: dict[Any, Any], path: FieldPath, valid: set[str]
    ) -> None:
        """The mode's own keys, 2+ distinct timeframes for several, and a base among them."""
        timeframes = section["list"] if "list" in valid else None
        mode = section.get("mode", "single")
        if mode == "single":
            if "timeframe" not in section:
                self.add(
                    (*path, "timeframe"),
                    "mode `single` needs `timeframe: 1d` (or use `mode: multi_timeframe`)",
                )
            timeframes = [section["timeframe"]] if "timeframe" in section else None
        elif mode == "multi_timeframe":
            if timeframes is None and "list" not in section:
                self.add((*path, "list"), "mode `multi_timeframe` needs `list: [1h, 1d]` (≥ 2)")
            elif timeframes is not None and len(timeframes) < 2:
                self.add(
                    (*path, "list"),
                    "mode `multi_timeframe` needs at least 2 timeframes; use `mode: single` "
                    "with `timeframe:` for one",
                    show_value(timeframes),
                )
            if timeframes is not None and len(set(timeframes)) != len(timeframes):
                self.add(
                    (*path, "list"),
                    "lists a timeframe twice; list each once",
                    show_value(timeframes),
                )
        base = section.get("base_timeframe")
        if timeframes is not None and "base_timeframe" in valid and base not in timeframes:
            self.add(
                (*path, "base_timeframe"),
                f"must be one of the strategy's timeframes: {', '.join(map(str, timeframes))}",
                show_value(base),
            )

    # indicators

    def check_indicators(self, top: dict[Any, Any]) -> None:
        """A non-empty list of indicator items."""
        if "indicators" not in top:
            return
        indicators = top["indicators"]
        if not isinstance(indicators, list) or not indicators:
            self.add(
                ("indicators",),
                "must be a non-empty list of indicators, e.g. `- {name: rsi, period: 14}`",
                show_value(indicators),
            )
            return
        owners: dict[str, int] = {}
        for index, item in enumerate(indicators):
            self.check_indicator(item, ("indicators", index), owners)

    def check_indicator(self, item: object, path: FieldPath, owners: dict[str, int]) -> None:
        """One indicator: a known name, its own keys, and a feature_id of its own."""
        if not isinstance(item, dict):
            self.all_declared = False
            self.add(
                path,
                "each indicator must be a mapping with `name` and its parameters, "
                "e.g. `- {name: rsi, period: 14}`",
                show_value(item),
            )
            return
        name = item.get("name")
        known = INDICATOR_CATALOG.names()
        entry = INDICATOR_CATALOG.find(name) if isinstance(name, str) else None
        if "name" not in item:
            self.add((*path, "name"), f"every indicator needs `name`, one of: {', '.join(known)}")
        elif entry is None:
            close = INDICATOR_CATALOG.suggestion(name)
            suggestion = f"; did you mean `{close}`?" if close else ""
            self.add(
                (*path, "name"),
                f"unknown indicator; known: {', '.join(known)}{suggestion}",
                show_value(name),
            )
        self.check_fields(item, IndicatorSpec, path, skip=("name", "params"), report_missing=False)
        if entry is not None or "feature_id" in item:
            self.register_feature_id(item.get("feature_id", name), path, owners)
        else:
            self.all_declared = False
        if entry is not None:
            self.check_indicator_parameters(item, entry, path)

    def register_feature_id(
        self, feature_id: object, path: FieldPath, owners: dict[str, int]
    ) -> None:
        """Note the indicator's feature_id, or report that an earlier one took it."""
        if not isinstance(feature_id, str):
            self.all_declared = False
            return
        if feature_id in owners:
            self.add(
                (*path, "feature_id"),
                f"feature_id `{feature_id}` is already used by indicators[{owners[feature_id]}]; "
                "give each indicator a distinct `feature_id` (e.g. sma_fast, sma_slow)",
                show_value(feature_id),
            )
            return
        owners[feature_id] = int(path[-1])
        self.feature_ids.append(feature_id)

    def check_indicator_parameters(
        self, item: dict[Any, Any], entry: IndicatorDef, path: FieldPath
    ) -> None:
        """The keys the indicator takes, the required ones given, each within its bounds."""
        name, defaults = item["name"], entry.params
        takes = f"it takes {listing(defaults)}" if defaults else "it takes no parameters"
        renamed = entry.renamed_parameters
        for old, new in renamed.items():
            if old in item and new in item:
                self.add_at_key(
                    (*path, old),
                    f"`{old}` and `{new}` are the same parameter of `{name}`; give only `{new}`",
                )
        for key in item:
            if str(key) not in defaults and key not in _INDICATOR_KEYS and key not in renamed:
                self.add_at_key(
                    (*path, str(key)),
                    f"`{name}` does not take `{key}`; {takes}{did_you_mean(key, defaults)}",
                )
        for old, new in renamed.items():
            if old in item and new not in item:
                item = {**item, new: item[old]}
        for parameter in entry.parameters:
            if parameter.name not in item and parameter.required:
                self.add(
                    (*path, parameter.name),
                    f"`{name}` needs `{parameter.name}`, e.g. `{parameter.name}: 20`",
                )
        for parameter in entry.parameters:
            if parameter.name in item:
                rule = type_info(parameter.constraint)
                self.check_value(item[parameter.name], rule, (*path, parameter.name))
        if "fast_period" in defaults and "slow_period" in defaults:
            fast = item.get("fast_period", defaults["fast_period"])
            slow = item.get("slow_period", defaults["slow_period"])
            if is_whole(fast) and is_whole(slow) and fast >= slow:
                self.add(
                    (*path, "fast_period"),
                    f"fast_period must be less than slow_period ({slow}"
                    + ("" if "slow_period" in item else ", the default")
                    + ")",
                    show_value(fast),
                )

    # fuzzy_sets

    def check_fuzzy_sets(self, top: dict[Any, Any]) -> None:
        """Each key a declared feature_id, mapping set names to membership functions."""
        if "fuzzy_sets" not in top:
            return
        path: FieldPath = ("fuzzy_sets",)
        fuzzy_sets = top["fuzzy_sets"]
        if not isinstance(fuzzy_sets, dict) or not fuzzy_sets:
            self.add(
                path,
                "must map each indicator's feature_id to its membership sets, e.g. "
                "`rsi: {oversold: {type: triangular, parameters: [0, 20, 35]}}`",
                show_value(fuzzy_sets),
            )
            return
        for feature_id, sets in fuzzy_sets.items():
            feature_path = (*path, str(feature_id))
            if self.all_declared and self.feature_ids and feature_id not in self.feature_ids:
                declared = ", ".join(self.feature_ids)
                self.add_at_key(
                    feature_path,
                    f"no indicator has feature_id `{feature_id}`; declared: {declared}"
                    f"{did_you_mean(feature_id, self.feature_ids)}",
                )
            if not isinstance(sets, dict) or not sets:
                self.add(
                    feature_path,
                    "must map set names to membership functions, e.g. "
                    "`oversold: {type: triangular, parameters: [0, 20, 35]}`",
                    show_value(sets),
                )
                continue
            for set_name, membership in sets.items():
                set_path = (*feature_path, str(set_name))
                if not isinstance(set_name, str):
                    self.add(set_path, "set names must be text; quote it", show_value(set_name))
                if not isinstance(membership, dict):
                    self.add(
                        set_path,
                        "must be a mapping like `{type: triangular, parameters: [a, b, c]}`",
                        show_value(membership),
                    )
                    continue
                self.walk(membership, FuzzySetSpec, set_path)

    def check_membership_shape(
        self, membership: dict[Any, Any], path: FieldPath, valid: set[str]
    ) -> None:
        """As many parameters as the type takes, in the order its shape needs."""
        if not {"type", "parameters"} <= valid:
            return
        kind, parameters = membership["type"], membership["parameters"]
        arity_ok = len(parameters) == MEMBERSHIP_PARAMETER_COUNTS[kind]
        if not arity_ok or not _membership_ordered(kind, [float(p) for p in parameters]):
            self.add(
                (*path, "parameters"),
                f"a {kind} set takes {_MEMBERSHIP_SHAPES[kind]}",
                show_value(parameters),
            )

    # training

    def check_split_sum(self, split: dict[Any, Any], path: FieldPath, valid: set[str]) -> None:
        """train + validation + test = 1 (defaults count), once each fraction is valid."""
        defaults = msgspec.structs.asdict(DataSplitSpec())
        if any(part in split and part not in valid for part in defaults):
            return
        fractions = {part: split.get(part, default) for part, default in defaults.items()}
        total = math.fsum(fractions.values())
        if abs(total - 1.0) > DataSplitSpec.SUM_TOLERANCE:
            shown = ", ".join(
                f"{part} {value:g}" + ("" if part in split else " (default)")
                for part, value in fractions.items()
            )
            self.add(
                path, f"train + validation + test must sum to 1; they sum to {total:g} ({shown})"
            )
