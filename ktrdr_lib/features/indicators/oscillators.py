"""Momentum oscillators: RSI, stochastic %K, rate of change, momentum, Williams %R and CCI.

Each agrees with its TA-Lib counterpart to rounding (see the entries' ``reference``). Where a
denominator is zero (a flat market) an oscillator gives its neutral value instead of NaN or
inf: RSI and %K 50, Williams %R -50, CCI 0.
"""

from __future__ import annotations

import numpy as np

from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    first_difference,
    lagged,
    price_range_position,
    rolling_mean,
    typical_price,
    wilder,
    wilder_settling,
    window_spread,
)
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, InputColumn, period

__all__ = ["ENTRIES", "cci", "momentum", "roc", "rsi", "stoch_k", "williams_r"]

# Lambert's constant in the commodity channel index.
_CCI_SCALE = 0.015


def rsi(close: ArrayLike, period: int = 14) -> FloatArray:
    """Relative strength index with Wilder smoothing, 0-100.

    Args:
        close: prices.
        period: smoothing period (>= 1).

    Returns:
        RSI, NaN for the first ``period`` bars; 50 where prices did not move at all.
    """
    check_period("period", period)
    prices = as_float(close)
    change = first_difference(prices)
    average_gain = wilder(np.maximum(change, 0.0), period, first_valid=1, in_place=True)
    # Losses smoothed as negative numbers: negating afterwards is exact (the recursion is
    # linear), and it reuses the change array.
    average_loss = wilder(np.minimum(change, 0.0, out=change), period, 1, in_place=True)
    total = np.subtract(average_gain, average_loss, out=average_loss)
    average_gain *= 100.0
    return divide(average_gain, total, 50.0, out=average_gain)


def stoch_k(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, k_period: int = 14, d_period: int = 3
) -> FloatArray:
    """Stochastic %K, smoothed: the "slow %K", 0-100.

    The raw (fast) %K is ``100 (close - lowest low) / (highest high - lowest low)`` over
    ``k_period`` bars; this returns its simple average over ``d_period`` bars, which is TA-Lib's
    ``STOCH(..., slowk_period=d_period)`` slow %K. ``d_period=1`` gives the raw fast %K.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        k_period: look-back for the highest high and lowest low (>= 1).
        d_period: smoothing window (>= 1).

    Returns:
        %K, NaN for the first ``k_period + d_period - 2`` bars; a flat window counts as 50.
    """
    check_period("k_period", k_period)
    check_period("d_period", d_period)
    above_low, span = price_range_position(as_float(high), as_float(low), as_float(close), k_period)
    above_low *= 100.0
    fast_k = divide(above_low, span, 50.0, out=above_low)
    return fast_k if d_period == 1 else rolling_mean(fast_k, d_period, first_valid=k_period - 1)


def roc(price: ArrayLike, period: int = 10) -> FloatArray:
    """Rate of change in percent: ``100 (price / price n bars ago - 1)``.

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        ROC, NaN for the first ``period`` bars.
    """
    check_period("period", period)
    prices = as_float(price)
    before = lagged(prices, period)
    change = np.subtract(prices, before)
    change *= 100.0
    return divide(change, before, np.nan, out=change)


def momentum(price: ArrayLike, period: int = 10) -> FloatArray:
    """Momentum: price minus the price ``period`` bars ago.

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        Momentum in price units, NaN for the first ``period`` bars.
    """
    check_period("period", period)
    prices = as_float(price)
    return prices - lagged(prices, period)


def williams_r(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Williams %R: ``-100 (highest high - close) / (highest high - lowest low)``, -100..0.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: look-back (>= 1).

    Returns:
        %R, NaN for the first ``period - 1`` bars; -50 where the window is flat.
    """
    check_period("period", period)
    above_low, span = price_range_position(as_float(high), as_float(low), as_float(close), period)
    above_low *= 100.0
    percent_r = divide(above_low, span, 50.0, out=above_low)
    percent_r -= 100.0
    return percent_r


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Commodity channel index: ``(tp - SMA(tp)) / (0.015 mean |tp - SMA(tp)|)``.

    ``tp`` is the typical price ``(high + low + close) / 3``.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: window length (>= 1).

    Returns:
        CCI, NaN for the first ``period - 1`` bars; 0 where the window is flat.
    """
    check_period("period", period)
    typical = typical_price(as_float(high), as_float(low), as_float(close))
    # typical - mean = -(mean offset from the window's last value, which is ``typical``).
    mean_offset, deviation = window_spread(typical, period, "mean_abs_deviation")
    deviation *= -_CCI_SCALE
    return divide(mean_offset, deviation, 0.0, out=mean_offset)


_HLC: tuple[InputColumn, ...] = ("high", "low", "close")

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="rsi",
        summary="RSI 0-100 (Wilder smoothing)",
        inputs=(SOURCE,),
        parameters=(period(default=14),),
        outputs=("rsi",),
        compute=rsi,
        warmup=lambda period: period + wilder_settling(period),
        reference="talib.RSI(source, period)",
    ),
    IndicatorDef(
        name="stoch",
        summary="%K 0-100",
        inputs=_HLC,
        parameters=(period("k_period", 14), period("d_period", 3)),
        outputs=("slow_k",),
        compute=stoch_k,
        warmup=lambda k_period, d_period: k_period + d_period - 2,
        reference="talib.STOCH(high, low, close, k_period, d_period)[0]",
    ),
    IndicatorDef(
        name="roc",
        summary="rate of change in percent",
        inputs=(SOURCE,),
        parameters=(period(default=10),),
        outputs=("roc",),
        compute=roc,
        warmup=lambda period: period,
        reference="talib.ROC(source, period)",
    ),
    IndicatorDef(
        name="momentum",
        summary="price minus price `period` bars ago",
        inputs=(SOURCE,),
        parameters=(period(default=10),),
        outputs=("momentum",),
        compute=momentum,
        warmup=lambda period: period,
        reference="talib.MOM(source, period)",
    ),
    IndicatorDef(
        name="cci",
        summary="commodity channel index",
        inputs=_HLC,
        parameters=(period(default=14),),
        outputs=("cci",),
        compute=cci,
        warmup=lambda period: period - 1,
        reference="talib.CCI(high, low, close, period)",
    ),
    IndicatorDef(
        name="williams_r",
        summary="Williams %R, -100..0",
        inputs=_HLC,
        parameters=(period(default=14),),
        outputs=("percent_r",),
        compute=williams_r,
        warmup=lambda period: period - 1,
        reference="talib.WILLR(high, low, close, period)",
    ),
)
"""The oscillator family's catalog entries."""
