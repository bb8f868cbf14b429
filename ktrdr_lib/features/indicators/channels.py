"""Price channels: Keltner Channels, Donchian Channels and the Ichimoku lines.

KTRDR's definitions (section 2.2 of the strategy-format facts). Every output is a price.
Keltner's middle line is the EMA of the close started at the first close (pandas
``ewm(span=period, adjust=False)``) and its half-width a multiple of the simple average of the
true range; Donchian's are the highest high and lowest low of the window; Ichimoku's lines are
mid-points of such windows. Ichimoku's ``displacement`` is accepted, as KTRDR accepted it, and
shifts nothing (KTRDR never applied it, so no value looks ahead).

Example:
    >>> upper, middle, lower = donchian_channels([3.0, 4.0, 5.0], [1.0, 2.0, 2.5], 2)
    >>> upper.tolist(), middle.tolist(), lower.tolist()
    ([nan, 4.0, 5.0], [nan, 2.5, 3.5], [nan, 1.0, 2.0])
"""

from __future__ import annotations

import msgspec
import numpy as np

from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    ema_settling,
    rolling_extreme,
    rolling_mean,
)
from ktrdr_lib.features.indicators.averages import exponential_mean
from ktrdr_lib.features.indicators.trend import simple_true_range
from ktrdr_lib.features.registry import IndicatorDef, InputColumn, flag, number, period

__all__ = ["ENTRIES", "donchian_channels", "ichimoku", "keltner_channels"]


