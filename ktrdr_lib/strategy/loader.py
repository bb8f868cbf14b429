"""Load a KTRDR v2 strategy from YAML, reporting every problem at once.

:func:`check_strategy_text` parses the text with PyYAML's ``SafeLoader`` (never a full loader),
walks the raw mapping section by section and returns one :class:`StrategyProblem` per mistake,
each with its dotted field path, what is wrong and what is allowed, the offending value, and the
line it sits on (taken from the composed YAML nodes). :func:`load_strategy` raises
:class:`StrategyError` with that list, or builds the typed :class:`StrategySpec`.

The allowed keys of each section come from the Structs in :mod:`ktrdr_lib.strategy.spec`, and
the indicators and their parameters from :mod:`ktrdr_lib.features.catalog`, so the checks cannot
drift from what the rest of the library accepts. This module is longer than most because it is
the one place that knows the whole format; each section has its own small method.

Example:
    >>> spec = load_strategy("rsi_mean_reversion.yaml")  # doctest: +SKIP
    >>> problems = check_strategy_text("name: x\\nindicators: []\\n")
    >>> problems[0].render()  # doctest: +SKIP
    '<strategy>:2: indicators: must be a non-empty list of indicators, ...'
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import msgspec
import yaml

from ktrdr_lib.errors import ConfigError, StrategyError, StrategyNotFoundError, StrategyProblem
from ktrdr_lib.features.catalog import INDICATOR_CATALOG, known_indicator_names
from ktrdr_lib.strategy.spec import (
    ArchitectureSpec,
    DataSplitSpec,
    EarlyStoppingSpec,
    FeaturesSpec,
    FuzzySetSpec,
    LabelsSpec,
    ModelSpec,
    ModelTrainingSpec,
    StrategySpec,
    SymbolsSpec,
    TimeframesSpec,
    TrainingDataSpec,
    TrainingSpec,
)

__all__ = [
    "IDENTIFIER_PATTERN",
    "REQUIRED_SECTIONS",
    "TIMEFRAME_PATTERN",
    "check_strategy_text",
    "is_strategy_file_path",
    "load_strategy",
]

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""Strategy names and feature ids (matched in full)."""

TIMEFRAME_PATTERN = re.compile(r"[1-9][0-9]*[mhdw]")
"""Timeframes such as ``5m``, ``1h``, ``1d``, ``1w`` (matched in full)."""

_SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

REQUIRED_SECTIONS = ("name", "indicators", "fuzzy_sets", "model", "training")
"""Top-level keys every strategy must have."""

FieldPath = tuple[str | int, ...]
Rule = Callable[[object], str | None]
"""A value check: ``None`` when the value is fine, else what is allowed."""

_YAML_SUFFIXES = (".yaml", ".yml")
_PRICE_SOURCES = ("open", "high", "low", "close")
_MEMBERSHIP_ARITY = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}
_MEMBERSHIP_SHAPES = {
    "triangular": "[a, b, c] with a ≤ b ≤ c and a < c",
    "trapezoidal": "[a, b, c, d] with a ≤ b ≤ c ≤ d and a < d",
    "gaussian": "[mean, sigma] with sigma > 0",
}
_SPLIT_TOLERANCE = 1e-6


def _yaml_keys(struct: type[msgspec.Struct], *, exclude: Collection[str] = ()) -> frozenset[str]:
    """The YAML keys a section Struct accepts (its fields' encoded names)."""
    fields = msgspec.structs.fields(struct)
    return frozenset(field.encode_name for field in fields if field.name not in exclude)


_TOP_KEYS = _yaml_keys(StrategySpec, exclude=("source",))
_INDICATOR_COMMON_KEYS = ("name", "feature_id", "source")


# -- showing values and suggesting keys ---------------------------------------------------------


def _show(value: object) -> str:
    """A value as the user would write it in YAML, shortened when long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = repr(value)
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _did_you_mean(word: object, choices: Collection[str]) -> str:
    """`` (did you mean `x`?)`` when a choice is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    close = close or [choice for choice in sorted(choices) if word and choice.startswith(word)]
    return f"; did you mean `{close[0]}`?" if close else ""


def _listing(choices: Collection[str]) -> str:
    return ", ".join(sorted(choices))


# -- value rules ---------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float; YAML ``true``/``false`` are not numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(minimum: int) -> Rule:
    def check(value: object) -> str | None:
        if _is_whole(value) and value >= minimum:
            return None
        return f"must be a whole number ≥ {minimum}"

    return check


