"""What one run may ask for: caps that keep a request from exhausting the machine.

A strategy or a request's overrides can ask for a network of billions of parameters, a billion
epochs with early stopping removed, or thousands of symbols. :func:`check_run_limits` refuses
such a run before anything is stored, with a ConfigError that names the cap, the value and the
setting that raises it. Each cap has a default sized far above any real strategy and an
environment variable:

=====================  ==========================  ===============
cap                    setting                     default
=====================  ==========================  ===============
trainable parameters   ``KTRDR_MAX_PARAMETERS``    20 000 000
epochs                 ``KTRDR_MAX_EPOCHS``        10 000
batch size             ``KTRDR_MAX_BATCH_SIZE``    65 536
lookback periods       ``KTRDR_MAX_LOOKBACK``      500
LSTM/GRU window        ``KTRDR_MAX_SEQUENCE``      2 000
symbols per run        ``KTRDR_MAX_SYMBOLS``       50
timeframes per run     ``KTRDR_MAX_TIMEFRAMES``    8
override keys          ``KTRDR_MAX_OVERRIDES``     200
a run's wall time      ``KTRDR_MAX_RUN_HOURS``     72 (hours)
=====================  ==========================  ===============

The wall-time cap stops a run gracefully (after the epoch under way, then it evaluates and
saves) with the reason on record.

Example:
    >>> RunLimits().max_epochs
    10000
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import read_float, read_int
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["MAX_OVERRIDE_DEPTH", "RunLimits", "check_run_limits", "count_parameters"]

PRICE_CONTEXT_COLUMNS = 3
"""Columns ``model.features.include_price_context`` adds (before lags)."""
MAX_OVERRIDE_DEPTH = 16
"""The deepest nesting of an override's value (lists and mappings)."""

_SETTINGS = {
    "max_parameters": "KTRDR_MAX_PARAMETERS",
    "max_epochs": "KTRDR_MAX_EPOCHS",
    "max_batch_size": "KTRDR_MAX_BATCH_SIZE",
    "max_lookback": "KTRDR_MAX_LOOKBACK",
    "max_sequence_length": "KTRDR_MAX_SEQUENCE",
    "max_symbols": "KTRDR_MAX_SYMBOLS",
    "max_timeframes": "KTRDR_MAX_TIMEFRAMES",
    "max_overrides": "KTRDR_MAX_OVERRIDES",
    "max_run_hours": "KTRDR_MAX_RUN_HOURS",
}


@dataclass(frozen=True)
class RunLimits:
    """The caps (see the module); :meth:`from_env` reads the settings."""

    max_parameters: int = 20_000_000
    max_epochs: int = 10_000
    max_batch_size: int = 65_536
    max_lookback: int = 500
    max_sequence_length: int = 2_000
    max_symbols: int = 50
    max_timeframes: int = 8
    max_overrides: int = 200
    max_run_hours: float = 72.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunLimits:
        """The caps, each from its setting (``env``, default ``os.environ``); unset ones keep
        their defaults (:mod:`ktrdr_lib.settings` declares them).

        Raises:
            ConfigError: a setting is not a positive number.
        """
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = _SETTINGS[item.name]
            read = read_float if item.name == "max_run_hours" else read_int
            values[item.name] = read(name, env)
        return cls(**values)

    @property
    def max_run_seconds(self) -> float:
        """The wall-time cap in seconds."""
        return self.max_run_hours * 3600.0


def count_parameters(spec: StrategySpec, n_inputs: int) -> int:
    """The trainable parameters of the strategy's network on ``n_inputs`` feature columns
    (before lags; the lookback multiplies them)."""
    model = spec.model
    columns = n_inputs + (PRICE_CONTEXT_COLUMNS if model.features.include_price_context else 0)
    width = columns * (model.features.lookback_periods + 1)  # each column and its lags
    outputs = 1 if spec.decisions.output_format == "regression" else 3
    arch = model.architecture
    if model.type in ("lstm", "gru"):
        gates = 4 if model.type == "lstm" else 3
        total, size_in = 0, width
        for _ in range(arch.num_layers):
            total += gates * arch.hidden_size * (size_in + arch.hidden_size + 2)
            size_in = arch.hidden_size
        return total + arch.hidden_size * outputs + outputs
    total, size_in = 0, width
    for size in arch.hidden_layers:
        total += size_in * size + size
        size_in = size
    return total + size_in * outputs + outputs


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_OVERRIDE_DEPTH:
        return level
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list | tuple):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def check_overrides_shape(overrides: Mapping[str, Any], limits: RunLimits) -> None:
    """Refuse overrides with too many keys or values nested too deep (before they are
    applied: a deep value costs a line per level in every message)."""
    if len(overrides) > limits.max_overrides:
        raise ConfigError(
            f"overrides: {len(overrides)} keys, more than {limits.max_overrides} "
            f"({_SETTINGS['max_overrides']}); override a few fields, or edit the strategy file"
        )
    for key, value in overrides.items():
        if _depth(value) > MAX_OVERRIDE_DEPTH:
            raise ConfigError(
                f"overrides.{key}: the value nests deeper than {MAX_OVERRIDE_DEPTH} levels; a "
                "strategy field takes a number, a word or a short list"
            )


def check_run_limits(
    spec: StrategySpec,
    *,
    symbols: list[str],
    timeframes: list[str],
    n_inputs: int,
    limits: RunLimits,
) -> None:
    """Refuse a run that asks for more than a cap (see the module).

    Raises:
        ConfigError: naming the cap, the value and the setting that raises it.
    """
    training = spec.model.training
    arch = spec.model.architecture
    checks: list[tuple[str, float, float, str]] = [
        ("epochs", training.epochs, limits.max_epochs, "max_epochs"),
        ("model.training.batch_size", training.batch_size, limits.max_batch_size, "max_batch_size"),
        (
            "model.features.lookback_periods",
            spec.model.features.lookback_periods,
            limits.max_lookback,
            "max_lookback",
        ),
        ("symbols", len(symbols), limits.max_symbols, "max_symbols"),
        ("timeframes", len(timeframes), limits.max_timeframes, "max_timeframes"),
    ]
    if arch.sequence_length is not None:
        checks.append(
            (
                "model.architecture.sequence_length",
                arch.sequence_length,
                limits.max_sequence_length,
                "max_sequence_length",
            )
        )
    for what, value, cap, name in checks:
        if value > cap:
            raise ConfigError(
                f"{what}: {value:g} is more than this server allows ({cap:g}, "
                f"{_SETTINGS[name]}); ask for less, or raise {_SETTINGS[name]} where you run it"
            )
    parameters = count_parameters(spec, n_inputs)
    if parameters > limits.max_parameters:
        raise ConfigError(
            f"model.architecture: the network would have about {parameters:,} trainable "
            f"parameters on {n_inputs} inputs, more than {limits.max_parameters:,} "
            f"({_SETTINGS['max_parameters']}); use smaller layers (hidden_layers, hidden_size, "
            "num_layers) or fewer lookback periods"
        )
