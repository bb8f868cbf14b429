"""Volume indicators: on-balance volume and the money flow index.

Both agree with TA-Lib to rounding; MFI is 50 where no money flowed either way.
"""

from __future__ import annotations

import numpy as np

from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    nan_array,
    rolling_sum,
    typical_price,
)
from ktrdr_lib.features.registry import IndicatorDef, period

__all__ = ["ENTRIES", "mfi", "obv"]


def obv(close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """On-balance volume, starting from the first bar's volume (as TA-Lib does).

    Args:
        close: bar closes.
        volume: bar volumes.

    Returns:
        OBV; no warm-up.
    """
    prices = as_float(close)
    volumes = as_float(volume)
    out = np.empty(prices.shape[0])
    if prices.shape[0] == 0:
        return out
    signed = out[1:]
    np.subtract(prices[1:], prices[:-1], out=signed)
    np.sign(signed, out=signed)
    signed *= volumes[1:]
    out[0] = volumes[0]
    return np.cumsum(out, out=out)


def mfi(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, period: int = 14
) -> FloatArray:
    """Money flow index, 0-100: the volume-weighted RSI of the typical price.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        volume: bar volumes.
        period: window of money flows (>= 1).

    Returns:
        MFI, NaN for the first ``period`` bars; 50 where no money flowed either way.
    """
    check_period("period", period)
    typical = typical_price(as_float(high), as_float(low), as_float(close))
    flow = typical * as_float(volume)
    n = typical.shape[0]
    # Flows exist from the second bar on; sums over ``period`` flows start at bar ``period``.
    positive, negative = nan_array(n), nan_array(n)
    if n > 1:
        rising, falling = typical[1:] > typical[:-1], typical[1:] < typical[:-1]
        positive_flow = np.multiply(flow[1:], rising, out=typical[1:])
        negative_flow = np.multiply(flow[1:], falling, out=flow[1:])
        rolling_sum(positive_flow, period, out=positive[1:])
        rolling_sum(negative_flow, period, out=negative[1:])
    negative += positive
    positive *= 100.0
    return divide(positive, negative, 50.0, out=positive)


ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="obv",
        summary="on-balance volume",
        inputs=("close", "volume"),
        parameters=(),
        outputs=("obv",),
        compute=obv,
        warmup=lambda: 0,
        reference="talib.OBV(close, volume)",
    ),
    IndicatorDef(
        name="mfi",
        summary="money flow index 0-100",
        inputs=("high", "low", "close", "volume"),
        parameters=(period(default=14),),
        outputs=("mfi",),
        compute=mfi,
        warmup=lambda period: period,
        reference="talib.MFI(high, low, close, volume, period)",
    ),
)
"""The volume family's catalog entries."""