def _number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = True,
) -> Rule:
    """A finite number within optional bounds (``low_open``: ``low`` itself excluded)."""
    if low is not None and high is not None:
        allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"{'>' if low_open else '≥'} {low:g}"
    else:
        allowed = ""

    def check(value: object) -> str | None:
        if _is_number(value):
            number = float(value)
            above = low is None or (number > low if low_open else number >= low)
            below = high is None or (number < high if high_open else number <= high)
            if above and below:
                return None
        return f"must be a number {allowed}".rstrip()

    return check


def _choice(*allowed: str) -> Rule:
    def check(value: object) -> str | None:
        if isinstance(value, str) and value in allowed:
            return None
        return "must be one of: " + ", ".join(allowed) + _did_you_mean(value, allowed)

    return check


def _pattern(regex: re.Pattern[str], description: str) -> Rule:
    def check(value: object) -> str | None:
        if isinstance(value, str) and regex.fullmatch(value):
            return None
        return f"must be {description}"

    return check


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _optional_text(value: object) -> str | None:
    return None if value is None or isinstance(value, str) else "must be text (quote it)"


def _version(value: object) -> str | None:
    if value is None or isinstance(value, str) or _is_number(value):
        return None
    return "must be text or a number, e.g. `version: '2.1'`"


def _free_form(value: object) -> str | None:
    if value is None or isinstance(value, dict):
        return None
    return "must be a mapping (it is kept with the model, not used for training)"


def _hidden_layers(value: object) -> str | None:
    if isinstance(value, list) and value and all(_whole(1)(size) is None for size in value):
        return None
    return "must be a non-empty list of layer sizes (whole numbers ≥ 1), e.g. [64, 32]"


_strategy_name = _pattern(
    IDENTIFIER_PATTERN, "letters, digits, '_' and '-', starting with a letter or digit"
)
_identifier = _strategy_name
_symbol = _pattern(
    _SYMBOL_PATTERN, "a symbol of letters, digits, '.', '_' and '-' (e.g. AAPL); quote numbers"
)
_timeframe = _pattern(TIMEFRAME_PATTERN, "a timeframe like 5m, 1h, 4h, 1d or 1w")


def _is_period(parameter: str) -> bool:
    return parameter == "period" or parameter.endswith("_period")


def _parameter_rule(parameter: str) -> Rule:
    """Periods are whole numbers ≥ 1; every other indicator parameter is a number > 0."""
    return _whole(1) if _is_period(parameter) else _number(0, low_open=True)


# -- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    """A problem before its line is known; ``at_key`` points the line at the key itself."""

    path: FieldPath
    message: str
    value: str | None = None
    at_key: bool = False


