"""Trend indicators: price against its moving averages, MACD and ADX.

``sma`` and ``ema`` feed the fuzzy sets price / average (around 1.0); a zero average (zero
prices, which real data never has) gives NaN. The averages agree with TA-Lib to rounding; the
MACD line seeds its fast EMA at its own period and agrees once that seed has decayed; ADX is 0
where there is no directional movement.
"""

from __future__ import annotations

import numpy as np

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    ema,
    ema_settling,
    first_difference,
    nan_array,
    rolling_mean,
    wilder,
    wilder_settling,
)
from ktrdr_lib.features.indicators._recursions import smooth_from_seed
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, period

__all__ = ["ENTRIES", "adx", "ema_ratio", "macd", "macd_signal", "sma_ratio"]


def sma_ratio(price: ArrayLike, period: int) -> FloatArray:
    """Price divided by its simple moving average (around 1.0).

    Args:
        price: prices.
        period: window length (>= 1).

    Returns:
        The ratio, NaN for the first ``period - 1`` bars.
    """
    check_period("period", period)
    prices = as_float(price)
    average = rolling_mean(prices, period)
    return divide(prices, average, np.nan, out=average)


def ema_ratio(price: ArrayLike, period: int) -> FloatArray:
    """Price divided by its exponential moving average (around 1.0).

    The EMA is seeded with the simple average of the first ``period`` prices.

    Args:
        price: prices.
        period: EMA period (>= 1).

    Returns:
        The ratio, NaN for the first ``period - 1`` bars.
    """
    check_period("period", period)
    prices = as_float(price)
    average = ema(prices, period)
    return divide(prices, average, np.nan, out=average)


def macd(close: ArrayLike, fast_period: int = 12, slow_period: int = 26) -> FloatArray:
    """MACD line: fast EMA minus slow EMA.

    Args:
        close: prices.
        fast_period: fast EMA period (>= 1, below ``slow_period``).
        slow_period: slow EMA period.

    Returns:
        The MACD line, NaN for the first ``slow_period - 1`` bars.
    """
    check_period("fast_period", fast_period)
    check_period("slow_period", slow_period)
    if fast_period >= slow_period:
        raise ConfigError(
            f"macd needs fast_period < slow_period (got {fast_period} and {slow_period}); "
            "swap or change them."
        )
    prices = as_float(close)
    fast = ema(prices, fast_period)
    fast -= ema(prices, slow_period)
    return fast


def macd_signal(macd_line: ArrayLike, signal_period: int = 9) -> FloatArray:
    """Signal line: EMA of the MACD line from its first valid value.

    Args:
        macd_line: output of :func:`macd`.
        signal_period: EMA period (>= 1).

    Returns:
        The signal line; the histogram is ``macd_line - macd_signal(macd_line)``.
    """
    check_period("signal_period", signal_period)
    line = as_float(macd_line)
    valid = np.flatnonzero(~np.isnan(line))
    if valid.size == 0:
        return nan_array(line.shape[0])
    return ema(line, signal_period, first_valid=int(valid[0]))


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Average directional index (Wilder), 0-100.

    Directional movement is Wilder-smoothed from a seed of its first ``period - 1`` values
    (Wilder's running-sum form, as TA-Lib does); DX is averaged the same way. The smoothed true
    range divides both +DI and -DI and cancels in ``DX = 100 |+DI - -DI| / (+DI + -DI)``, so it
    is not computed.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes; accepted for the usual signature, though ADX needs none.
        period: smoothing period (>= 1).

    Returns:
        ADX, NaN for the first ``2 period - 1`` bars; 0 where there is no directional movement.
    """
    check_period("period", period)
    del close  # only the true range would use it, and that cancels
    highs, lows = as_float(high), as_float(low)
    up_move = first_difference(highs)
    down_move = first_difference(lows)
    np.negative(down_move, out=down_move)
    # A move counts where it beats both the other one and zero; the rest become 0 by
    # multiplying with the mask, in place (the first bar's NaN is never read).
    floor = np.maximum(down_move, 0.0)
    plus_counts = up_move > floor
    np.maximum(up_move, 0.0, out=floor)
    down_move *= down_move > floor
    up_move *= plus_counts

    def running_sum(values: FloatArray) -> FloatArray:
        seed = float(values[1:period].sum()) / period
        return smooth_from_seed(values, 1.0 / period, period - 1, seed, out=values)

    plus_sum, minus_sum = running_sum(up_move), running_sum(down_move)
    imbalance = np.subtract(plus_sum, minus_sum, out=floor)
    np.abs(imbalance, out=imbalance)
    imbalance *= 100.0
    plus_sum += minus_sum
    dx = divide(imbalance, plus_sum, 0.0, out=imbalance)
    dx[: min(period, dx.shape[0])] = np.nan
    return wilder(dx, period, first_valid=period, in_place=True)


def _macd_line(
    close: ArrayLike, *, fast_period: int, slow_period: int, signal_period: int
) -> FloatArray:
    """The MACD line, as a strategy's ``macd`` feeds it to the fuzzy sets.

    ``signal_period`` is the signal line's (:func:`macd_signal`); the line does not use it.
    """
    del signal_period
    return macd(close, fast_period, slow_period)


ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="sma",
        summary="price / simple moving average (ratio around 1.0)",
        inputs=(SOURCE,),
        parameters=(period(),),
        outputs=("ratio",),
        compute=sma_ratio,
        warmup=lambda period: period - 1,
        reference="source / talib.SMA(source, period)",
    ),
    IndicatorDef(
        name="ema",
        summary="price / exponential moving average (around 1.0)",
        inputs=(SOURCE,),
        parameters=(period(),),
        outputs=("ratio",),
        compute=ema_ratio,
        warmup=lambda period: period - 1 + ema_settling(period),
        reference="source / talib.EMA(source, period)",
    ),
    IndicatorDef(
        name="macd",
        summary="MACD line (fast EMA - slow EMA)",
        inputs=(SOURCE,),
        parameters=(
            period("fast_period", 12),
            period("slow_period", 26),
            period("signal_period", 9),
        ),
        outputs=("line",),
        compute=_macd_line,
        warmup=lambda fast_period, slow_period, signal_period: (
            slow_period - 1 + ema_settling(slow_period)
        ),
        reference="talib.MACD(source, fast_period, slow_period, signal_period)[0]",
    ),
    IndicatorDef(
        name="adx",
        summary="ADX 0-100",
        inputs=("high", "low", "close"),
        parameters=(period(default=14),),
        outputs=("adx",),
        compute=adx,
        # Two Wilder recursions in a row (DI, then ADX): allow both seeds to fade.
        warmup=lambda period: 2 * period - 1 + 2 * wilder_settling(period),
        reference="talib.ADX(high, low, close, period)",
    ),
)
"""The trend family's catalog entries."""
