"""A StrategySpec back as a v3 strategy file, and request overrides applied to it.

:func:`strategy_to_config` is what is saved with a model and what inference loads again with
:func:`~ktrdr_lib.strategy.loader.load_strategy`: the v3 layout, every value explicit, each
hyper-parameter at the place it was read from (``training.*`` or ``model.training.*``) and the
keys KTRDR did not use either back where they were, so loading it gives an equal spec (apart
from ``layout``, ``notices`` and ``source``, which belong to the file it was first read from).
Models saved before carry v2 configurations, which still load.

Example:
    >>> from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
    >>> from ktrdr_lib.strategy.loader import load_strategy
    >>> spec = load_strategy(SHIPPED_STRATEGIES_DIR / "rsi_mean_reversion.yaml")
    >>> config = strategy_to_config(spec)
    >>> list(config["indicators"]["rsi"]), config["nn_inputs"][0]
    (['type', 'period'], {'fuzzy_set': 'rsi', 'timeframes': 'all'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from ktrdr_lib.errors import ConfigError, StrategyError
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.strategy.spec import IndicatorSpec, ModelTrainingSpec, StrategySpec

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
"""Short override names → dotted paths in the strategy layout."""

_HYPER = ModelTrainingSpec.HYPERPARAMETERS


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _indicator(indicator: IndicatorSpec) -> dict[str, Any]:
    """One indicator as a v3 item: ``type`` and its parameters beside it."""
    entry = INDICATOR_CATALOG.require(indicator.type)
    item: dict[str, Any] = {"type": entry.name}
    for key, value in indicator.params.items():
        parameter = entry.parameter(key)
        whole = parameter is not None and parameter.numeric and parameter.whole
        item[key] = int(value) if whole and isinstance(value, int | float) else value
    if indicator.source != "close":
        item["source"] = indicator.source
    if indicator.data_source is not None:
        item["data_source"] = indicator.data_source
    return item


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


def _drop_unused_defaults(
    model: dict[str, Any], training: dict[str, Any], spec: StrategySpec
) -> None:
    """Leave out defaults that do not apply (LSTM sizes of an MLP, the focal loss's gamma
    with another loss …): loading gives them back."""
    defaults = {"hidden_size": 64, "num_layers": 2, "focal_gamma": 2.0, "huber_delta": 0.01}
    unused = {
        "hidden_size": spec.model.type == "mlp",
        "num_layers": spec.model.type == "mlp",
        "focal_gamma": spec.training.loss != "focal",
        "huber_delta": spec.training.loss != "huber",
    }
    model["architecture"].pop("output_activation", None)  # kept for older saved models only
    for key, section in (
        ("hidden_size", model["architecture"]),
        ("num_layers", model["architecture"]),
        ("focal_gamma", training),
        ("huber_delta", training),
    ):
        if unused[key] and section.get(key) == defaults[key]:
            section.pop(key)


def strategy_to_config(spec: StrategySpec) -> dict[str, Any]:
    """The strategy as a v3 strategy file's mapping (what is saved with a model).

    Loading ``yaml.safe_dump(strategy_to_config(spec))`` gives a spec equal to ``spec`` apart
    from ``layout``, ``notices`` and ``source``.
    """
    data: dict[str, Any] = {"name": spec.name}
    for key in ("description", "version", "hypothesis"):
        if getattr(spec, key) is not None:
            data[key] = getattr(spec, key)
    if spec.training_data is not None:
        data["training_data"] = _drop_none(msgspec.to_builtins(spec.training_data))
    if spec.context_data:
        data["context_data"] = _drop_none(msgspec.to_builtins(spec.context_data))
    data["indicators"] = {key: _indicator(item) for key, item in spec.indicators.items()}
    fuzzy_sets: dict[str, Any] = {}
    for key, fuzzy_set in spec.fuzzy_sets.items():
        written: dict[str, Any] = {"indicator": fuzzy_set.indicator}
        if fuzzy_set.input_transform is not None:
            written["input_transform"] = msgspec.to_builtins(fuzzy_set.input_transform)
        written.update(msgspec.to_builtins(fuzzy_set.memberships))
        fuzzy_sets[key] = written
    data["fuzzy_sets"] = fuzzy_sets
    data["nn_inputs"] = _drop_none(msgspec.to_builtins(spec.nn_inputs))
    model = _drop_none(msgspec.to_builtins(spec.model))
    training = _drop_none(msgspec.to_builtins(spec.training))
    _drop_unused_defaults(model, training, spec)
    model["training"] = {}
    resolved = msgspec.to_builtins(spec.model.training)
    for key in _HYPER:
        source = spec.hyperparameter_sources.get(key, "default")
        if source == "default":
            continue
        value = resolved[key] if resolved[key] is not None else {"enabled": False}
        (training if source.startswith("training.") else model["training"])[key] = value
    if spec.model.training.analytics.enabled:
        model["training"]["analytics"] = {"enabled": True}
    data["model"] = model
    data["decisions"] = _drop_none(msgspec.to_builtins(spec.decisions))
    data["training"] = training
    for path, value in spec.ignored.items():
        _set_dotted(data, path, value)
    return data


def _redirected(path: str, spec: StrategySpec, config: dict[str, Any]) -> str:
    """An override path for a hyper-parameter, where the strategy reads it from.

    Setting a whole hyper-parameter (``model.training.epochs``) removes it from the other place
    it may be written (``training.epochs``, which comes first); setting a part of one
    (``model.training.early_stopping.patience``) goes where the strategy has it.
    """
    parts = path.split(".")
    inside = 2 if parts[:2] == ["model", "training"] else 1 if parts[0] == "training" else 0
    if not inside or len(parts) <= inside or parts[inside] not in _HYPER:
        return path
    key, rest = parts[inside], parts[inside + 1 :]
    if not rest:
        config.get("training", {}).pop(key, None)
        config.get("model", {}).get("training", {}).pop(key, None)
        return path
    source = spec.hyperparameter_sources.get(key, "default")
    base = source if source != "default" else f"model.training.{key}"
    return ".".join([base, *rest])


def _require_used(paths: Mapping[str, str], updated: StrategySpec) -> None:
    """Refuse an override that changes nothing: a key the strategy keeps but no trainer reads
    (an open section's extra), or one that does not apply to this strategy (an LSTM size on an
    MLP)."""
    config = strategy_to_config(updated)
    for key, path in paths.items():
        if any(path == kept or path.startswith(f"{kept}.") for kept in updated.ignored):
            raise ConfigError(
                f"override {key!r} sets {path}, which training does not read (the strategy "
                f"format keeps such keys but nothing uses them). Check the spelling against "
                f"docs/strategy-format.md."
            )
        node: Any = config
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, Mapping) or part not in node:
                where = ".".join(parts[:depth]) or "the strategy"
                known = ", ".join(sorted(node)) if isinstance(node, Mapping) else "no fields"
                raise ConfigError(
                    f"override {key!r} sets nothing this strategy uses: {where} has no "
                    f"{part!r} (it has: {known}). Check the spelling against "
                    f"docs/strategy-format.md."
                )
            node = node[part]


def apply_overrides(spec: StrategySpec, overrides: Mapping[str, Any]) -> StrategySpec:
    """A copy of ``spec`` with ``overrides`` applied and validated again.

    Keys are dotted paths in the strategy's v3 layout (``model.training.learning_rate``) or the
    short aliases in :data:`OVERRIDE_ALIASES` (``epochs``). The copy keeps the original's
    ``layout``, ``notices`` and ``source``.

    Raises:
        ConfigError: an override names no field or gives a value the format forbids; the
            message names the override and the rule it broke.
    """
    if not overrides:
        return spec
    from ktrdr_lib.strategy.loader import check_strategy, load_strategy

    config = strategy_to_config(spec)
    paths: dict[str, str] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"override keys must be non-empty strings, got {key!r}")
        paths[key] = _redirected(OVERRIDE_ALIASES.get(key, key), spec, config)
        _set_dotted(config, paths[key], value)
    text = yaml.safe_dump(config, sort_keys=False)
    problems = check_strategy(text).problems
    if problems:
        lines = "; ".join(f"{p.path}: {p.message}" for p in problems)
        names = ", ".join(sorted(overrides))
        raise ConfigError(
            f"overrides ({names}) make strategy {spec.name!r} invalid: {lines}. "
            f"Short override names: {', '.join(OVERRIDE_ALIASES)}; other keys are dotted paths."
        )
    try:
        updated = load_strategy(text)
    except StrategyError as exc:  # pragma: no cover - check_strategy found nothing
        raise ConfigError(str(exc)) from exc
    _require_used(paths, updated)
    return msgspec.structs.replace(
        updated, source=spec.source, layout=spec.layout, notices=list(spec.notices)
    )
