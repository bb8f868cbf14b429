"""Money-flow indicators: Chaikin money flow and the accumulation/distribution line.

Both start from the money flow multiplier ``((close - low) - (high - close)) / (high - low)``
(-1 when the bar closes on its low, +1 on its high, 0 when the bar has no range) and the
money flow volume, the multiplier times the volume. KTRDR's definitions (section 2.2 of the
strategy-format facts), outputs included: CMF also gives its momentum, an EMA signal line,
their difference and whether it is above or below zero; the A/D line (TA-Lib's ``AD``) also
gives its 10-bar rate of change, 21-bar momentum and its distance from its 50-bar average.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    ema_settling,
    lagged,
    lagged_difference,
    partial_rolling_mean,
    rolling_sum,
)
from ktrdr_lib.features.indicators.averages import exponential_mean
from ktrdr_lib.features.registry import IndicatorDef, InputColumn, flag, period

__all__ = ["ENTRIES", "ad_line", "cmf", "money_flow_multiplier"]

# KTRDR's fixed look-backs for the extra outputs.
_CMF_MOMENTUM_LAG = 5
_CMF_SIGNAL_SPAN = 9
_AD_ROC_LAG = 10
_AD_MOMENTUM_LAG = 21
_AD_AVERAGE_PERIOD = 50
_AD_AVERAGE_MIN_BARS = 20


def money_flow_multiplier(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """``((close - low) - (high - close)) / (high - low)``, 0 for a bar without range.

    Example:
        >>> money_flow_multiplier([2.0, 1.0], [0.0, 1.0], [2.0, 1.0]).tolist()
        [1.0, 0.0]
    """
    highs, lows, closes = as_float(high), as_float(low), as_float(close)
    location = 2.0 * closes
    location -= lows
    location -= highs
    return divide(location, highs - lows, 0.0, out=location)


def _signs(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(1.0 where ``values > 0``, 1.0 where ``< 0``), each 0.0 elsewhere and NaN where NaN."""
    missing = np.isnan(values)
    above = (values > 0).astype(np.float64)
    below = (values < 0).astype(np.float64)
    above[missing] = np.nan
    below[missing] = np.nan
    return above, below


def cmf(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, period: int = 21
) -> tuple[FloatArray, ...]:
    """Chaikin money flow and KTRDR's companions to it.

    ``cmf = sum(money flow volume) / sum(volume)`` over ``period`` bars (0 where no volume
    traded); ``momentum = cmf - cmf 5 bars ago``; ``signal`` is the EMA of ``cmf`` over 9 bars
    seeded with its first value (pandas ``ewm(span=9, adjust=False)``); ``histogram = cmf -
    signal``; ``above_zero`` / ``below_zero`` are 1.0 or 0.0.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        volume: bar volumes.
        period: window (>= 1).

    Returns:
        ``(cmf, mf_multiplier, mf_volume, momentum, signal, histogram, above_zero,
        below_zero)``; everything computed from ``cmf`` is NaN where it is (the first
        ``period - 1`` bars; ``momentum`` 5 more), the multiplier and volume are never NaN.
    """
    check_period("period", period)
    multiplier = money_flow_multiplier(high, low, close)
    volumes = as_float(volume)
    flow_volume = multiplier * volumes
    flow_sum = rolling_sum(flow_volume, period)
    volume_sum = rolling_sum(volumes, period)
    money_flow = divide(flow_sum, volume_sum, 0.0, out=flow_sum)
    momentum = lagged_difference(money_flow, _CMF_MOMENTUM_LAG)
    # pandas' EMA starts at the first value and steps over gaps; so does exponential_mean.
    signal = np.empty(money_flow.shape[0])
    signal[: period - 1] = np.nan
    signal[period - 1 :] = exponential_mean(
        money_flow[period - 1 :], 2.0 / (_CMF_SIGNAL_SPAN + 1), adjust=False
    )
    histogram = money_flow - signal
    above_zero, below_zero = _signs(money_flow)
    return (
        money_flow,
        multiplier,
        flow_volume,
        momentum,
        signal,
        histogram,
        above_zero,
        below_zero,
    )


def ad_line(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    use_sma_smoothing: bool = False,
    smoothing_period: int = 21,
) -> tuple[FloatArray, ...]:
    """Accumulation/distribution line (TA-Lib's ``AD``) and KTRDR's companions to it.

    ``line`` is the running sum of the money flow volume; ``roc_10 = 100 (line / line 10 bars
    ago - 1)``; ``momentum_21 = line - line 21 bars ago``; ``relative_strength = 100 (line /
    its mean over the last 50 bars - 1)``, the mean taken over fewer bars from the 20th bar on.

    ``use_sma_smoothing`` and ``smoothing_period`` are accepted and change nothing, as in
    KTRDR, where they added a smoothed column that none of these outputs is.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        volume: bar volumes.
        use_sma_smoothing: accepted, no effect.
        smoothing_period: accepted, no effect.

    Returns:
        ``(line, mf_multiplier, mf_volume, roc_10, momentum_21, relative_strength)``:
        ``roc_10`` and ``momentum_21`` NaN for their first 10 / 21 bars, ``relative_strength``
        for its first 19; the ratios NaN where they divide by zero.
    """
    multiplier = money_flow_multiplier(high, low, close)
    flow_volume = multiplier * as_float(volume)
    line = np.cumsum(flow_volume)
    rate = lagged_difference(line, _AD_ROC_LAG)
    rate *= 100.0
    rate = divide(rate, lagged(line, _AD_ROC_LAG), np.nan, out=rate)
    momentum = lagged_difference(line, _AD_MOMENTUM_LAG)
    average = partial_rolling_mean(line, _AD_AVERAGE_PERIOD, _AD_AVERAGE_MIN_BARS)
    strength = divide(line, average, np.nan, out=average)
    strength -= 1.0
    strength *= 100.0
    return line, multiplier, flow_volume, rate, momentum, strength


_HLCV: tuple[InputColumn, ...] = ("high", "low", "close", "volume")

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="cmf",
        summary="Chaikin money flow, -1..1; also its multiplier, volume, momentum and signal",
        inputs=_HLCV,
        parameters=(period(default=21, bounds=msgspec.Meta(ge=2, le=500)),),
        outputs=(
            "cmf",
            "mf_multiplier",
            "mf_volume",
            "momentum",
            "signal",
            "histogram",
            "above_zero",
            "below_zero",
        ),
        compute=cmf,
        warmup=lambda period: period - 1 + max(_CMF_MOMENTUM_LAG, ema_settling(_CMF_SIGNAL_SPAN)),
        aliases=("chaikinmoneyflow",),
    ),
    IndicatorDef(
        name="adline",
        summary="accumulation/distribution line (running money flow volume); also its changes",
        inputs=_HLCV,
        parameters=(
            flag("use_sma_smoothing", False),
            period("smoothing_period", 21, bounds=msgspec.Meta(ge=2, le=200)),
        ),
        outputs=(
            "line",
            "mf_multiplier",
            "mf_volume",
            "roc_10",
            "momentum_21",
            "relative_strength",
        ),
        compute=ad_line,
        warmup=lambda use_sma_smoothing, smoothing_period: _AD_AVERAGE_PERIOD - 1,
        aliases=("accumulationdistribution",),
        reference="talib.AD(high, low, close, volume)",
    ),
)
"""The money-flow family's catalog entries."""
