"""The vectorised building blocks the indicators share.

Everything here is vectorised numpy, written to touch as little fresh memory as it can (on a
million bars, page faults cost more than the arithmetic): recursions (EMA, Wilder smoothing)
through the blocked filter in :mod:`ktrdr_lib.features.indicators._recursions`, seeded the way
TA-Lib seeds them, with the simple average of the first ``period`` values; rolling sums and
rolling extremes by span doubling; band variances from window sums of squared offsets from a
nearby value; CCI spreads as offsets from each window's last value, in cache-sized blocks
(exact for flat windows). The warm-up helpers say how long a recursion's seed takes to fade.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._recursions import smooth_from_seed

__all__ = [
    "ArrayLike",
    "FloatArray",
    "as_float",
    "check_period",
    "divide",
    "ema",
    "ema_settling",
    "first_difference",
    "lagged",
    "lagged_difference",
    "nan_array",
    "partial_rolling_mean",
    "partial_rolling_sum",
    "price_range_position",
    "rolling_extreme",
    "rolling_mean",
    "rolling_mean_and_variance",
    "rolling_sum",
    "true_range",
    "typical_price",
    "wilder",
    "wilder_settling",
    "window_spread",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# A recursion counts as settled once its seed carries at most this weight.
_SETTLED_SEED_WEIGHT = 0.01
# Rows per block when a computation makes many passes: 128 KiB per float64 buffer.
_CACHE_BLOCK_ROWS = 16_384


def as_float(values: ArrayLike) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


def check_period(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(
            f"indicator parameter {name} must be a whole number >= 1 (got {value}); "
            "use a positive period."
        )


def nan_array(length: int) -> FloatArray:
    return np.full(length, np.nan)


def divide(
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


def lagged(values: FloatArray, lag: int) -> FloatArray:
    out = np.empty(values.shape[0])
    out[:lag] = np.nan
    if lag < values.shape[0]:
        out[lag:] = values[: values.shape[0] - lag]
    return out


def lagged_difference(values: FloatArray, lag: int) -> FloatArray:
    """``values[t] - values[t - lag]``, NaN on the first ``lag`` bars."""
    out = np.empty(values.shape[0])
    out[:lag] = np.nan
    if lag < values.shape[0]:
        np.subtract(values[lag:], values[: values.shape[0] - lag], out=out[lag:])
    return out


def first_difference(values: FloatArray) -> FloatArray:
    """``values[t] - values[t - 1]``, NaN on the first bar."""
    out = np.empty(values.shape[0])
    out[:1] = np.nan
    np.subtract(values[1:], values[:-1], out=out[1:])
    return out


def _window_sums(
    values: FloatArray, period: int, buffers: tuple[FloatArray, FloatArray, FloatArray]
) -> FloatArray:
    """``sums[i] = values[i] + ... + values[i + period - 1]`` for every full window of ``values``.

    Sums over spans of 1, 2, 4, ... bars are built by pairwise addition (span doubling); the
    spans that make up ``period`` in binary are added left to right. That is about
    ``log2(period) + popcount(period)`` vectorised passes, with pairwise-summation rounding
    (a few ulps of the sum, however long the series). A window holding a NaN or inf sums to
    NaN or inf; the windows after it are unaffected. ``buffers``: three scratch arrays of at
    least ``len(values)``; the result is a view of one of them.
    """
    length = values.shape[0]
    spans, total = values, None  # spans[i] = sum over values[i : i + span]
    span, covered, turn = 1, 0, 0  # total[i] = sum over values[i : i + covered]
    remaining = period
    while True:
        if remaining & 1:
            count = length - covered - span + 1
            if total is None:
                total = buffers[2][:count]
                total[:] = spans[:count]
            else:
                total = np.add(total[:count], spans[covered : covered + count], out=total[:count])
            covered += span
        remaining >>= 1
        if not remaining:
            break
        doubled = buffers[turn][: spans.shape[0] - span]
        spans = np.add(spans[:-span], spans[span:], out=doubled)
        span *= 2
        turn ^= 1
    assert total is not None
    return total


def rolling_sum(
    values: FloatArray, period: int, first_valid: int = 0, *, out: FloatArray | None = None
) -> FloatArray:
    """Sum over the last ``period`` bars, NaN until ``period`` bars exist.

    ``values[:first_valid]`` are ignored (NaN warm-up); windows reaching into them are NaN.
    Windows go through cache-sized blocks, each summed by span doubling (see
    :func:`_window_sums`): pairwise-summation accuracy, so the rounding stays a few ulps of the
    values however long the series is. A window with a NaN is NaN and later windows recover,
    as in pandas. ``out`` (not ``values``) may receive the sums.
    """
    n = values.shape[0]
    if out is None:
        out = np.empty(n)
    first_window = first_valid + period - 1
    out[: min(first_window, n)] = np.nan
    if first_window >= n:
        return out
    valid = values[first_valid:]
    windows = valid.shape[0] - period + 1
    size = min(windows, _CACHE_BLOCK_ROWS) + period - 1
    buffers = (np.empty(size), np.empty(size), np.empty(size))
    for start in range(0, windows, _CACHE_BLOCK_ROWS):
        stop = min(start + _CACHE_BLOCK_ROWS, windows)
        out[first_window + start : first_window + stop] = _window_sums(
            valid[start : stop + period - 1], period, buffers
        )
    return out


def _window_moments(
    values: FloatArray, period: int, buffers: tuple[FloatArray, ...]
) -> tuple[FloatArray, FloatArray]:
    """(mean, sum of squared deviations from it) of every full window of ``period`` values.

    Span doubling as in :func:`_window_sums`, merging (mean, squared deviations) pairs as the
    parallel variance algorithm does: spans of ``n_a`` and ``n_b`` values with means ``a`` and
    ``b`` merge by adding their squared deviations and ``(b - a)^2 n_a n_b / (n_a + n_b)``.
    Nothing cancels, and a flat window gives exactly its value and exactly 0. ``buffers``:
    seven scratch arrays of at least ``len(values)``; the results are views of two of them.
    """
    length = values.shape[0]
    means, squares = values, None  # per span start: mean and squared deviations (None: all 0)
    total_mean, total_squares, delta = buffers[4], buffers[5], buffers[6]
    span, covered, turn, count = 1, 0, 0, length
    remaining = period
    while True:
        if remaining & 1:  # merge the span after the windows covered so far into them
            count = length - covered - span + 1
            mean, spread, step = total_mean[:count], total_squares[:count], delta[:count]
            if covered == 0:
                mean[:] = means[:count]
                spread[:] = 0.0 if squares is None else squares[:count]
            else:
                weight = span / (covered + span)
                np.subtract(means[covered : covered + count], mean, out=step)
                step *= weight
                mean += step
                if squares is not None:
                    spread += squares[covered : covered + count]
                np.multiply(step, step, out=step)
                step *= covered / weight
                spread += step
            covered += span
        remaining >>= 1
        if not remaining:
            return total_mean[:count], total_squares[:count]
        pairs = means.shape[0] - span  # merge each span with the next one of equal length
        doubled_means, doubled_squares = buffers[turn][:pairs], buffers[2 + turn][:pairs]
        step = np.subtract(means[span:], means[:-span], out=delta[:pairs])
        np.multiply(step, 0.5, out=doubled_means)
        doubled_means += means[:-span]
        np.multiply(step, step, out=doubled_squares)
        doubled_squares *= 0.5 * span
        if squares is not None:
            doubled_squares += squares[:-span]
            doubled_squares += squares[span:]
        means, squares = doubled_means, doubled_squares
        span *= 2
        turn ^= 1


def rolling_mean_and_variance(
    values: FloatArray, period: int, ddof: int = 0
) -> tuple[FloatArray, FloatArray]:
    """(mean, variance with ``ddof``) over the last ``period`` bars, NaN until they exist.

    Computed by :func:`_window_moments` in cache-sized blocks: ``O(n log period)``, stable, and
    exact for a flat window (its value, variance 0). A window holding a NaN gives NaN; the
    windows after it are unaffected.
    """
    n = values.shape[0]
    mean_out, variance_out = nan_array(n), nan_array(n)
    if n < period or period <= ddof:
        return mean_out, variance_out
    windows = n - period + 1
    rows = _CACHE_BLOCK_ROWS // 2  # seven buffers: keep them within a typical L2 cache
    size = min(windows, rows) + period - 1
    buffers = tuple(np.empty(size) for _ in range(7))
    for start in range(0, windows, rows):
        stop = min(start + rows, windows)
        mean, squares = _window_moments(values[start : stop + period - 1], period, buffers)
        mean_out[period - 1 + start : period - 1 + stop] = mean
        np.divide(squares, period - ddof, out=variance_out[period - 1 + start : period - 1 + stop])
    return mean_out, variance_out


def rolling_mean(values: FloatArray, period: int, first_valid: int = 0) -> FloatArray:
    """Mean over the last ``period`` bars (see :func:`rolling_sum` for accuracy and NaN)."""
    out = rolling_sum(values, period, first_valid)
    out /= period
    return out


def partial_rolling_sum(values: FloatArray, period: int, min_periods: int = 1) -> FloatArray:
    """Sum over the last ``period`` bars, over fewer at the start (pandas ``min_periods``).

    Bar ``t < period - 1`` sums the ``t + 1`` bars so far once there are ``min_periods`` of them
    (NaN before), as ``Series.rolling(period, min_periods=min_periods).sum()`` does on data
    without gaps; from bar ``period - 1`` on it is :func:`rolling_sum`.
    """
    out = rolling_sum(values, period)
    head = min(period - 1, values.shape[0])
    if head >= min_periods:
        np.cumsum(values[:head], out=out[:head])
        out[: min_periods - 1] = np.nan
    return out


def partial_rolling_mean(values: FloatArray, period: int, min_periods: int = 1) -> FloatArray:
    """Mean over the last ``period`` bars, over fewer at the start (see
    :func:`partial_rolling_sum`)."""
    out = partial_rolling_sum(values, period, min_periods)
    head = min(period - 1, values.shape[0])
    out[:head] /= np.arange(1, head + 1)
    out[head:] /= period
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


def ema(values: FloatArray, period: int, first_valid: int = 0) -> FloatArray:
    """EMA of ``values`` (left untouched), seeded with the mean of its first ``period`` values."""
    return _average_seeded(values, period, 2.0 / (period + 1), first_valid, in_place=False)


def wilder(values: FloatArray, period: int, first_valid: int, in_place: bool) -> FloatArray:
    """Wilder smoothing (``alpha = 1 / period``), seeded like :func:`ema`."""
    return _average_seeded(values, period, 1.0 / period, first_valid, in_place)


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
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


def typical_price(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    out = high + low
    out += close
    out /= 3.0
    return out


def rolling_extreme(values: FloatArray, period: int, pick: np.ufunc) -> FloatArray:
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


def price_range_position(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int
) -> tuple[FloatArray, FloatArray]:
    """(close - lowest low, highest high - lowest low) over the last ``period`` bars."""
    highest = rolling_extreme(high, period, np.maximum)
    lowest = rolling_extreme(low, period, np.minimum)
    highest -= lowest
    lowest -= close
    np.negative(lowest, out=lowest)
    return lowest, highest


def window_spread(
    values: FloatArray, period: int, spread: Literal["variance", "mean_abs_deviation"]
) -> tuple[FloatArray, FloatArray]:
    """Per window: (its mean minus its last value, its population variance or mean |x - mean|).

    Offsets are taken from each window's last value, so a flat window gives exactly 0 for both,
    and the sums stay small (no cancellation of large squares). Rows go in cache-sized blocks;
    within a block, one vectorised pass per position in the window. A window holding a NaN
    gives NaN.
    """
    n = values.shape[0]
    offset_out, spread_out = nan_array(n), nan_array(n)
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


def _settling_bars(alpha: float) -> int:
    """Bars after its seed until an exponential recursion's seed weighs at most 1 %."""
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(_SETTLED_SEED_WEIGHT) / math.log1p(-alpha))


def wilder_settling(period: int) -> int:
    """Bars after its seed until Wilder smoothing over ``period`` has settled (about 4.6 period)."""
    return _settling_bars(1.0 / period)


def ema_settling(period: int) -> int:
    """Bars after its seed until an EMA over ``period`` has settled (about 2.3 period)."""
    return _settling_bars(2.0 / (period + 1))
