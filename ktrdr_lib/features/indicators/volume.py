"""Volume indicators: on-balance volume, money flow index, VWAP and the volume ratio.

KTRDR's definitions (section 2.2 of the strategy-format facts). OBV starts at 0 (TA-Lib's
starts at the first bar's volume: a constant offset); MFI is TA-Lib's where any money flowed;
the VWAP is rolling (over fewer bars at the start) or, with ``period: 0``, cumulative. The
money-flow-multiplier family (CMF, the A/D line) is in
:mod:`~ktrdr_lib.features.indicators.money_flow`.

Every indicator here reads the ``volume`` column.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    nan_array,
    partial_rolling_sum,
    rolling_mean,
    rolling_sum,
    typical_price,
)
from ktrdr_lib.features.registry import IndicatorDef, InputColumn, flag, period

__all__ = ["ENTRIES", "mfi", "obv", "volume_ratio", "vwap"]

# Below this a volume average counts as zero (KTRDR's threshold).
_TINY = 1e-10


def obv(close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """On-balance volume starting at 0: the running sum of volume signed by the close's move.

    Args:
        close: bar closes.
        volume: bar volumes.

    Returns:
        OBV; no warm-up (its level depends on where the data starts, its changes do not).

    Example:
        >>> obv([1.0, 2.0, 2.0, 1.0], [5.0, 3.0, 4.0, 2.0]).tolist()
        [0.0, 3.0, 3.0, 1.0]
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
    out[0] = 0.0
    return np.cumsum(out, out=out)


def mfi(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, period: int = 14
) -> FloatArray:
    """Money flow index, 0-100: the volume-weighted RSI of the typical price.

    Over the last ``period`` changes of the typical price, money flow (typical price times
    volume) counts as positive on a rise and negative on a fall (unchanged bars count for
    neither); ``MFI = 100 pos / (pos + neg)``: 100 when nothing fell, 0 when nothing rose.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        volume: bar volumes.
        period: window of money flows (>= 1).

    Returns:
        MFI, NaN for the first ``period`` bars; 50 where no money flowed either way (KTRDR
        gave 100 there).
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
    only_rises = (negative == 0) & (positive > 0)  # exactly 100, not 100 p / p
    negative += positive
    positive *= 100.0
    index = divide(positive, negative, 50.0, out=positive)
    np.copyto(index, 100.0, where=only_rises)
    return index


def vwap(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    period: int = 20,
    use_typical_price: bool = True,
) -> FloatArray:
    """Volume-weighted average price over the last ``period`` bars, or since the first bar.

    ``sum(price * volume) / sum(volume)``, the price being the typical price
    ``(high + low + close) / 3`` or, with ``use_typical_price`` false, the close. The rolling
    form averages over the bars so far until there are ``period`` of them.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        volume: bar volumes.
        period: window in bars (>= 0); 0 averages over every bar so far.
        use_typical_price: whether to weight the typical price rather than the close.

    Returns:
        VWAP in price units; NaN where the window holds no volume.
    """
    if period < 0:
        raise ConfigError(
            f"vwap period must be a whole number >= 0 (got {period}); use 0 for a VWAP over "
            "every bar so far."
        )
    closes = as_float(close)
    price = typical_price(as_float(high), as_float(low), closes) if use_typical_price else closes
    volumes = as_float(volume)
    weighted = price * volumes
    if period == 0:
        np.cumsum(weighted, out=weighted)
        total_volume = np.cumsum(volumes)
    else:
        weighted = partial_rolling_sum(weighted, period)
        total_volume = partial_rolling_sum(volumes, period)
    return divide(weighted, total_volume, np.nan, out=weighted)


def volume_ratio(volume: ArrayLike, period: int = 20) -> FloatArray:
    """Volume relative to its simple moving average over ``period`` bars.

    Args:
        volume: bar volumes.
        period: averaging window (>= 1).

    Returns:
        The ratio, NaN for the first ``period - 1`` bars; 1 where the average volume is within
        1e-10 of zero.
    """
    check_period("period", period)
    volumes = as_float(volume)
    average = rolling_mean(volumes, period)
    tiny = np.abs(average) <= _TINY
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.divide(volumes, average, out=average)
    np.copyto(ratio, 1.0, where=tiny)
    return ratio


_HLCV: tuple[InputColumn, ...] = ("high", "low", "close", "volume")

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="obv",
        summary="on-balance volume, from 0 on the first bar",
        inputs=("close", "volume"),
        parameters=(),
        outputs=("obv",),
        compute=obv,
        warmup=lambda: 0,
        reference="talib.OBV(close, volume) - volume[0]",
    ),
    IndicatorDef(
        name="mfi",
        summary="money flow index 0-100",
        inputs=_HLCV,
        parameters=(period(default=14, bounds=msgspec.Meta(ge=1, le=100)),),
        outputs=("mfi",),
        compute=mfi,
        warmup=lambda period: period,
        reference="talib.MFI(high, low, close, volume, period)",
    ),
    IndicatorDef(
        name="vwap",
        summary="volume-weighted average price (a price) over `period` bars, 0: cumulative",
        inputs=_HLCV,
        parameters=(
            period(default=20, bounds=msgspec.Meta(ge=0, le=200)),
            flag("use_typical_price", True),
        ),
        outputs=("vwap",),
        compute=vwap,
        warmup=lambda period, use_typical_price: max(period - 1, 0),
    ),
    IndicatorDef(
        name="volumeratio",
        summary="volume divided by its simple moving average",
        inputs=("volume",),
        parameters=(period(default=20, bounds=msgspec.Meta(ge=2, le=100)),),
        outputs=("volumeratio",),
        compute=volume_ratio,
        warmup=lambda period: period - 1,
        aliases=("volume_ratio",),
    ),
)
"""The volume family's catalog entries."""
