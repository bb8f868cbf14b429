"""The vectorised building blocks the indicators share.

Everything here is vectorised numpy, written to touch as little fresh memory as it can (on a
million bars, page faults cost more than the arithmetic): recursions (EMA, Wilder smoothing)
through the blocked filter in :mod:`ktrdr_lib.features.indicators._recursions`, seeded the way
TA-Lib seeds them, with the simple average of the first ``period`` values; rolling sums as
differences of running totals restarted every segment; rolling extremes by span doubling; band
and CCI spreads as offsets from each window's last value, in cache-sized blocks (exact for flat
windows). The warm-up helpers say how long a recursion's seed takes to fade.
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
    "nan_array",
    "price_range_position",
    "rolling_extreme",
    "rolling_mean",
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
# Windows per segment of running totals in rolling sums.
_SUM_SEGMENT = 1024


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
    out = nan_array(values.shape[0])
    if lag < values.shape[0]:
        out[lag:] = values[: values.shape[0] - lag]
    return out


def first_difference(values: FloatArray) -> FloatArray:
    """``values[t] - values[t - 1]``, NaN on the first bar."""
    out = np.empty(values.shape[0])
    out[:1] = np.nan
    np.subtract(values[1:], values[:-1], out=out[1:])
    return out


def rolling_sum(
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
        import pandas as pd  # only here: validating a strategy loads the catalog, not pandas

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


def rolling_mean(values: FloatArray, period: int, first_valid: int = 0) -> FloatArray:
    """Mean over the last ``period`` bars (see :func:`rolling_sum` for accuracy and NaN)."""
    out = rolling_sum(values, period, first_valid)
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
