"""Trend indicators: MACD, ADX, Aroon, SuperTrend and the parabolic SAR.

KTRDR's definitions (section 2.2 of the strategy-format facts). The exponential averages are
pandas' ``ewm(..., adjust=False)`` started at the first bar
(:func:`~ktrdr_lib.features.indicators.averages.exponential_mean`), so MACD and ADX have no
NaN warm-up: their early values lean on the first bars, which the warm-up counts, and they
agree with TA-Lib (which seeds with averages) once those seeds have faded. Aroon looks at the
last ``period`` bars (TA-Lib at ``period + 1``). SuperTrend and the parabolic SAR carry a state
from bar to bar and run compiled (:mod:`._compiled`).

Where a ratio has a zero denominator (no range, no directional movement) ADX and the
directional indicators are 0.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    ema_settling,
    first_difference,
    rolling_mean,
    rolling_sum,
    true_range,
    wilder_settling,
)
from ktrdr_lib.features.indicators.averages import exponential_mean
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, InputColumn, flag, number, period

__all__ = ["ENTRIES", "adx", "aroon", "macd", "parabolic_sar", "simple_true_range", "supertrend"]

# Windows per block when Aroon looks for each window's extreme (cache-sized buffers).
_BLOCK_ROWS = 16_384


def simple_true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range with KTRDR's first bar: ``high - low`` there (it has no previous close)."""
    ranges = true_range(high, low, close)
    if ranges.shape[0]:
        ranges[0] = high[0] - low[0]
    return ranges