class _StrategyChecker:
    """Walks a parsed strategy mapping and collects every problem."""

    def __init__(self) -> None:
        self.findings: list[_Finding] = []
        self.feature_ids: list[str] = []
        self.all_declared = True  # False when an indicator's feature_id cannot be known

    def add(self, path: FieldPath, message: str, value: str | None = None) -> None:
        self.findings.append(_Finding(path, message, value))

    def keys(self, mapping: dict[Any, Any], path: FieldPath, allowed: Collection[str]) -> None:
        """Report keys of ``mapping`` that the format does not have at ``path``."""
        where = _dotted(path) or "the top level"
        for key in mapping:
            if str(key) not in allowed:
                message = (
                    f"unknown key; {where} takes {_listing(allowed)}{_did_you_mean(key, allowed)}"
                )
                self.findings.append(_Finding((*path, str(key)), message, at_key=True))

    def fields(self, mapping: dict[Any, Any], path: FieldPath, rules: Mapping[str, Rule]) -> None:
        """Apply each rule to its key when the key is present."""
        for key, rule in rules.items():
            if key in mapping:
                requirement = rule(mapping[key])
                if requirement is not None:
                    self.add((*path, key), requirement, _show(mapping[key]))

    def section(
        self, parent: dict[Any, Any], key: str, path: FieldPath, *, nullable: bool = False
    ) -> dict[Any, Any] | None:
        """The mapping under ``key`` (``None`` when absent or not a mapping, reported)."""
        if key not in parent or (nullable and parent[key] is None):
            return None
        value = parent[key]
        if isinstance(value, dict):
            return value
        self.add((*path, key), "must be a mapping (indented `key: value` lines)", _show(value))
        return None

    def listed(
        self,
        mapping: dict[Any, Any],
        key: str,
        path: FieldPath,
        rule: Rule,
        *,
        minimum: int,
        example: str,
    ) -> list[Any] | None:
        """The list under ``key`` with each item checked (``None`` when absent or invalid)."""
        if key not in mapping:
            return None
        value = mapping[key]
        if not isinstance(value, list) or len(value) < minimum:
            self.add(
                (*path, key), f"must be a list of at least {minimum}, e.g. {example}", _show(value)
            )
            return None
        good = True
        for index, item in enumerate(value):
            requirement = rule(item)
            if requirement is not None:
                self.add((*path, key, index), requirement, _show(item))
                good = False
        return value if good else None

    # top level

    def check(self, top: dict[Any, Any]) -> None:
        self.keys(top, (), _TOP_KEYS)
        for key in REQUIRED_SECTIONS:
            if key not in top:
                self.add(
                    (key,),
                    f"required key `{key}` is missing; every strategy needs "
                    + ", ".join(REQUIRED_SECTIONS),
                )
        self.fields(
            top,
            (),
            {
                "name": _strategy_name,
                "description": _optional_text,
                "hypothesis": _optional_text,
                "version": _version,
                "scope": _choice("universal", "symbol_specific"),
                "deployment": _free_form,
                "decisions": _free_form,
            },
        )
        training_data = self.section(top, "training_data", (), nullable=True)
        if training_data is not None:
            self.check_training_data(training_data, ("training_data",))
        self.check_indicators(top)
        self.check_fuzzy_sets(top)
        model = self.section(top, "model", ())
        if model is not None:
            self.check_model(model, ("model",))
        training = self.section(top, "training", ())
        if training is not None:
            self.check_training(training, ("training",))

    # training_data

    def check_training_data(self, section: dict[Any, Any], path: FieldPath) -> None:
        self.keys(section, path, _yaml_keys(TrainingDataSpec))
        self.fields(section, path, {"history_required": _whole(0)})
        symbols = self.section(section, "symbols", path, nullable=True)
        if symbols is not None:
            self.check_symbols(symbols, (*path, "symbols"))
        timeframes = self.section(section, "timeframes", path, nullable=True)
        if timeframes is not None:
            self.check_timeframes(timeframes, (*path, "timeframes"))

    def check_symbols(self, section: dict[Any, Any], path: FieldPath) -> None:
        self.keys(section, path, _yaml_keys(SymbolsSpec))
        self.fields(section, path, {"mode": _choice("single", "multi_symbol"), "symbol": _symbol})
        self.listed(section, "list", path, _symbol, minimum=1, example="[AAPL, MSFT]")
        mode = section.get("mode", "single")
        if mode == "single" and "symbol" not in section:
            self.add(
                (*path, "symbol"),
                "mode `single` needs `symbol: AAPL` (or use `mode: multi_symbol` with a `list`)",
            )
        if mode == "multi_symbol" and "list" not in section:
            self.add((*path, "list"), "mode `multi_symbol` needs `list: [AAPL, MSFT]` (≥ 1)")

    def check_timeframes(self, section: dict[Any, Any], path: FieldPath) -> None:
        self.keys(section, path, _yaml_keys(TimeframesSpec))
        rules = {
            "mode": _choice("single", "multi_timeframe"),
            "timeframe": _timeframe,
            "base_timeframe": _timeframe,
        }
        self.fields(section, path, rules)
        timeframes = self.listed(section, "list", path, _timeframe, minimum=1, example="[1h, 1d]")
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
                    _show(timeframes),
                )
            if timeframes is not None and len(set(timeframes)) != len(timeframes):
                self.add(
                    (*path, "list"), "lists a timeframe twice; list each once", _show(timeframes)
                )
        base = section.get("base_timeframe")
        if timeframes is not None and _timeframe(base) is None and base not in timeframes:
            self.add(
                (*path, "base_timeframe"),
                f"must be one of the strategy's timeframes: {', '.join(map(str, timeframes))}",
                _show(base),
            )

    # indicators

    def check_indicators(self, top: dict[Any, Any]) -> None:
        if "indicators" not in top:
            return
        indicators = top["indicators"]
        if not isinstance(indicators, list) or not indicators:
            self.add(
                ("indicators",),
                "must be a non-empty list of indicators, e.g. `- {name: rsi, period: 14}`",
                _show(indicators),
            )
            return
        owners: dict[str, int] = {}
        for index, item in enumerate(indicators):
            self.check_indicator(item, ("indicators", index), owners)

    def check_indicator(self, item: object, path: FieldPath, owners: dict[str, int]) -> None:
        if not isinstance(item, dict):
            self.all_declared = False
            self.add(
                path,
                "each indicator must be a mapping with `name` and its parameters, "
                "e.g. `- {name: rsi, period: 14}`",
                _show(item),
            )
            return
        name = item.get("name")
        known = known_indicator_names()
        if "name" not in item:
            self.add((*path, "name"), f"every indicator needs `name`, one of: {', '.join(known)}")
        elif not isinstance(name, str) or name not in INDICATOR_CATALOG:
            self.add(
                (*path, "name"),
                f"unknown indicator; known: {', '.join(known)}{_did_you_mean(name, known)}",
                _show(name),
            )
        self.fields(item, path, {"feature_id": _identifier, "source": _choice(*_PRICE_SOURCES)})
        known_name = isinstance(name, str) and name in INDICATOR_CATALOG
        if known_name or "feature_id" in item:
            self.register_feature_id(item.get("feature_id", name), path, owners)
        else:
            self.all_declared = False
        if known_name:
            self.check_indicator_parameters(item, str(name), path)

    def register_feature_id(
        self, feature_id: object, path: FieldPath, owners: dict[str, int]
    ) -> None:
        if not isinstance(feature_id, str):
            self.all_declared = False
            return
        if feature_id in owners:
            self.add(
                (*path, "feature_id"),
                f"feature_id `{feature_id}` is already used by indicators[{owners[feature_id]}]; "
                "give each indicator a distinct `feature_id` (e.g. sma_fast, sma_slow)",
                _show(feature_id),
            )
            return
        owners[feature_id] = int(path[-1])
        self.feature_ids.append(feature_id)

    def check_indicator_parameters(self, item: dict[Any, Any], name: str, path: FieldPath) -> None:
        defaults = INDICATOR_CATALOG[name].params
        takes = f"it takes {_listing(defaults)}" if defaults else "it takes no parameters"
        for key in item:
            if str(key) not in defaults and key not in _INDICATOR_COMMON_KEYS:
                message = f"`{name}` does not take `{key}`; {takes}{_did_you_mean(key, defaults)}"
                self.findings.append(_Finding((*path, str(key)), message, at_key=True))
        for parameter, default in defaults.items():
            if parameter not in item and default is None:
                self.add(
                    (*path, parameter), f"`{name}` needs `{parameter}`, e.g. `{parameter}: 20`"
                )
        self.fields(item, path, {parameter: _parameter_rule(parameter) for parameter in defaults})
        if "fast_period" in defaults and "slow_period" in defaults:
            fast = item.get("fast_period", defaults["fast_period"])
            slow = item.get("slow_period", defaults["slow_period"])
            if _is_whole(fast) and _is_whole(slow) and fast >= slow:
                self.add(
                    (*path, "fast_period"),
                    f"fast_period must be less than slow_period ({slow}"
                    + ("" if "slow_period" in item else ", the default")
                    + ")",
                    _show(fast),
                )

    # fuzzy_sets

    def check_fuzzy_sets(self, top: dict[Any, Any]) -> None:
        if "fuzzy_sets" not in top:
            return
        path: FieldPath = ("fuzzy_sets",)
        fuzzy_sets = top["fuzzy_sets"]
        if not isinstance(fuzzy_sets, dict) or not fuzzy_sets:
            self.add(
                path,
                "must map each indicator's feature_id to its membership sets, e.g. "
                "`rsi: {oversold: {type: triangular, parameters: [0, 20, 35]}}`",
                _show(fuzzy_sets),
            )
            return
        for feature_id, sets in fuzzy_sets.items():
            feature_path = (*path, str(feature_id))
            if self.all_declared and self.feature_ids and feature_id not in self.feature_ids:
                declared = ", ".join(self.feature_ids)
                message = (
                    f"no indicator has feature_id `{feature_id}`; declared: {declared}"
                    f"{_did_you_mean(feature_id, self.feature_ids)}"
                )
                self.findings.append(_Finding(feature_path, message, at_key=True))
            if not isinstance(sets, dict) or not sets:
                self.add(
                    feature_path,
                    "must map set names to membership functions, e.g. "
                    "`oversold: {type: triangular, parameters: [0, 20, 35]}`",
                    _show(sets),
                )
                continue
            for set_name, membership in sets.items():
                set_path = (*feature_path, str(set_name))
                if not isinstance(set_name, str):
                    self.add(set_path, "set names must be text; quote it", _show(set_name))
                self.check_membership(membership, set_path)

    def check_membership(self, membership: object, path: FieldPath) -> None:
        if not isinstance(membership, dict):
            self.add(
                path,
                "must be a mapping like `{type: triangular, parameters: [a, b, c]}`",
                _show(membership),
            )
            return
        self.keys(membership, path, _yaml_keys(FuzzySetSpec))
        kind = membership.get("type")
        if "type" not in membership:
            self.add((*path, "type"), "missing; one of: triangular, trapezoidal, gaussian")
        else:
            self.fields(membership, path, {"type": _choice(*_MEMBERSHIP_ARITY)})
        if "parameters" not in membership:
            self.add((*path, "parameters"), "missing; a list of numbers, e.g. [0, 20, 35]")
            return
        parameters = membership["parameters"]
        at = (*path, "parameters")
        if not isinstance(parameters, list) or not all(_is_number(p) for p in parameters):
            self.add(at, "must be a list of numbers, e.g. [0, 20, 35]", _show(parameters))
            return
        if not isinstance(kind, str) or kind not in _MEMBERSHIP_ARITY:
            return
        shape = _MEMBERSHIP_SHAPES[kind]
        arity_ok = len(parameters) == _MEMBERSHIP_ARITY[kind]
        if not arity_ok or not _membership_ordered(kind, [float(p) for p in parameters]):
            self.add(at, f"a {kind} set takes {shape}", _show(parameters))

    # model

    def check_model(self, model: dict[Any, Any], path: FieldPath) -> None:
        self.keys(model, path, _yaml_keys(ModelSpec))
        self.fields(model, path, {"type": _choice("mlp")})
        architecture = self.section(model, "architecture", path)
        if architecture is not None:
            at = (*path, "architecture")
            self.keys(architecture, at, _yaml_keys(ArchitectureSpec))
            rules = {
                "hidden_layers": _hidden_layers,
                "activation": _choice("relu", "tanh", "sigmoid", "leaky_relu", "gelu"),
                "output_activation": _choice("softmax"),
                "dropout": _number(0, 1),
            }
            self.fields(architecture, at, rules)
        features = self.section(model, "features", path)
        if features is not None:
            at = (*path, "features")
            self.keys(features, at, _yaml_keys(FeaturesSpec))
            rules = {
                "include_price_context": _flag,
                "lookback_periods": _whole(0),
                "scale_features": _flag,
            }
            self.fields(features, at, rules)
        training = self.section(model, "training", path)
        if training is not None:
            self.check_model_training(training, (*path, "training"))

    def check_model_training(self, training: dict[Any, Any], path: FieldPath) -> None:
        self.keys(training, path, _yaml_keys(ModelTrainingSpec))
        rules = {
            "learning_rate": _number(0, low_open=True),
            "batch_size": _whole(1),
            "epochs": _whole(1),
            "optimizer": _choice("adam", "adamw", "sgd", "rmsprop"),
            "weight_decay": _number(0),
        }
        self.fields(training, path, rules)
        early_stopping = self.section(training, "early_stopping", path, nullable=True)
        if early_stopping is not None:
            at = (*path, "early_stopping")
            self.keys(early_stopping, at, _yaml_keys(EarlyStoppingSpec))
            rules = {
                "patience": _whole(1),
                "monitor": _choice("val_loss", "val_accuracy"),
                "min_delta": _number(0),
            }
            self.fields(early_stopping, at, rules)

    # training

    def check_training(self, training: dict[Any, Any], path: FieldPath) -> None:
        self.keys(training, path, _yaml_keys(TrainingSpec))
        self.fields(training, path, {"method": _choice("supervised")})
        labels = self.section(training, "labels", path)
        if labels is not None:
            at = (*path, "labels")
            self.keys(labels, at, _yaml_keys(LabelsSpec))
            rules = {
                "source": _choice("zigzag"),
                "zigzag_threshold": _number(0, 1, low_open=True),
                "label_lookahead": _whole(1),
            }
            self.fields(labels, at, rules)
        data_split = self.section(training, "data_split", path)
        if data_split is not None:
            self.check_data_split(data_split, (*path, "data_split"))

    def check_data_split(self, split: dict[Any, Any], path: FieldPath) -> None:
        parts = _yaml_keys(DataSplitSpec)
        self.keys(split, path, parts)
        self.fields(split, path, dict.fromkeys(parts, _number(0, low_open=True)))
        defaults = msgspec.structs.asdict(DataSplitSpec())
        fractions = {
            part: split.get(part, defaults[part]) for part in ("train", "validation", "test")
        }
        if not all(_number(0, low_open=True)(value) is None for value in fractions.values()):
            return
        total = math.fsum(fractions.values())
        if abs(total - 1.0) > _SPLIT_TOLERANCE:
            shown = ", ".join(
                f"{part} {value:g}" + ("" if part in split else " (default)")
                for part, value in fractions.items()
            )
            self.add(
                path, f"train + validation + test must sum to 1; they sum to {total:g} ({shown})"
            )


