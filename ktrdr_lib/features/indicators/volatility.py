"""Volatility indicators: average true range and the position within Bollinger Bands.

Both agree with TA-Lib to rounding. A flat window puts the price in the middle of its bands
(0.5) and gives an ATR of 0.
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
    true_range,
    wilder,
    wilder_settling,
    window_spread,
)
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, period, positive_number

__all__ = ["ENTRIES", "atr", "bbands_position"]


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Average true range with Wilder smoothing.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: smoothing period (>= 1).

    Returns:
        ATR in price units, NaN for the first ``period`` bars.
    """
    check_period("period", period)
    ranges = true_range(as_float(high), as_float(low), as_float(close))
    return wilder(ranges, period, first_valid=1, in_place=True)


def bbands_position(price: ArrayLike, period: int = 20, std_dev: float = 2.0) -> FloatArray:
    """Position of the price within its Bollinger Bands: 0 at the lower band, 1 at the upper.

    The bands are the simple moving average plus and minus ``std_dev`` population standard
    deviations. Values leave [0, 1] when the price breaks out of the bands.

    Args:
        price: prices.
        period: window length (>= 1).
        std_dev: band width in standard deviations (> 0).

    Returns:
        The position, NaN for the first ``period - 1`` bars; 0.5 where the window is flat.
    """
    check_period("period", period)
    if not std_dev > 0:
        raise ConfigError(f"bbands std_dev must be > 0 (got {std_dev}); use e.g. 2.")
    prices = as_float(price)
    # (price - lower) / (upper - lower) = 0.5 - (mean - price) / (2 std_dev sd).
    mean_offset, variance = window_spread(prices, period, "variance")
    width = np.sqrt(variance, out=variance)
    width *= 2.0 * std_dev
    position = divide(mean_offset, width, 0.0, out=mean_offset)
    np.subtract(0.5, position, out=position)
    return position


ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="atr",
        summary="average true range (Wilder)",
        inputs=("high", "low", "close"),
        parameters=(period(default=14),),
        outputs=("atr",),
        compute=atr,
        warmup=lambda period: period + wilder_settling(period),
        reference="talib.ATR(high, low, close, period)",
    ),
    IndicatorDef(
        name="bbands",
        summary="position of price within the bands",
        inputs=(SOURCE,),
        parameters=(period(default=20), positive_number("std_dev", 2)),
        outputs=("position",),
        compute=bbands_position,
        warmup=lambda period, std_dev: period - 1,
        reference="(source - lower) / (upper - lower) of talib.BBANDS(source, period, std_dev)",
    ),
)
"""The volatility family's catalog entries."""
