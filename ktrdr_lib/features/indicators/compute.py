"""Compute a strategy's indicator on bars, and its warm-up, from its catalog entry.

:func:`compute_indicator` finds the :class:`~ktrdr_lib.strategy.spec.IndicatorSpec`'s entry in
:data:`~ktrdr_lib.features.indicators.catalog.INDICATOR_CATALOG`, reads the bar columns the
entry declares (``source`` is the strategy's price column), checks the parameters the entry
declares and calls its compute function; :func:`indicator_warmup` does the same for the
warm-up. Errors name the indicator and, when given, its id in the strategy.
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


def _where(spec: IndicatorSpec, indicator_id: str | None) -> str:
    if indicator_id is None or indicator_id == spec.type:
        return f"indicator {spec.type!r}"
    return f"indicator {indicator_id!r} ({spec.type})"


def _entry(spec: IndicatorSpec, indicator_id: str | None) -> IndicatorDef:
    where = "" if indicator_id is None else f" (indicator {indicator_id!r})"
    return INDICATOR_CATALOG.require(spec.type, where=where)


def _column(
    bars: pd.DataFrame, name: str, spec: IndicatorSpec, indicator_id: str | None
) -> FloatArray:
    symbol, timeframe = bars.attrs.get("symbol"), bars.attrs.get("timeframe")
    data = " ".join(["the", *(str(part) for part in (symbol, timeframe) if part), "data"])
    if name not in bars.columns:
        where = _where(spec, indicator_id)
        if name == "volume":
            raise DataError(
                f"{data} has no volume, and {where} needs a 'volume' column (the bars "
                f"have only {list(bars.columns)}); load data with volume, or drop this "
                "indicator from the strategy."
            )
        raise DataError(
            f"{where} needs a {name!r} column, but the bars have only "
            f"{list(bars.columns)}; load OHLCV data with open, high, low, close and volume."
        )
    values = np.asarray(bars[name], dtype=np.float64)
    if name == "volume" and len(values) and not np.any(values):
        raise DataError(
            f"{data} has no volume (it is 0 on every bar, as FX quotes often are), and "
            f"{_where(spec, indicator_id)} is computed from volume; use data with traded "
            "volume, or drop this indicator from the strategy."
        )
    return values


def _parameter(
    spec: IndicatorSpec, parameter: IndicatorParameter, indicator_id: str | None
) -> ParameterValue:
    """The parameter's value: an ``int`` for a whole number (checked), a ``float`` for another
    number, a ``bool`` for a flag, the declared word for a choice (matched without case)."""
    key, where = parameter.name, _where(spec, indicator_id)
    if key not in spec.params:
        raise ConfigError(
            f"{where} is missing parameter {key!r} (has {sorted(spec.params)}); "
            f"add `{key}:` to the indicator in the strategy file."
        )
    value = spec.params[key]
    if parameter.flag:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{where} parameter {key!r} must be true or false (got {value!r}); "
                "fix it in the strategy file."
            )
        return value
    if parameter.choices:
        word = next((c for c in parameter.choices if str(value).lower() == c.lower()), None)
        if word is None:
            raise ConfigError(
                f"{where} parameter {key!r} must be one of "
                f"{', '.join(parameter.choices)} (got {value!r}); fix it in the strategy file."
            )
        return word
    if isinstance(value, bool | str):
        raise ConfigError(
            f"{where} parameter {key!r} must be a number (got {value!r}); "
            "fix it in the strategy file."
        )
    if not parameter.whole:
        return float(value)
    if value != int(value) or not parameter.admits(value):
        raise ConfigError(
            f"{where} parameter {key!r} must be a whole number "
            f"{parameter.bounds_text()} (got {value}); fix it in the strategy file."
        )
    return int(value)


def _parameters(
    spec: IndicatorSpec, entry: IndicatorDef, indicator_id: str | None
) -> dict[str, ParameterValue]:
    return {p.name: _parameter(spec, p, indicator_id) for p in entry.parameters}


def compute_indicator(
    spec: IndicatorSpec, bars: pd.DataFrame, *, indicator_id: str | None = None
) -> FloatArray:
    """The value one strategy indicator feeds to its fuzzy sets, per bar.

    Args:
        spec: the indicator, its parameters complete (the strategy loader fills in defaults).
        bars: OHLCV frame with float columns ``open, high, low, close, volume``.
        indicator_id: the strategy's id for it, for messages.

    Returns:
        float64 array of ``len(bars)``, NaN during warm-up: the entry's primary output.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
        DataError: ``bars`` lacks a column the indicator needs.

    Example:
        >>> import pandas as pd
        >>> bars = pd.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]})
        >>> spec = IndicatorSpec(type="rsi", params={"period": 2})
        >>> compute_indicator(spec, bars).round(1).tolist()
        [nan, nan, 100.0, 100.0]
    """
    outputs = compute_outputs(spec, bars, indicator_id=indicator_id)
    return outputs[_entry(spec, indicator_id).primary_output]


def compute_outputs(
    spec: IndicatorSpec, bars: pd.DataFrame, *, indicator_id: str | None = None
) -> dict[str, FloatArray]:
    """Every output of one strategy indicator, per bar, by output name (primary first).

    Args:
        spec: the indicator, its parameters complete.
        bars: OHLCV frame with float columns ``open, high, low, close, volume``.
        indicator_id: the strategy's id for it, for messages.

    Returns:
        ``{output: float64 array of len(bars)}`` in the entry's ``outputs`` order.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
        DataError: ``bars`` lacks a column the indicator needs.
    """
    entry = _entry(spec, indicator_id)
    columns = [
        _column(bars, spec.source if column == SOURCE else column, spec, indicator_id)
        for column in entry.inputs
    ]
    values = entry.compute(*columns, **_parameters(spec, entry, indicator_id))
    arrays = values if isinstance(values, tuple) else (values,)
    if len(arrays) != len(entry.outputs):
        where = _where(spec, indicator_id)
        raise ConfigError(
            f"{where}: its compute function gave {len(arrays)} arrays for the "
            f"{len(entry.outputs)} outputs {entry.outputs}; this is a bug in the catalog entry."
        )
    return dict(zip(entry.outputs, arrays, strict=True))


def indicator_warmup(spec: IndicatorSpec, *, indicator_id: str | None = None) -> int:
    """Leading bars whose value is NaN or still carries its seed, for "too few bars" checks.

    Windowed indicators need ``period - 1`` (or ``period``) bars. Exponential ones count until
    the seed weighs at most 1 %: about ``4.6 period`` bars for Wilder smoothing and ``2.3 period``
    for an EMA, on top of the bars before the seed.

    Args:
        spec: the indicator, parameters complete.
        indicator_id: the strategy's id for it, for messages.

    Returns:
        The number of leading bars not to use as features.

    Raises:
        ConfigError: unknown indicator name, or a missing or invalid parameter.
    """
    entry = _entry(spec, indicator_id)
    return entry.warmup(**_parameters(spec, entry, indicator_id))