def _membership_ordered(kind: str, points: list[float]) -> bool:
    if kind == "gaussian":
        return points[1] > 0
    return all(a <= b for a, b in itertools.pairwise(points)) and points[0] < points[-1]


# -- paths and lines -----------------------------------------------------------------------------


def _dotted(path: FieldPath) -> str:
    """``("indicators", 1, "period")`` → ``indicators[1].period``."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def _child(node: yaml.Node, segment: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The (key node, value node) under ``node`` for one path segment, if present."""
    if isinstance(segment, int):
        if isinstance(node, yaml.SequenceNode) and 0 <= segment < len(node.value):
            return None, node.value[segment]
        return None
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in reversed(node.value):  # YAML keeps the last duplicate
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == segment:
                return key_node, value_node
    return None


def _line_of(root: yaml.Node, path: FieldPath, *, at_key: bool) -> int:
    """1-based line of the deepest node along ``path`` (its key line for ``at_key``)."""
    node = root
    line: int = root.start_mark.line + 1
    for depth, segment in enumerate(path):
        found = _child(node, segment)
        if found is None:
            break
        key_node, node = found
        last = depth == len(path) - 1
        anchor = key_node if key_node is not None and (at_key or not last) else node
        line = anchor.start_mark.line + 1
    return line


# -- parsing and building ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    data: object
    root: yaml.Node | None


