"""A StrategySpec back in the YAML layout, and request overrides applied to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from ktrdr_lib.errors import ConfigError, StrategyError
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["OVERRIDE_ALIASES", "apply_overrides", "strategy_to_config"]

OVERRIDE_ALIASES: dict[str, str] = {
    "epochs": "model.training.epochs",
    "batch_size": "model.training.batch_size",
    "learning_rate": "model.training.learning_rate",
    "optimizer": "model.training.optimizer",
    "dropout": "model.architecture.dropout",
    "hidden_layers": "model.architecture.hidden_layers",
    "lookback_periods": "model.features.lookback_periods",
    "zigzag_threshold": "training.labels.zigzag_threshold",
}


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def strategy_to_config(spec: StrategySpec) -> dict[str, Any]:
    """The strategy as a mapping in the v2 file layout (what is saved with a model).

    Loading ``yaml.safe_dump(strategy_to_config(spec))`` gives an equal spec back.
    """
    data: dict[str, Any] = _drop_none(msgspec.to_builtins(spec))
    data.pop("source", None)
    indicators: list[dict[str, Any]] = []
    for ind in spec.indicators:
        item: dict[str, Any] = {"name": ind.name}
        if ind.feature_id != ind.name:
            item["feature_id"] = ind.feature_id
        entry = INDICATOR_CATALOG.require(ind.name)
        if entry.uses_source and ind.source != "close":
            item["source"] = ind.source
        for key, value in ind.params.items():
            parameter = entry.parameter(key)
            whole = parameter is not None and parameter.numeric and parameter.whole
            item[key] = int(value) if whole and isinstance(value, int | float) else value
        indicators.append(item)
    data["indicators"] = indicators
    return data


def _set_dotted(config: dict[str, Any], path: str, value: Any) -> None:
    node: Any = config
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {path!r}: {where} is not a section; cannot set {path}")
        node = child
    node[parts[-1]] = value


def apply_overrides(spec: StrategySpec, overrides: Mapping[str, Any]) -> StrategySpec:
    """A copy of ``spec`` with ``overrides`` applied and validated again.

    Keys are dotted paths in the strategy layout (``model.training.epochs``) or the short
    aliases in :data:`OVERRIDE_ALIASES` (``epochs``).

    Raises:
        ConfigError: an override names no field or gives a value the format forbids; the
            message names the override and the rule it broke.
    """
    if not overrides:
        return spec
    from ktrdr_lib.strategy.loader import check_strategy_text, load_strategy

    config = strategy_to_config(spec)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"override keys must be non-empty strings, got {key!r}")
        _set_dotted(config, OVERRIDE_ALIASES.get(key, key), value)
    text = yaml.safe_dump(config, sort_keys=False)
    problems = check_strategy_text(text)
    if problems:
        lines = "; ".join(f"{p.path}: {p.message}" for p in problems)
        names = ", ".join(sorted(overrides))
        raise ConfigError(
            f"overrides ({names}) make strategy {spec.name!r} invalid: {lines}. "
            f"Short override names: {', '.join(OVERRIDE_ALIASES)}; other keys are dotted paths."
        )
    try:
        updated = load_strategy(text)
    except StrategyError as exc:  # pragma: no cover - check_strategy_text found nothing
        raise ConfigError(str(exc)) from exc
    return msgspec.structs.replace(updated, source=spec.source)
