"""Technical indicators on numpy arrays, and the dispatch that strategies use.

Every indicator function takes float64 price arrays of one length and returns a float64 array
of that length, NaN during warm-up. Everything is vectorised numpy, written to touch as little
fresh memory as it can (on a million bars, page faults cost more than the arithmetic):
recursions (EMA, Wilder smoothing) through the blocked filter in
:mod:`ktrdr_lib.features._recursions`, seeded the way TA-Lib seeds them, with the simple average
of the first ``period`` values; rolling sums as differences of running totals restarted every
segment; rolling extremes by span doubling; band and CCI spreads as offsets from each window's
last value, in cache-sized blocks (exact for flat windows). RSI, ATR, EMA, SMA, Bollinger Bands,
stochastics, ROC, momentum, OBV, ADX, CCI, Williams %R and MFI therefore agree with TA-Lib to
rounding; the MACD line seeds its fast EMA at its own period and agrees once that seed has
decayed.

Where a denominator is zero (a flat market), an indicator returns its neutral value instead of
NaN or inf, so flat stretches never leak non-finite values into features: RSI, %K and MFI 50,
Williams %R -50, band position 0.5, CCI 0, ADX 0. Ratios to a zero moving average (zero prices,
which real data never has) are NaN.

:func:`compute_indicator` maps an :class:`~ktrdr_lib.strategy.spec.IndicatorSpec` onto these
functions with the value semantics of :mod:`ktrdr_lib.features.catalog`, and
:func:`indicator_warmup` says how many leading bars are NaN or not yet settled.

Example:
    >>> import numpy as np
    >>> close = np.linspace(100.0, 120.0, 50)
    >>> round(float(rsi(close, 14)[-1]), 1)
    100.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features._recursions import smooth_from_seed
from ktrdr_lib.features.catalog import known_indicator_names
from ktrdr_lib.strategy.spec import IndicatorSpec

__all__ = [
    "adx",
    "atr",
    "bbands_position",
    "cci",
    "compute_indicator",
    "ema_ratio",
    "indicator_warmup",
    "macd",
    "macd_signal",
    "mfi",
    "momentum",
    "obv",
    "roc",
    "rsi",
    "sma_ratio",
    "stoch_k",
    "williams_r",
]

FloatArray = npt.NDArray[np.float64]
_Entry = TypeVar("_Entry")
ArrayLike = npt.ArrayLike

# A recursion counts as settled once its seed carries at most this weight.
_SETTLED_SEED_WEIGHT = 0.01
# Rows per block when a computation makes many passes: 128 KiB per float64 buffer.
_CACHE_BLOCK_ROWS = 16_384
# Windows per segment of running totals in rolling sums.
_SUM_SEGMENT = 1024
# Lambert's constant in the commodity channel index.
_CCI_SCALE = 0.015


# --- building blocks -------------------------------------------------------------------------


def _as_float(values: ArrayLike) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _check_period(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(
            f"indicator parameter {name} must be a whole number >= 1 (got {value}); "
            "use a positive period."
        )


def _nan_array(length: int) -> FloatArray:
    return np.full(length, np.nan)


def _divide(
    numerator: FloatArray, denominator: FloatArray, fill: float, out: FloatArray
) -> FloatArray:
    """``numerator / denominator`` into ``out``, ``fill`` where the denominator is exactly zero.

    ``out`` may be either operand (a scratch array): reusing memory matters, since on a million
    bars touching a fresh array costs more than the arithmetic. Returns ``out``.
    """
    zero = denominator == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(numerator, denominator, out=out)
    np.copyto(out, fill, where=zero)
    return out


def _lagged(values: FloatArray, lag: int) -> FloatArray:
    out = _nan_array(values.shape[0])
    if lag < values.shape[0]:
        out[lag:] = values[: values.shape[0] - lag]
    return out


def _change(values: FloatArray) -> FloatArray:
    """``values[t] - values[t - 1]``, NaN on the first bar."""
    out = np.empty(values.shape[0])
    out[:1] = np.nan
    np.subtract(values[1:], values[:-1], out=out[1:])
    return out


def _values_of(series: pd.Series[float]) -> FloatArray:
    return np.asarray(series, dtype=np.float64)


def _rolling_sum(
    values: FloatArray, period: int, first_valid: int = 0, *, out: FloatArray | None = None
) -> FloatArray:
    """Sum over the last ``period`` bars, as differences of running totals.

    ``values[:first_valid]`` are ignored (NaN warm-up); windows reaching into them are NaN. The
    running totals restart every :data:`_SUM_SEGMENT` windows (each segment re-reads the
    ``period - 1`` bars before it), so the rounding error stays a few ulps of the values however
    long the series is. Values holding NaN or inf take pandas' rolling sum instead, so a window
    with a NaN is NaN and later windows recover. ``out`` (not ``values``) may receive the sums.
    """
    n = values.shape[0]
    if out is None:
        out = np.empty(n)
    first_window = first_valid + period - 1
    out[: min(first_window, n)] = np.nan
    if first_window >= n:
        return out
    valid, sums = values[first_valid:], out[first_window:]
    if not math.isfinite(float(np.sum(valid))):
        out[:] = pd.Series(values).rolling(period).sum().to_numpy(dtype=np.float64)
        return out
    windows = sums.shape[0]
    segment = max(_SUM_SEGMENT, 4 * period)
    width = segment + period - 1
    full = windows // segment
    if full:
        # Row i: the bars of windows i * segment ... (i + 1) * segment - 1 (a view, no copy).
        segments = np.lib.stride_tricks.sliding_window_view(valid, width)[::segment]
        rows_per_chunk = max(1, _CACHE_BLOCK_ROWS // width)
        totals = np.empty((min(full, rows_per_chunk), width))
        for first in range(0, full, rows_per_chunk):
            last = min(first + rows_per_chunk, full)
            running = np.cumsum(segments[first:last], axis=1, out=totals[: last - first])
            block = sums[first * segment : last * segment].reshape(last - first, segment)
            block[:, 0] = running[:, period - 1]
            np.subtract(running[:, period:], running[:, : width - period], out=block[:, 1:])
    if windows > full * segment:
        running_tail = np.cumsum(valid[full * segment :])
        tail = sums[full * segment :]
        tail[0] = running_tail[period - 1]
        np.subtract(
            running_tail[period:], running_tail[: running_tail.shape[0] - period], out=tail[1:]
        )
    return out


def _rolling_mean(values: FloatArray, period: int, first_valid: int = 0) -> FloatArray:
    """Mean over the last ``period`` bars (see :func:`_rolling_sum` for accuracy and NaN)."""
    out = _rolling_sum(values, period, first_valid)
    out /= period
    return out


def _average_seeded(
    values: FloatArray, period: int, alpha: float, first_valid: int, in_place: bool
) -> FloatArray:
    """Exponential smoothing seeded with the mean of the first ``period`` valid values.

    With ``in_place`` the result overwrites ``values`` (which must then be a scratch array).
    """
    seed_index = first_valid + period - 1
    out = values if in_place else None
    if seed_index >= values.shape[0]:
        return smooth_from_seed(values, alpha, seed_index, math.nan, out=out)
    seed = float(values[first_valid : seed_index + 1].mean())
    return smooth_from_seed(values, alpha, seed_index, seed, out=out)


def _ema(values: FloatArray, period: int, first_valid: int = 0) -> FloatArray:
    """EMA of ``values`` (left untouched), seeded with the mean of its first ``period`` values."""
    return _average_seeded(values, period, 2.0 / (period + 1), first_valid, in_place=False)


def _wilder(values: FloatArray, period: int, first_valid: int, in_place: bool) -> FloatArray:
    """Wilder smoothing (``alpha = 1 / period``), seeded like :func:`_ema`."""
    return _average_seeded(values, period, 1.0 / period, first_valid, in_place)


def _true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range; NaN on the first bar, which has no previous close.

    ``max(high, previous close) - min(low, previous close)`` is the larger of ``high - low``,
    ``|high - previous close|`` and ``|low - previous close|``, to the last bit.
    """
    out = np.empty(close.shape[0])
    out[:1] = np.nan
    if close.shape[0] > 1:
        previous_close = close[:-1]
        np.maximum(high[1:], previous_close, out=out[1:])
        out[1:] -= np.minimum(low[1:], previous_close)
    return out