def _parse(text: str, file: str | None) -> _Parsed | StrategyProblem:
    """Compose and construct the single YAML document with the safe loader."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" {error.context}" if error.context else ""
        return StrategyProblem(
            path="",
            message=f"invalid YAML{where}: {error.problem}{context}; "
            "check the indentation, colons, quotes and brackets there",
            file=file,
            line=line,
        )
    except yaml.YAMLError as error:
        return StrategyProblem(path="", message=f"invalid YAML: {error}", file=file)
    finally:
        loader.dispose()
    return _Parsed(data, root)


def _version_text(root: yaml.Node, value: object) -> str:
    """``version`` as written (``2.10`` stays ``"2.10"``, not the float ``2.1``)."""
    found = _child(root, "version")
    if found is not None and isinstance(found[1], yaml.ScalarNode):
        return str(found[1].value)
    return str(value)


def _indicator_fields(item: dict[str, Any]) -> dict[str, Any]:
    """One YAML indicator item → IndicatorSpec fields, with catalog defaults filled in."""
    info = INDICATOR_CATALOG[item["name"]]
    fields: dict[str, Any] = {
        "name": item["name"],
        "feature_id": item.get("feature_id", item["name"]),
        "params": {key: item.get(key, default) for key, default in info.params.items()},
    }
    if info.uses_source and "source" in item:
        fields["source"] = item["source"]
    return fields


def _build(top: dict[str, Any], root: yaml.Node, file: str | None) -> StrategySpec:
    fields = dict(top)
    fields["indicators"] = [_indicator_fields(item) for item in top["indicators"]]
    if fields.get("version") is not None:
        fields["version"] = _version_text(root, fields["version"])
    fields["source"] = file
    return msgspec.convert(fields, StrategySpec)


def _conversion_problem(error: msgspec.ValidationError, file: str | None) -> StrategyProblem:
    """A msgspec message such as ``Expected `int`... - at `$.model.x``` as a problem."""
    message, _, location = str(error).rpartition(" - at ")
    path = location.strip("`").removeprefix("$").removeprefix(".")
    return StrategyProblem(
        path=path,
        message=f"{message or error}; fix this field (see docs/strategy-format.md)",
        file=file,
    )


def _examine(text: str, file: str | None) -> tuple[list[StrategyProblem], StrategySpec | None]:
    parsed = _parse(text, file)
    if isinstance(parsed, StrategyProblem):
        return [parsed], None
    top, root = parsed.data, parsed.root
    if root is None or top is None:
        message = "the document is empty; a strategy needs " + ", ".join(REQUIRED_SECTIONS)
        return [StrategyProblem(path="", message=message, file=file, line=1)], None
    if not isinstance(top, dict):
        message = (
            "the top level must be a mapping of sections (`name:`, `indicators:`, ...), "
            f"not a {type(top).__name__}"
        )
        problem = StrategyProblem(path="", message=message, value=_show(top), file=file, line=1)
        return [problem], None
    checker = _StrategyChecker()
    checker.check(top)
    problems = [
        StrategyProblem(
            path=_dotted(finding.path),
            message=finding.message,
            value=finding.value,
            file=file,
            line=_line_of(root, finding.path, at_key=finding.at_key),
        )
        for finding in checker.findings
    ]
    if problems:
        return sorted(problems, key=lambda problem: problem.line or 0), None
    try:
        return [], _build(top, root, file)
    except msgspec.ValidationError as error:
        return [_conversion_problem(error, file)], None


# -- public API ----------------------------------------------------------------------------------


def check_strategy_text(text: str, *, file: str | None = None) -> list[StrategyProblem]:
    """Every problem in a strategy's YAML text, in line order (empty when it is valid).

    Args:
        text: the YAML document.
        file: where the text came from, copied into each problem (``None`` for pasted text).

    Returns:
        The problems; an empty list means :func:`load_strategy` will succeed on this text.

    Example:
        >>> [p.path for p in check_strategy_text("name: demo\\nscope: global\\n")][-1]
        'scope'
    """
    return _examine(text, file)[0]


def is_strategy_file_path(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a file: a PathLike, or one line ending ``.yaml``/``.yml``."""
    if not isinstance(source, str):
        return True
    return "\n" not in source and source.lower().endswith(_YAML_SUFFIXES)