def keltner_channels(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    period: int = 20,
    atr_period: int = 10,
    multiplier: float = 2.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keltner Channels: an EMA of the close +- a multiple of the average true range.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: span of the middle line's EMA (>= 1), started at the first close.
        atr_period: window of the simple average of the true range (>= 1; the first bar's true
            range is its ``high - low``).
        multiplier: half-width in average true ranges.

    Returns:
        ``(upper, middle, lower)``; the middle line from bar 0, the bands NaN for the first
        ``atr_period - 1`` bars.
    """
    check_period("period", period)
    check_period("atr_period", atr_period)
    highs, lows, closes = as_float(high), as_float(low), as_float(close)
    middle = exponential_mean(closes, 2.0 / (period + 1), adjust=False)
    half_width = rolling_mean(simple_true_range(highs, lows, closes), atr_period)
    half_width *= multiplier
    upper = middle + half_width
    lower = np.subtract(middle, half_width, out=half_width)
    return upper, middle, lower


def _mid_range(high: FloatArray, low: FloatArray, period: int) -> FloatArray:
    """``(highest high + lowest low) / 2`` over the last ``period`` bars."""
    middle = rolling_extreme(high, period, np.maximum)
    middle += rolling_extreme(low, period, np.minimum)
    middle *= 0.5
    return middle


def donchian_channels(
    high: ArrayLike, low: ArrayLike, period: int = 20, include_middle: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Donchian Channels: the highest high, the mid-point and the lowest low of the window.

    Args:
        high: bar highs.
        low: bar lows.
        period: window length (>= 1).
        include_middle: accepted as KTRDR accepted it; changes nothing (the middle line is
            always given).

    Returns:
        ``(upper, middle, lower)``, NaN for the first ``period - 1`` bars.
    """
    del include_middle  # KTRDR always emits the middle line
    check_period("period", period)
    upper = rolling_extreme(as_float(high), period, np.maximum)
    lower = rolling_extreme(as_float(low), period, np.minimum)
    middle = upper + lower
    middle *= 0.5
    return upper, middle, lower


def ichimoku(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    tenkan_period: int = 9,
    kijun_period: int = 26,
    senkou_b_period: int = 52,
    displacement: int = 26,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Ichimoku's lines, unshifted: conversion, base, the two leading spans and the close.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes (the lagging span is the close itself).
        tenkan_period: window of the conversion line's mid-range (>= 1).
        kijun_period: window of the base line's mid-range (>= 1).
        senkou_b_period: window of leading span B's mid-range (>= 1).
        displacement: accepted as KTRDR accepted it; changes nothing (KTRDR never shifted the
            spans).

    Returns:
        ``(tenkan, kijun, senkou_a, senkou_b, chikou)``; ``senkou_a`` is the mean of the first
        two; each NaN until its window (both windows for ``senkou_a``) is full.
    """
    del displacement  # accepted, never applied (KTRDR)
    for name, value in (
        ("tenkan_period", tenkan_period),
        ("kijun_period", kijun_period),
        ("senkou_b_period", senkou_b_period),
    ):
        check_period(name, value)
    highs, lows = as_float(high), as_float(low)
    tenkan = _mid_range(highs, lows, tenkan_period)
    kijun = _mid_range(highs, lows, kijun_period)
    senkou_a = tenkan + kijun
    senkou_a *= 0.5
    senkou_b = _mid_range(highs, lows, senkou_b_period)
    return tenkan, kijun, senkou_a, senkou_b, as_float(close).copy()


def _keltner_columns(period: int, atr_period: int, multiplier: float) -> dict[str, str]:
    """Late-v2 KTRDR column names (``KC_Upper_20_10_2.0``), also with ``2`` for ``2.0``."""
    columns = {f"KC_Middle_{period}": "middle"}
    for text in sorted({f"{float(multiplier)}", f"{float(multiplier):g}"}):
        columns[f"KC_Upper_{period}_{atr_period}_{text}"] = "upper"
        columns[f"KC_Lower_{period}_{atr_period}_{text}"] = "lower"
    return columns


def _ichimoku_warmup(
    tenkan_period: int, kijun_period: int, senkou_b_period: int, displacement: int
) -> int:
    del displacement
    return max(tenkan_period, kijun_period, senkou_b_period) - 1


_HLC: tuple[InputColumn, ...] = ("high", "low", "close")

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="keltnerchannels",
        summary="upper Keltner Channel (a price); also the middle EMA and the lower channel",
        inputs=_HLC,
        parameters=(
            period(default=20, bounds=msgspec.Meta(ge=2, le=500)),
            period("atr_period", 10, bounds=msgspec.Meta(ge=2, le=200)),
            number("multiplier", 2.0, bounds=msgspec.Meta(gt=0, le=10)),
        ),
        outputs=("upper", "middle", "lower"),
        compute=keltner_channels,
        warmup=lambda period, atr_period, multiplier: max(atr_period - 1, ema_settling(period)),
        technical_columns=_keltner_columns,
    ),
    IndicatorDef(
        name="donchianchannels",
        summary="upper Donchian Channel: the highest high (a price); also the middle and lower",
        inputs=("high", "low"),
        parameters=(
            period(default=20, bounds=msgspec.Meta(ge=2, le=500)),
            flag("include_middle", True),
        ),
        outputs=("upper", "middle", "lower"),
        compute=donchian_channels,
        warmup=lambda period, include_middle: period - 1,
        aliases=("donchian",),
        reference="talib.MAX(high, period), MIDPRICE, talib.MIN(low, period)",
    ),
    IndicatorDef(
        name="ichimoku",
        summary="Ichimoku conversion line, tenkan-sen (a price); also kijun, the spans, chikou",
        inputs=_HLC,
        parameters=(
            period("tenkan_period", 9),
            period("kijun_period", 26),
            period("senkou_b_period", 52),
            period("displacement", 26),
        ),
        outputs=("tenkan", "kijun", "senkou_a", "senkou_b", "chikou"),
        compute=ichimoku,
        warmup=_ichimoku_warmup,
        renamed_parameters={
            "tenkan": "tenkan_period",
            "kijun": "kijun_period",
            "senkou_b": "senkou_b_period",
        },
        reference="talib.MIDPRICE(high, low, tenkan_period) and the like",
    ),
)
"""The channel family's catalog entries."""