def _typical_price(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    out = high + low
    out += close
    out /= 3.0
    return out


def _rolling_extreme(values: FloatArray, period: int, pick: np.ufunc) -> FloatArray:
    """Rolling max (``pick=np.maximum``) or min over ``period`` bars.

    Extremes over spans of 1, 2, 4, ... bars are built by doubling until the span reaches
    ``period / 2``; each window is then the extreme of two overlapping spans. That is
    ``log2(period) + 1`` vectorised passes. Windows holding a NaN give NaN.
    """
    n = values.shape[0]
    out = np.empty(n)
    out[: min(period - 1, n)] = np.nan
    if n < period:
        return out
    windows = n - period + 1
    # Blocks of windows, each with its (period - 1)-bar halo, through two cache-sized buffers.
    size = min(windows, _CACHE_BLOCK_ROWS) + period - 1
    buffers = (np.empty(size), np.empty(size))
    for start in range(0, windows, _CACHE_BLOCK_ROWS):
        stop = min(start + _CACHE_BLOCK_ROWS, windows)
        span, extreme = 1, values[start : stop + period - 1]  # extreme[i]: over span bars
        passes = 0
        while 2 * span <= period:
            target = buffers[passes % 2][: extreme.shape[0] - span]
            extreme = pick(extreme[:-span], extreme[span:], out=target)
            span *= 2
            passes += 1
        overlap_start = period - span
        pick(
            extreme[: stop - start],
            extreme[overlap_start : overlap_start + stop - start],
            out=out[period - 1 + start : period - 1 + stop],
        )
    return out


def _price_range_position(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int
) -> tuple[FloatArray, FloatArray]:
    """(close - lowest low, highest high - lowest low) over the last ``period`` bars."""
    highest = _rolling_extreme(high, period, np.maximum)
    lowest = _rolling_extreme(low, period, np.minimum)
    highest -= lowest
    lowest -= close
    np.negative(lowest, out=lowest)
    return lowest, highest


def _window_spread(
    values: FloatArray, period: int, spread: Literal["variance", "mean_abs_deviation"]
) -> tuple[FloatArray, FloatArray]:
    """Per window: (its mean minus its last value, its population variance or mean |x - mean|).

    Offsets are taken from each window's last value, so a flat window gives exactly 0 for both,
    and the sums stay small (no cancellation of large squares). Rows go in cache-sized blocks;
    within a block, one vectorised pass per position in the window. A window holding a NaN
    gives NaN.
    """
    n = values.shape[0]
    offset_out, spread_out = _nan_array(n), _nan_array(n)
    if n < period:
        return offset_out, spread_out
    rows = n - period + 1
    last_values = values[period - 1 :]
    size = min(rows, _CACHE_BLOCK_ROWS)
    total, squares, scratch = np.empty(size), np.empty(size), np.empty(size)
    for start in range(0, rows, _CACHE_BLOCK_ROWS):
        stop = min(start + _CACHE_BLOCK_ROWS, rows)
        rows_here = stop - start
        anchor = last_values[start:stop]
        sum_, sum_sq, diff = total[:rows_here], squares[:rows_here], scratch[:rows_here]
        mean_offset = offset_out[period - 1 + start : period - 1 + stop]
        result = spread_out[period - 1 + start : period - 1 + stop]
        sum_.fill(0.0)
        sum_sq.fill(0.0)
        for offset in range(period - 1):
            np.subtract(values[start + offset : stop + offset], anchor, out=diff)
            sum_ += diff
            if spread == "variance":
                diff *= diff
                sum_sq += diff
        np.divide(sum_, period, out=mean_offset)
        if spread == "variance":
            np.divide(sum_sq, period, out=result)
            np.multiply(mean_offset, mean_offset, out=diff)
            result -= diff
            np.maximum(result, 0.0, out=result)  # rounding must not make it negative
            continue
        # Mean |x - mean| = mean |(x - last) - mean offset|; the last value's own term first.
        np.abs(mean_offset, out=sum_sq)
        for offset in range(period - 1):
            np.subtract(values[start + offset : stop + offset], anchor, out=diff)
            diff -= mean_offset
            np.abs(diff, out=diff)
            sum_sq += diff
        np.divide(sum_sq, period, out=result)
    return offset_out, spread_out


# --- indicators ------------------------------------------------------------------------------


def rsi(close: ArrayLike, period: int = 14) -> FloatArray:
    """Relative strength index with Wilder smoothing, 0-100.

    Args:
        close: prices.
        period: smoothing period (>= 1).

    Returns:
        RSI, NaN for the first ``period`` bars; 50 where prices did not move at all.
    """
    _check_period("period", period)
    prices = _as_float(close)
    change = _change(prices)
    average_gain = _wilder(np.maximum(change, 0.0), period, first_valid=1, in_place=True)
    # Losses smoothed as negative numbers: negating afterwards is exact (the recursion is
    # linear), and it reuses the change array.
    average_loss = _wilder(np.minimum(change, 0.0, out=change), period, 1, in_place=True)
    total = np.subtract(average_gain, average_loss, out=average_loss)
    average_gain *= 100.0
    return _divide(average_gain, total, 50.0, out=average_gain)


def macd(close: ArrayLike, fast_period: int = 12, slow_period: int = 26) -> FloatArray:
    """MACD line: fast EMA minus slow EMA.

    Args:
        close: prices.
        fast_period: fast EMA period (>= 1, below ``slow_period``).
        slow_period: slow EMA period.

    Returns:
        The MACD line, NaN for the first ``slow_period - 1`` bars.
    """
    _check_period("fast_period", fast_period)
    _check_period("slow_period", slow_period)
    if fast_period >= slow_period:
        raise ConfigError(
            f"macd needs fast_period < slow_period (got {fast_period} and {slow_period}); "
            "swap or change them."
        )
    prices = _as_float(close)
    fast = _ema(prices, fast_period)
    fast -= _ema(prices, slow_period)
    return fast


def macd_signal(macd_line: ArrayLike, signal_period: int = 9) -> FloatArray:
    """Signal line: EMA of the MACD line from its first valid value.

    Args:
        macd_line: output of :func:`macd`.
        signal_period: EMA period (>= 1).

    Returns:
        The signal line; the histogram is ``macd_line - macd_signal(macd_line)``.
    """
    _check_period("signal_period", signal_period)
    line = _as_float(macd_line)
    valid = np.flatnonzero(~np.isnan(line))
    if valid.size == 0:
        return _nan_array(line.shape[0])
    return _ema(line, signal_period, first_valid=int(valid[0]))


def sma_ratio(price: ArrayLike, period: int) -> FloatArray:
    """Price divided by its simple moving average (around 1.0).

    Args:
        price: prices.
        period: window length (>= 1).

    Returns:
        The ratio, NaN for the first ``period - 1`` bars.
    """
    _check_period("period", period)
    prices = _as_float(price)
    average = _rolling_mean(prices, period)
    return _divide(prices, average, np.nan, out=average)


def ema_ratio(price: ArrayLike, period: int) -> FloatArray:
    """Price divided by its exponential moving average (around 1.0).

    The EMA is seeded with the simple average of the first ``period`` prices.

    Args:
        price: prices.
        period: EMA period (>= 1).

    Returns:
        The ratio, NaN for the first ``period - 1`` bars.
    """
    _check_period("period", period)
    prices = _as_float(price)
    average = _ema(prices, period)
    return _divide(prices, average, np.nan, out=average)


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
    _check_period("period", period)
    if not std_dev > 0:
        raise ConfigError(f"bbands std_dev must be > 0 (got {std_dev}); use e.g. 2.")
    prices = _as_float(price)
    # (price - lower) / (upper - lower) = 0.5 - (mean - price) / (2 std_dev sd).
    mean_offset, variance = _window_spread(prices, period, "variance")
    width = np.sqrt(variance, out=variance)
    width *= 2.0 * std_dev
    position = _divide(mean_offset, width, 0.0, out=mean_offset)
    np.subtract(0.5, position, out=position)
    return position


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
    _check_period("period", period)
    true_range = _true_range(_as_float(high), _as_float(low), _as_float(close))
    return _wilder(true_range, period, first_valid=1, in_place=True)


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
    _check_period("k_period", k_period)
    _check_period("d_period", d_period)
    above_low, span = _price_range_position(
        _as_float(high), _as_float(low), _as_float(close), k_period
    )
    above_low *= 100.0
    fast_k = _divide(above_low, span, 50.0, out=above_low)
    return fast_k if d_period == 1 else _rolling_mean(fast_k, d_period, first_valid=k_period - 1)


def roc(price: ArrayLike, period: int = 10) -> FloatArray:
    """Rate of change in percent: ``100 (price / price n bars ago - 1)``.

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        ROC, NaN for the first ``period`` bars.
    """
    _check_period("period", period)
    prices = _as_float(price)
    before = _lagged(prices, period)
    change = np.subtract(prices, before)
    change *= 100.0
    return _divide(change, before, np.nan, out=change)


def momentum(price: ArrayLike, period: int = 10) -> FloatArray:
    """Momentum: price minus the price ``period`` bars ago.

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        Momentum in price units, NaN for the first ``period`` bars.
    """
    _check_period("period", period)
    prices = _as_float(price)
    return prices - _lagged(prices, period)


def obv(close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """On-balance volume, starting from the first bar's volume (as TA-Lib does).

    Args:
        close: bar closes.
        volume: bar volumes.

    Returns:
        OBV; no warm-up.
    """
    prices = _as_float(close)
    volumes = _as_float(volume)
    out = np.empty(prices.shape[0])
    if prices.shape[0] == 0:
        return out
    signed = out[1:]
    np.subtract(prices[1:], prices[:-1], out=signed)
    np.sign(signed, out=signed)
    signed *= volumes[1:]
    out[0] = volumes[0]
    return np.cumsum(out, out=out)


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
    _check_period("period", period)
    del close  # only the true range would use it, and that cancels
    highs, lows = _as_float(high), _as_float(low)
    up_move = _change(highs)
    down_move = _change(lows)
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
    dx = _divide(imbalance, plus_sum, 0.0, out=imbalance)
    dx[: min(period, dx.shape[0])] = np.nan
    return _wilder(dx, period, first_valid=period, in_place=True)


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
    _check_period("period", period)
    typical = _typical_price(_as_float(high), _as_float(low), _as_float(close))
    # typical - mean = -(mean offset from the window's last value, which is ``typical``).
    mean_offset, deviation = _window_spread(typical, period, "mean_abs_deviation")
    deviation *= -_CCI_SCALE
    return _divide(mean_offset, deviation, 0.0, out=mean_offset)


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
    _check_period("period", period)
    above_low, span = _price_range_position(
        _as_float(high), _as_float(low), _as_float(close), period
    )
    above_low *= 100.0
    percent_r = _divide(above_low, span, 50.0, out=above_low)
    percent_r -= 100.0
    return percent_r


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
    _check_period("period", period)
    typical = _typical_price(_as_float(high), _as_float(low), _as_float(close))
    flow = typical * _as_float(volume)
    n = typical.shape[0]
    # Flows exist from the second bar on; sums over ``period`` flows start at bar ``period``.
    positive, negative = _nan_array(n), _nan_array(n)
    if n > 1:
        rising, falling = typical[1:] > typical[:-1], typical[1:] < typical[:-1]
        positive_flow = np.multiply(flow[1:], rising, out=typical[1:])
        negative_flow = np.multiply(flow[1:], falling, out=flow[1:])
        _rolling_sum(positive_flow, period, out=positive[1:])
        _rolling_sum(negative_flow, period, out=negative[1:])
    negative += positive
    positive *= 100.0
    return _divide(positive, negative, 50.0, out=positive)


# --- strategy dispatch -----------------------------------------------------------------------


def _where(spec: IndicatorSpec) -> str:
    return f"indicator {spec.name!r} (feature_id {spec.feature_id!r})"


def _column(bars: pd.DataFrame, name: str, spec: IndicatorSpec) -> FloatArray:
    if name not in bars.columns:
        raise DataError(
            f"{_where(spec)} needs a {name!r} column, but the bars have only "
            f"{list(bars.columns)}; load OHLCV data with open, high, low, close and volume."
        )
    return _values_of(bars[name])


def _int_param(spec: IndicatorSpec, key: str) -> int:
    if key not in spec.params:
        raise ConfigError(
            f"{_where(spec)} is missing parameter {key!r} (has {sorted(spec.params)}); "
            f"add `{key}:` to the indicator in the strategy file."
        )
    value = spec.params[key]
    if value != int(value) or value < 1:
        raise ConfigError(
            f"{_where(spec)} parameter {key!r} must be a whole number >= 1 (got {value}); "
            "fix it in the strategy file."
        )
    return spec.int_param(key)


def _float_param(spec: IndicatorSpec, key: str) -> float:
    if key not in spec.params:
        raise ConfigError(
            f"{_where(spec)} is missing parameter {key!r} (has {sorted(spec.params)}); "
            f"add `{key}:` to the indicator in the strategy file."
        )
    return float(spec.params[key])


def _ohlc(bars: pd.DataFrame, spec: IndicatorSpec) -> tuple[FloatArray, FloatArray, FloatArray]:
    return _column(bars, "high", spec), _column(bars, "low", spec), _column(bars, "close", spec)


def _source(bars: pd.DataFrame, spec: IndicatorSpec) -> FloatArray:
    return _column(bars, spec.source, spec)


_Computation = Callable[[IndicatorSpec, pd.DataFrame], FloatArray]

_COMPUTATIONS: dict[str, _Computation] = {
    "rsi": lambda s, b: rsi(_source(b, s), _int_param(s, "period")),
    "macd": lambda s, b: macd(
        _source(b, s), _int_param(s, "fast_period"), _int_param(s, "slow_period")
    ),
    "sma": lambda s, b: sma_ratio(_source(b, s), _int_param(s, "period")),
    "ema": lambda s, b: ema_ratio(_source(b, s), _int_param(s, "period")),
    "bbands": lambda s, b: bbands_position(
        _source(b, s), _int_param(s, "period"), _float_param(s, "std_dev")
    ),
    "atr": lambda s, b: atr(*_ohlc(b, s), _int_param(s, "period")),
    "stoch": lambda s, b: stoch_k(
        *_ohlc(b, s), _int_param(s, "k_period"), _int_param(s, "d_period")
    ),
    "roc": lambda s, b: roc(_source(b, s), _int_param(s, "period")),
    "momentum": lambda s, b: momentum(_source(b, s), _int_param(s, "period")),
    "obv": lambda s, b: obv(_column(b, "close", s), _column(b, "volume", s)),
    "adx": lambda s, b: adx(*_ohlc(b, s), _int_param(s, "period")),
    "cci": lambda s, b: cci(*_ohlc(b, s), _int_param(s, "period")),
    "williams_r": lambda s, b: williams_r(*_ohlc(b, s), _int_param(s, "period")),
    "mfi": lambda s, b: mfi(*_ohlc(b, s), _column(b, "volume", s), _int_param(s, "period")),
}


def _settling_bars(alpha: float) -> int:
    """Bars after its seed until an exponential recursion's seed weighs at most 1 %."""
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(_SETTLED_SEED_WEIGHT) / math.log1p(-alpha))


def _wilder_settling(period: int) -> int:
    return _settling_bars(1.0 / period)


def _ema_settling(period: int) -> int:
    return _settling_bars(2.0 / (period + 1))


_WARMUPS: dict[str, Callable[[IndicatorSpec], int]] = {
    "rsi": lambda s: (p := _int_param(s, "period")) + _wilder_settling(p),
    "macd": lambda s: (p := _int_param(s, "slow_period")) - 1 + _ema_settling(p),
    "sma": lambda s: _int_param(s, "period") - 1,
    "ema": lambda s: (p := _int_param(s, "period")) - 1 + _ema_settling(p),
    "bbands": lambda s: _int_param(s, "period") - 1,
    "atr": lambda s: (p := _int_param(s, "period")) + _wilder_settling(p),
    "stoch": lambda s: _int_param(s, "k_period") + _int_param(s, "d_period") - 2,
    "roc": lambda s: _int_param(s, "period"),
    "momentum": lambda s: _int_param(s, "period"),
    "obv": lambda s: 0,
    # Two Wilder recursions in a row (DI, then ADX): allow both seeds to fade.
    "adx": lambda s: 2 * (p := _int_param(s, "period")) - 1 + 2 * _wilder_settling(p),
    "cci": lambda s: _int_param(s, "period") - 1,
    "williams_r": lambda s: _int_param(s, "period") - 1,
    "mfi": lambda s: _int_param(s, "period"),
}


def _lookup(table: dict[str, _Entry], spec: IndicatorSpec) -> _Entry:
    try:
        return table[spec.name]
    except KeyError:
        raise ConfigError(
            f"unknown indicator {spec.name!r} (feature_id {spec.feature_id!r}); "
            f"known indicators: {', '.join(known_indicator_names())}."
        ) from None


def compute_indicator(spec: IndicatorSpec, bars: pd.DataFrame) -> FloatArray:
    """The value one strategy indicator feeds to its fuzzy sets, per bar.

    Args:
        spec: the indicator, its parameters complete (the strategy loader fills in defaults).
        bars: OHLCV frame with float columns ``open, high, low, close, volume``.

    Returns:
        float64 array of ``len(bars)``, NaN during warm-up. Semantics per the catalog: ``sma`` and
        ``ema`` give price / average, ``bbands`` the position within the bands, ``stoch`` the
        slow %K (see :func:`stoch_k`), ``macd`` the MACD line.

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
    return _lookup(_COMPUTATIONS, spec)(spec, bars)


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
    return _lookup(_WARMUPS, spec)(spec)