def _read(path: Path) -> str:
    """The file's text, or a clear error naming the path."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyNotFoundError(str(path), [str(path.absolute())]) from None
    except IsADirectoryError:
        raise ConfigError(
            f"Strategy path {str(path)!r} is a directory; pass a .yaml file inside it"
        ) from None
    except UnicodeDecodeError as error:
        problem = StrategyProblem(
            path="",
            message=f"the file is not UTF-8 text ({error.reason}); save it as UTF-8",
            file=str(path),
        )
        raise StrategyError([problem]) from None
    except OSError as error:
        raise ConfigError(
            f"Cannot read strategy file {str(path)!r}: {error.strerror}; check its permissions"
        ) from None


def load_strategy(source: str | os.PathLike[str]) -> StrategySpec:
    """Load and validate a strategy from a YAML file or YAML text.

    A ``Path`` (any PathLike), or a one-line string ending ``.yaml``/``.yml``, is read as a
    file; any other string is the YAML itself. Indicator parameters not given take the catalog
    defaults, ``feature_id`` defaults to the indicator's name, and ``source`` is kept only for
    indicators that read a price column.

    Args:
        source: a file path, or the YAML text.

    Returns:
        The validated strategy; ``spec.source`` is the file path, or ``None`` for text.

    Raises:
        StrategyNotFoundError: the file does not exist.
        StrategyError: the strategy has problems; ``error.problems`` lists every one.
        ConfigError: the path is a directory or cannot be read.

    Example:
        >>> from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
        >>> spec = load_strategy(SHIPPED_STRATEGIES_DIR / "rsi_mean_reversion.yaml")
        >>> spec.indicators[0].params
        {'period': 14.0}
    """
    if is_strategy_file_path(source):
        path = Path(source)
        file: str | None = str(path)
        text = _read(path)
    else:
        file = None
        text = str(source)
    problems, spec = _examine(text, file)
    if spec is None:
        raise StrategyError(problems)
    return spec
