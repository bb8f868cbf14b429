"""Compute a strategy's indicator on bars, and its warm-up, from its catalog entry.

:func:`compute_indicator` finds the :class:`~ktrdr_lib.strategy.spec.IndicatorSpec`'s entry in
:data:`~ktrdr_lib.features.indicators.catalog.INDICATOR_CATALOG`, reads the bar columns the
entry declares (``source`` is the strategy's price column), checks the parameters the entry
declares and calls its compute function; :func:`indicator_warmup` does the same for the
warm-up. Errors name the indicator and its ``feature_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.indicators._kernels import FloatArray
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, IndicatorParameter, ParameterValue
from ktrdr_lib.strategy.spec import IndicatorSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compute_indicator", "compute_outputs", "indicator_warmup"]


def _where(spec: IndicatorSpec) -> str:
    return f"indicator {spec.name!r} (feature_id {spec.feature_id!r})"


def _entry(spec: IndicatorSpec) -> IndicatorDef:
    return INDICATOR_CATALOG.require(spec.name, where=f" (feature_id {spec.feature_id!r})")


def _column(bars: pd.DataFrame, name: str, spec: IndicatorSpec) -> FloatArray:
    if name not in bars.columns:
        raise DataError(
            f"{_where(spec)} needs a {name!r} column, but the bars have only "
            f"{list(bars.columns)}; load OHLCV data with open, high, low, close and volume."
        )
    return np.asarray(bars[name], dtype=np.float64)


def _parameter(spec: IndicatorSpec, parameter: IndicatorParameter) -> ParameterValue:
    """The parameter's value: an ``int`` for a whole number (checked), a ``float`` for another
    number, a ``bool`` for a flag, the declared word for a choice (matched without case)."""
    key = parameter.name
    if key not in spec.params:
        raise ConfigError(
            f"{_where(spec)} is missing parameter {key!r} (has {sorted(spec.params)}); "
            f"add `{key}:` to the indicator in the strategy file."
        )
    value = spec.params[key]
    if parameter.flag:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{_where(spec)} parameter {key!r} must be true or false (got {value!r}); "
                "fix it in the strategy file."
            )
        return value
    if parameter.choices:
        word = next((c for c in parameter.choices if str(value).lower() == c.lower()), None)
        if word is None:
            raise ConfigError(
                f"{_where(spec)} parameter {key!r} must be one of "
                f"{', '.join(parameter.choices)} (got {value!r}); fix it in the strategy file."
            )
        return word
    if isinstance(value, bool | str):
        raise ConfigError(
            f"{_where(spec)} parameter {key!r} must be a number (got {value!r}); "
            "fix it in the strategy file."
        )
    if not parameter.whole:
        return float(value)
    if value != int(value) or not parameter.admits(value):
        raise ConfigError(
            f"{_where(spec)} parameter {key!r} must be a whole number "
            f"{parameter.bounds_text()} (got {value}); fix it in the strategy file."
        )
    return spec.int_param(key)


def _parameters(spec: IndicatorSpec, entry: IndicatorDef) -> dict[str, ParameterValue]:
    return {parameter.name: _parameter(spec, parameter) for parameter in entry.parameters}


def compute_indicator(spec: IndicatorSpec, bars: pd.DataFrame) -> FloatArray:
    """The value one strategy indicator feeds to its fuzzy sets, per bar.

    Args:
        spec: the indicator, its parameters complete (the strategy loader fills in defaults).
        bars: OHLCV frame with float columns ``open, high, low, close, volume``.

    Returns:
        float64 array of ``len(bars)``, NaN during warm-up: the entry's primary output. Per the
        catalog: ``sma`` and ``ema`` give price / average, ``bbands`` the position within the
        bands, ``stoch`` the slow %K (see :func:`~ktrdr_lib.features.indicators.stoch_k`),
        ``macd`` the MACD line.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
        DataError: ``bars`` lacks a column the indicator needs.

    Example:
        >>> import pandas as pd
        >>> bars = pd.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]})
        >>> spec = IndicatorSpec(name="sma", feature_id="sma_2", params={"period": 2})
        >>> compute_indicator(spec, bars).round(3).tolist()
        [nan, 1.333, 1.2, 1.143]
    """
    return compute_outputs(spec, bars)[_entry(spec).primary_output]


def compute_outputs(spec: IndicatorSpec, bars: pd.DataFrame) -> dict[str, FloatArray]:
    """Every output of one strategy indicator, per bar, by output name (primary first).

    Args:
        spec: the indicator, its parameters complete.
        bars: OHLCV frame with float columns ``open, high, low, close, volume``.

    Returns:
        ``{output: float64 array of len(bars)}`` in the entry's ``outputs`` order.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
        DataError: ``bars`` lacks a column the indicator needs.
    """
    entry = _entry(spec)
    columns = [
        _column(bars, spec.source if column == SOURCE else column, spec) for column in entry.inputs
    ]
    values = entry.compute(*columns, **_parameters(spec, entry))
    arrays = values if isinstance(values, tuple) else (values,)
    if len(arrays) != len(entry.outputs):
        raise ConfigError(
            f"{_where(spec)}: its compute function gave {len(arrays)} arrays for the "
            f"{len(entry.outputs)} outputs {entry.outputs}; this is a bug in the catalog entry."
        )
    return dict(zip(entry.outputs, arrays, strict=True))


def indicator_warmup(spec: IndicatorSpec) -> int:
    """Leading bars whose value is NaN or still carries its seed, for "too few bars" checks.

    Windowed indicators need ``period - 1`` (or ``period``) bars. Exponential ones count until
    the seed weighs at most 1 %: about ``4.6 period`` bars for Wilder smoothing and ``2.3 period``
    for an EMA, on top of the bars before the seed.

    Args:
        spec: the indicator, parameters complete.

    Returns:
        The number of leading bars not to use as features.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
    """
    entry = _entry(spec)
    return entry.warmup(**_parameters(spec, entry))