def macd(
    price: ArrayLike, fast_period: int = 12, slow_period: int = 26, signal_period: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD: the fast minus the slow EMA of the price, its signal line and their difference.

    Every EMA is pandas ``ewm(span=..., adjust=False)`` from the first bar, so the early values
    differ from TA-Lib's ``MACD`` (which seeds with simple averages) until the seeds fade.

    Args:
        price: prices.
        fast_period: fast EMA span (>= 1, below ``slow_period``).
        slow_period: slow EMA span.
        signal_period: span of the signal line's EMA of the MACD line (>= 1).

    Returns:
        ``(line, signal, histogram)``, defined from bar 0.

    Raises:
        ConfigError: a period below 1, or ``fast_period >= slow_period``.
    """
    check_period("fast_period", fast_period)
    check_period("slow_period", slow_period)
    check_period("signal_period", signal_period)
    if fast_period >= slow_period:
        raise ConfigError(
            f"macd needs fast_period < slow_period (got {fast_period} and {slow_period}); "
            "swap or change them."
        )
    prices = as_float(price)
    line = exponential_mean(prices, 2.0 / (fast_period + 1), adjust=False)
    line -= exponential_mean(prices, 2.0 / (slow_period + 1), adjust=False)
    signal = exponential_mean(line, 2.0 / (signal_period + 1), adjust=False)
    return line, signal, line - signal


def adx(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Average directional index and the two directional indicators, 0-100.

    ``+DM`` is the rise of the high where it beats both the fall of the low and zero (else 0),
    ``-DM`` the mirror; the true range starts with ``high - low``. Each is smoothed with
    ``ewm(alpha=1/period, adjust=False)`` from bar 0; ``DI = 100 DM / TR``, ``DX = 100
    |+DI - -DI| / (+DI + -DI)`` and ADX is DX smoothed the same way.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes (for the true range).
        period: smoothing period (>= 1).

    Returns:
        ``(adx, plus_di, minus_di)``, defined from bar 0; 0 where the smoothed true range (for
        the DIs) or the sum of the DIs (for DX) is 0.
    """
    check_period("period", period)
    highs, lows, closes = as_float(high), as_float(low), as_float(close)
    rise = first_difference(highs)
    fall = first_difference(lows)
    np.negative(fall, out=fall)
    plus_dm = np.where((rise > fall) & (rise > 0.0), rise, 0.0)
    minus_dm = np.where((fall > rise) & (fall > 0.0), fall, 0.0)
    alpha = 1.0 / period
    ranges = exponential_mean(simple_true_range(highs, lows, closes), alpha, adjust=False)
    plus_di = exponential_mean(plus_dm, alpha, adjust=False)
    minus_di = exponential_mean(minus_dm, alpha, adjust=False)
    for line in (plus_di, minus_di):
        divide(line, ranges, 0.0, out=line)
        line *= 100.0
    spread = np.abs(plus_di - minus_di, out=rise)
    total = np.add(plus_di, minus_di, out=fall)
    dx = divide(spread, total, 0.0, out=spread)
    dx *= 100.0
    return exponential_mean(dx, alpha, adjust=False), plus_di, minus_di


def _bars_since_extreme(values: FloatArray, period: int, highest: bool) -> FloatArray:
    """Per window of ``period`` bars: bars since its highest (or lowest) value, 0 to period - 1.

    The first occurrence counts when the extreme repeats (as ``argmax`` picks). Like
    :func:`~._kernels.rolling_extreme`, spans of 1, 2, 4, ... bars are combined by doubling,
    each span carrying its extreme and where it first occurs. NaN for the first
    ``period - 1`` bars and for windows holding a NaN.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    if n < period:
        return out
    better = np.greater if highest else np.less
    windows = n - period + 1
    for start in range(0, windows, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, windows)
        extreme = values[start : stop + period - 1]
        where = np.arange(extreme.shape[0], dtype=np.float64)
        span = 1
        while 2 * span <= period:
            later = better(extreme[span:], extreme[:-span])  # ties keep the earlier span
            extreme = np.where(later, extreme[span:], extreme[:-span])
            where = np.where(later, where[span:], where[:-span])
            span *= 2
        count, overlap = stop - start, period - span
        later = better(extreme[overlap : overlap + count], extreme[:count])
        found = np.where(later, where[overlap : overlap + count], where[:count])
        ends = np.arange(period - 1, period - 1 + count, dtype=np.float64)
        np.subtract(ends, found, out=out[start + period - 1 : stop + period - 1])
    gaps = np.isnan(values)
    if gaps.any():
        out[rolling_sum(gaps.astype(np.float64), period) > 0] = np.nan
    return out


def aroon(
    high: ArrayLike, low: ArrayLike, period: int = 14, include_oscillator: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Aroon up and down over the last ``period`` bars, and their difference.

    ``up = 100 (period - bars since the highest high) / period`` (100 on the bar of a new
    high, ``100 / period`` when it is the window's oldest bar); ``down`` the same with the
    lowest low; the oscillator is ``up - down``.

    Args:
        high: bar highs.
        low: bar lows.
        period: window length (>= 1).
        include_oscillator: accepted as KTRDR accepted it; changes nothing (the oscillator is
            always given).

    Returns:
        ``(up, down, oscillator)``, NaN for the first ``period - 1`` bars.
    """
    del include_oscillator  # KTRDR always emits the oscillator
    check_period("period", period)
    up = _bars_since_extreme(as_float(high), period, highest=True)
    down = _bars_since_extreme(as_float(low), period, highest=False)
    scale = -100.0 / period
    for line in (up, down):
        line *= scale
        line += 100.0
    return up, down, up - down


def supertrend(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 10, multiplier: float = 3.0
) -> tuple[FloatArray, FloatArray]:
    """SuperTrend: a trailing band below the price in an up trend, above it in a down trend.

    The ATR is the simple average of the true range over ``period`` bars; the basic bands are
    ``(high + low) / 2 +- multiplier ATR``, carried forward into final bands and a direction
    as :func:`~._compiled.supertrend_lines` describes (the usual rules), starting on the first
    bar with an ATR.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: ATR window (>= 1).
        multiplier: band distance in ATRs (> 0).

    Returns:
        ``(trend, direction)``: the band in force (a price) and +1 (up) or -1 (down); NaN for
        the first ``period - 1`` bars.
    """
    from ktrdr_lib.features.indicators._compiled import supertrend_lines  # numba: load on use

    check_period("period", period)
    highs, lows, closes = as_float(high), as_float(low), as_float(close)
    half_width = rolling_mean(simple_true_range(highs, lows, closes), period)
    half_width *= multiplier
    middle = highs + lows
    middle *= 0.5
    upper = middle + half_width
    lower = np.subtract(middle, half_width, out=middle)
    defined = np.flatnonzero(np.isfinite(half_width))
    start = int(defined[0]) if defined.size else closes.shape[0]
    trend, direction = supertrend_lines(upper, lower, closes, start)
    return trend, direction


def parabolic_sar(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    initial_af: float = 0.02,
    step_af: float = 0.02,
    max_af: float = 0.2,
) -> FloatArray:
    """Wilder's parabolic stop-and-reverse, started as KTRDR starts it.

    The trend starts on bar 1 from ``close[1]`` against ``close[0]``, with the SAR at the
    first bar's low (rising) or high (falling); see :func:`~._compiled.parabolic_sar` for the
    steps. TA-Lib's ``SAR`` starts differently and tests penetration after the clamp, so the
    two differ.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes (they only choose the first trend).
        initial_af: acceleration factor after each reversal (> 0).
        step_af: increase of the factor on each new extreme point (> 0).
        max_af: largest factor (> 0).

    Returns:
        The SAR (a price), NaN on bar 0.
    """
    from ktrdr_lib.features.indicators._compiled import parabolic_sar as sar  # numba: on use

    for name, value in (("initial_af", initial_af), ("step_af", step_af), ("max_af", max_af)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"parabolicsar {name} must be a number > 0 (got {value}).")
    return sar(as_float(high), as_float(low), as_float(close), initial_af, step_af, max_af)


def _multiplier_texts(multiplier: float) -> list[str]:
    """How KTRDR wrote a multiplier in a column name (``3.0``), and the short form (``3``)."""
    return sorted({f"{float(multiplier)}", f"{float(multiplier):g}"})


def _macd_columns(fast_period: int, slow_period: int, signal_period: int) -> dict[str, str]:
    f, s, g = fast_period, slow_period, signal_period
    return {
        f"MACD_{f}_{s}": "line",
        f"MACD_signal_{f}_{s}_{g}": "signal",
        f"MACD_hist_{f}_{s}_{g}": "histogram",
    }


def _supertrend_columns(period: int, multiplier: float) -> dict[str, str]:
    columns: dict[str, str] = {}
    for text in _multiplier_texts(multiplier):
        columns[f"SuperTrend_{period}_{text}"] = "trend"
        columns[f"ST_Direction_{period}_{text}"] = "direction"
    return columns


def _sar_warmup(initial_af: float, step_af: float, max_af: float) -> int:
    """Bars until the SAR no longer depends on where the series started.

    Two runs started on different bars agree once both reverse on the same bar. A heuristic
    that held on random walks (the latest disagreement, over many starts, stayed below it):
    three times the bars the SAR takes to close the gap to the price at the initial factor.
    """
    del step_af, max_af
    return math.ceil(3.0 / initial_af)


def _supertrend_warmup(period: int, multiplier: float) -> int:
    """Bars until the carried bands and the direction no longer depend on the start.

    They forget it when the close crosses a band, which a random walk needs about
    ``multiplier**2`` ATR-sized steps to do; a heuristic that held on random walks.
    """
    return period + math.ceil(8.0 * multiplier**2)


_HLC: tuple[InputColumn, ...] = ("high", "low", "close")
_AF = msgspec.Meta(gt=0)

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="macd",
        summary="MACD line (fast EMA - slow EMA); also the signal line and the histogram",
        inputs=(SOURCE,),
        parameters=(
            period("fast_period", 12, bounds=msgspec.Meta(ge=1, le=100)),
            period("slow_period", 26, bounds=msgspec.Meta(ge=1, le=200)),
            period("signal_period", 9, bounds=msgspec.Meta(ge=1, le=50)),
        ),
        outputs=("line", "signal", "histogram"),
        compute=macd,
        warmup=lambda fast_period, slow_period, signal_period: (
            ema_settling(slow_period) + ema_settling(signal_period)
        ),
        reference="talib.MACD(source, fast_period, slow_period, signal_period) once seeds fade",
        renamed_parameters={
            "fast": "fast_period",
            "slow": "slow_period",
            "signal": "signal_period",
        },
        technical_columns=_macd_columns,
    ),
    IndicatorDef(
        name="adx",
        summary="ADX 0-100 (trend strength); also +DI and -DI",
        inputs=_HLC,
        parameters=(period(default=14, bounds=msgspec.Meta(ge=2, le=200)),),
        outputs=("adx", "plus_di", "minus_di"),
        compute=adx,
        # Two smoothings in a row (DI, then ADX): allow both starts to fade.
        warmup=lambda period: 2 * wilder_settling(period),
        aliases=("averagedirectionalindex",),
        reference="talib.ADX(high, low, close, period), PLUS_DI, MINUS_DI once seeds fade",
        technical_columns=lambda period: {
            f"ADX_{period}": "adx",
            f"DI_Plus_{period}": "plus_di",
            f"DI_Minus_{period}": "minus_di",
        },
    ),
    IndicatorDef(
        name="aroon",
        summary="Aroon up 0-100 (recency of the highest high); also Aroon down and up - down",
        inputs=("high", "low"),
        parameters=(
            period(default=14, bounds=msgspec.Meta(ge=1, le=200)),
            flag("include_oscillator", False),
        ),
        outputs=("up", "down", "oscillator"),
        compute=aroon,
        warmup=lambda period, include_oscillator: period - 1,
        technical_columns=lambda period, include_oscillator: {
            f"Aroon_{period}_Up": "up",
            f"Aroon_{period}_Down": "down",
            f"Aroon_{period}_Oscillator": "oscillator",
        },
    ),
    IndicatorDef(
        name="supertrend",
        summary="SuperTrend line (a price: the trailing band in force); also the direction +-1",
        inputs=_HLC,
        parameters=(
            period(default=10, bounds=msgspec.Meta(ge=2, le=200)),
            number("multiplier", 3.0, bounds=msgspec.Meta(gt=0, le=10)),
        ),
        outputs=("trend", "direction"),
        compute=supertrend,
        warmup=_supertrend_warmup,
        technical_columns=_supertrend_columns,
    ),
    IndicatorDef(
        name="parabolicsar",
        summary="parabolic SAR (a price: the trailing stop)",
        inputs=_HLC,
        parameters=(
            number("initial_af", 0.02, bounds=_AF),
            number("step_af", 0.02, bounds=_AF),
            number("max_af", 0.2, bounds=_AF),
        ),
        outputs=("sar",),
        compute=parabolic_sar,
        warmup=_sar_warmup,
        aliases=("psar",),
    ),
)
"""The trend family's catalog entries."""
