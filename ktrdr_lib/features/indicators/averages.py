"""Moving averages and the distance of a price from one.

KTRDR's definitions (section 2.2 of the strategy-format facts): ``simplemovingaverage``,
``exponentialmovingaverage`` and ``weightedmovingaverage`` give the average itself, in price
units (the ratio of a price to it is a fuzzy-set input transform, not an indicator);
``distancefromma`` gives ``100 (price - average) / average``.

The exponential average is pandas' ``Series.ewm(span=n, adjust=...)``: with ``adjust`` (the
default of ``exponentialmovingaverage``) each bar is the weighted mean of every bar so far,
weights ``(1 - alpha)^age``, so there is no NaN warm-up; without it the recursion starts at the
first value. Either way the early values lean on few bars, which the warm-up counts.
:func:`exponential_mean` computes both without pandas on clean data (the blocked recursion of
:mod:`._recursions`) and hands data holding NaN or inf to pandas, whose rules for gaps it then
follows exactly. The other trend and channel indicators use it too.

Example:
    >>> simple_moving_average([1.0, 2.0, 3.0, 4.0], 2).tolist()
    [nan, 1.5, 2.5, 3.5]
    >>> exponential_moving_average([1.0, 2.0], 1).tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec
import numpy as np

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    ema_settling,
    rolling_mean,
    rolling_sum,
)
from ktrdr_lib.features.indicators._recursions import smooth_from_seed
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, choice, flag, period

__all__ = [
    "ENTRIES",
    "distance_from_ma",
    "exponential_mean",
    "exponential_moving_average",
    "simple_moving_average",
    "weighted_moving_average",
]

# Windows per row of the weighted averages: running totals restart there (exact to ~1e-13).
_WEIGHTED_SEGMENT = 256
# Elements per chunk of rows (256 KiB of float64 per buffer).
_CACHE_ROWS = 32_768
# Below 2**-60 the part of the weights an adjusted average is missing changes nothing.
_NEGLIGIBLE_WEIGHT = 2.0**-60


def exponential_mean(values: FloatArray, alpha: float, *, adjust: bool) -> FloatArray:
    """pandas ``Series(values).ewm(alpha=alpha, adjust=adjust).mean()``, from bar 0.

    Without ``adjust``: ``y[0] = x[0]``, ``y[t] = (1 - alpha) y[t-1] + alpha x[t]``. With it:
    ``y[t] = sum_i (1 - alpha)^i x[t-i] / sum_i (1 - alpha)^i`` over the bars so far. Values
    holding NaN or inf are handed to pandas itself.

    Args:
        values: float64 inputs (left untouched).
        alpha: smoothing factor in (0, 1]; ``2 / (span + 1)`` for a span.
        adjust: pandas' ``adjust``.

    Returns:
        A new array of the same length, with no NaN warm-up.
    """
    n = values.shape[0]
    if n == 0:
        return np.empty(0)
    if not math.isfinite(float(np.sum(values))):
        import pandas as pd  # only here: validating a strategy loads the catalog, not pandas

        series = pd.Series(values).ewm(alpha=alpha, adjust=adjust).mean()
        return series.to_numpy(dtype=np.float64)
    if not adjust:
        return smooth_from_seed(values, alpha, 0, float(values[0]))
    # alpha times the weighted sum, then divided by alpha times the weights' sum: 1 - r^(t+1).
    out = smooth_from_seed(values, alpha, 0, alpha * float(values[0]))
    decay = 1.0 - alpha
    if decay > 0.0:
        log_decay = math.log(decay)
        head = min(n, math.ceil(math.log(_NEGLIGIBLE_WEIGHT) / log_decay))
        out[:head] /= -np.expm1(np.arange(1, head + 1) * log_decay)
    return out


def simple_moving_average(price: ArrayLike, period: int = 20) -> FloatArray:
    """Mean of the last ``period`` prices.

    Args:
        price: prices.
        period: window length (>= 1).

    Returns:
        The average, NaN for the first ``period - 1`` bars (and for windows holding a NaN).
    """
    check_period("period", period)
    return rolling_mean(as_float(price), period)


def exponential_moving_average(
    price: ArrayLike, period: int = 20, adjust: bool = True
) -> FloatArray:
    """pandas ``ewm(span=period, adjust=adjust).mean()`` of the prices (see the module).

    Args:
        price: prices.
        period: span (>= 1); the smoothing factor is ``2 / (period + 1)``.
        adjust: weigh every bar so far (pandas' default, KTRDR's) rather than start a
            recursion at the first price.

    Returns:
        The average, defined from bar 0.
    """
    check_period("period", period)
    return exponential_mean(as_float(price), 2.0 / (period + 1), adjust=adjust)


def _weighted_rows(
    rows: FloatArray, period: int, out: FloatArray, running: FloatArray, twice: FloatArray
) -> None:
    """The weighted averages of the windows of each row of ``rows``, into ``out``.

    Row ``r`` holds ``out.shape[1] + period - 1`` bars. Within a row prices are taken as
    offsets from its first bar (exact for flat stretches, small running totals). With ``P[k]``
    the sum of the first ``k`` offsets and ``Q[k] = P[0] + ... + P[k - 1]``, the window
    starting at ``s`` weighs ``n P[s + n] - (Q[s + n] - Q[s])``: the last offset counts ``n``
    times, the first once. ``running`` and ``twice`` are scratch of ``rows.shape[1] + 1``
    columns (at least ``rows.shape[0]`` rows).
    """
    count, width = out.shape[1], rows.shape[1]
    reference = rows[:, :1]
    totals = running[: rows.shape[0], : width + 1]
    totals_of_totals = twice[: rows.shape[0], : width + 1]
    totals[:, 0] = 0.0
    np.subtract(rows, reference, out=totals[:, 1:])
    np.cumsum(totals[:, 1:], axis=1, out=totals[:, 1:])
    totals_of_totals[:, 0] = 0.0
    np.cumsum(totals[:, :width], axis=1, out=totals_of_totals[:, 1:])
    np.multiply(totals[:, period : period + count], period, out=out)
    recent = totals_of_totals[:, period : period + count]
    recent -= totals_of_totals[:, :count]
    out -= recent
    out *= 2.0 / (period * (period + 1))
    out += reference


def _weighted_averages(values: FloatArray, period: int, out: FloatArray) -> None:
    """Weighted averages of every full window into ``out[period - 1:]``, row by row.

    Rows of :data:`_WEIGHTED_SEGMENT` windows (each re-reading the ``period - 1`` bars before
    it) go through :func:`_weighted_rows` a cache-sized chunk at a time.
    """
    windows = values.shape[0] - period + 1
    segment = max(_WEIGHTED_SEGMENT, 4 * period)
    width = segment + period - 1
    full = windows // segment
    tail = windows - full * segment
    sums = out[period - 1 :]
    rows_per_chunk = max(1, _CACHE_ROWS // width)
    shape = (min(max(full, 1), rows_per_chunk), max(width, tail + period - 1) + 1)
    running, twice = np.empty(shape), np.empty(shape)
    if full:
        rows = np.lib.stride_tricks.sliding_window_view(values, width)[::segment][:full]
        for first in range(0, full, rows_per_chunk):
            last = min(first + rows_per_chunk, full)
            block = sums[first * segment : last * segment].reshape(last - first, segment)
            _weighted_rows(rows[first:last], period, block, running, twice)
    if tail:
        rows = values[full * segment :].reshape(1, -1)
        _weighted_rows(rows, period, sums[full * segment :].reshape(1, tail), running, twice)


def weighted_moving_average(price: ArrayLike, period: int = 20) -> FloatArray:
    """Linearly weighted moving average: weights 1 (oldest) to ``period`` (latest), over their sum.

    Args:
        price: prices.
        period: window length (>= 1).

    Returns:
        The average, NaN for the first ``period - 1`` bars and for windows holding a NaN or
        an inf.
    """
    check_period("period", period)
    prices = as_float(price)
    n = prices.shape[0]
    out = np.empty(n)
    out[: min(period - 1, n)] = np.nan
    if n < period:
        return out
    if math.isfinite(float(np.sum(prices))):
        _weighted_averages(prices, period, out)
        return out
    bad = ~np.isfinite(prices)
    _weighted_averages(np.where(bad, 0.0, prices), period, out)
    gaps = rolling_sum(bad.astype(np.float64), period)
    out[gaps > 0] = np.nan
    return out


def distance_from_ma(
    price: ArrayLike, period: int = 20, ma_type: Literal["SMA", "EMA"] = "SMA"
) -> FloatArray:
    """Percent distance of the price from its moving average: ``100 (price - MA) / MA``.

    Args:
        price: prices.
        period: the average's window or span (>= 1).
        ma_type: ``SMA`` (simple) or ``EMA`` (pandas ``ewm(span=period, adjust=True)``).

    Returns:
        The distance in percent; NaN while the average is (the first ``period - 1`` bars for
        an SMA) and where the average is 0.
    """
    prices = as_float(price)
    kind = ma_type.upper()
    if kind == "SMA":
        average = simple_moving_average(prices, period)
    elif kind == "EMA":
        average = exponential_moving_average(prices, period, adjust=True)
    else:
        raise ConfigError(f"distancefromma ma_type must be SMA or EMA (got {ma_type!r}).")
    zero = average == 0.0
    distance = np.subtract(prices, average)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(distance, average, out=distance)
    distance *= 100.0
    distance[zero] = np.nan
    return distance


def _distance_warmup(period: int, ma_type: str) -> int:
    return period - 1 if ma_type.upper() == "SMA" else ema_settling(period)


_AVERAGE_PERIOD = msgspec.Meta(ge=2, le=500)

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="simplemovingaverage",
        summary="simple moving average of the source price (a price)",
        inputs=(SOURCE,),
        parameters=(period(default=20, bounds=_AVERAGE_PERIOD),),
        outputs=("sma",),
        compute=simple_moving_average,
        warmup=lambda period: period - 1,
        aliases=("sma", "volume_sma"),
        reference="talib.SMA(source, period)",
    ),
    IndicatorDef(
        name="exponentialmovingaverage",
        summary="exponential moving average of the source price, pandas ewm (a price)",
        inputs=(SOURCE,),
        parameters=(
            period(default=20, bounds=msgspec.Meta(ge=1, le=500)),
            flag("adjust", True),
        ),
        outputs=("ema",),
        compute=exponential_moving_average,
        # No NaN; the first bars average few prices: count until the missing weight is 1 %.
        warmup=lambda period, adjust: ema_settling(period),
        aliases=("ema",),
    ),
    IndicatorDef(
        name="weightedmovingaverage",
        summary="linearly weighted moving average of the source price (a price)",
        inputs=(SOURCE,),
        parameters=(period(default=20, bounds=_AVERAGE_PERIOD),),
        outputs=("wma",),
        compute=weighted_moving_average,
        warmup=lambda period: period - 1,
        aliases=("wma",),
        reference="talib.WMA(source, period)",
    ),
    IndicatorDef(
        name="distancefromma",
        summary="percent distance of the source price from its SMA or EMA",
        inputs=(SOURCE,),
        parameters=(
            period(default=20, bounds=msgspec.Meta(ge=1, le=200)),
            choice("ma_type", "SMA", ("SMA", "EMA")),
        ),
        outputs=("distance",),
        compute=distance_from_ma,
        warmup=_distance_warmup,
    ),
)
"""The moving averages' catalog entries."""
