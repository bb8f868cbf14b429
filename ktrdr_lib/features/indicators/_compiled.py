"""The few recursions that cannot be vectorised, compiled with numba.

Each loop here carries a state that decides, bar by bar, what the next bar does (a trend that
flips, an acceleration factor that grows, a band that holds or resets, a swing that ends), so
no cumulative sum or doubling trick expresses it. Everything else in the indicators is
vectorised numpy; these kernels take and return plain float64 / int64 arrays, do no
allocation beyond their outputs and are compiled once and cached on disk (``cache=True``).

Importing this module imports numba (about a third of a second), so the indicator modules
import it inside the functions that need it: validating a strategy never loads numba.

- :func:`parabolic_sar`: Wilder's stop-and-reverse with KTRDR's start and order of steps.
- :func:`supertrend_lines`: SuperTrend's carried final bands and its trend direction.
- :func:`zigzag_pivots`: the swing finder shared by the ``zigzag`` indicator and the ZigZag
  training labels (:mod:`ktrdr_lib.features.labels`).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["parabolic_sar", "supertrend_lines", "zigzag_pivots"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def parabolic_sar(  # pragma: no cover - compiled; tested through its callers
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    initial_af: float,
    step_af: float,
    max_af: float,
) -> FloatArray:
    """Parabolic SAR per bar, NaN on bar 0.

    Bar 1 starts the trend: rising when ``close[1] > close[0]`` (SAR ``low[0]``, extreme point
    ``high[1]``), else falling (SAR ``high[0]``, extreme ``low[1]``). Then, each bar,
    ``sar = previous sar + af (ep - previous sar)``; if the bar's low (rising) or high
    (falling) reaches that value the trend reverses: the SAR becomes the extreme point, ``af``
    restarts at ``initial_af`` and the bar's low (high) is the new extreme. Otherwise the SAR is
    kept at or below the two previous lows (at or above the two previous highs), and a new
    extreme point raises ``af`` by ``step_af`` up to ``max_af``.
    """
    n = high.shape[0]
    sar = np.full(n, np.nan)
    if n < 2:
        return sar
    rising = close[1] > close[0]
    if rising:
        extreme, value = high[1], low[0]
    else:
        extreme, value = low[1], high[0]
    sar[1] = value
    af = initial_af
    for i in range(2, n):
        value = value + af * (extreme - value)
        if rising:
            if low[i] <= value:
                rising, value, af, extreme = False, extreme, initial_af, low[i]
            else:
                value = min(value, low[i - 1], low[i - 2])
                if high[i] > extreme:
                    extreme = high[i]
                    af = min(af + step_af, max_af)
        elif high[i] >= value:
            rising, value, af, extreme = True, extreme, initial_af, high[i]
        else:
            value = max(value, high[i - 1], high[i - 2])
            if low[i] < extreme:
                extreme = low[i]
                af = min(af + step_af, max_af)
        sar[i] = value
    return sar


@numba.njit(cache=True)
def supertrend_lines(  # pragma: no cover - compiled; tested through its callers
    basic_upper: FloatArray, basic_lower: FloatArray, close: FloatArray, start: int
) -> tuple[FloatArray, FloatArray]:
    """SuperTrend's (trend line, direction) from its basic bands, NaN before ``start``.

    On ``start`` (the first bar with bands) the final bands are the basic ones and the
    direction is down (-1) when the close is at or below the lower band, else up (+1). After
    it, the final upper band takes the basic one when that is lower or the previous close was
    above the previous final upper band, and otherwise holds; the lower band mirrors it. An up
    trend turns down when the close reaches the final lower band, a down trend turns up when
    it reaches the final upper band. The trend line is the final lower band in an up trend and
    the final upper band in a down trend.
    """
    n = close.shape[0]
    trend = np.full(n, np.nan)
    direction = np.full(n, np.nan)
    if start >= n:
        return trend, direction
    upper, lower = basic_upper[start], basic_lower[start]
    up = not close[start] <= lower
    trend[start] = lower if up else upper
    direction[start] = 1.0 if up else -1.0
    for i in range(start + 1, n):
        previous_close = close[i - 1]
        if basic_upper[i] < upper or previous_close > upper:
            upper = basic_upper[i]
        if basic_lower[i] > lower or previous_close < lower:
            lower = basic_lower[i]
        # An up trend ends at the lower band, a down trend at the upper one.
        up = not close[i] <= lower if up else close[i] >= upper
        trend[i] = lower if up else upper
        direction[i] = 1.0 if up else -1.0
    return trend, direction


@numba.njit(cache=True)
def zigzag_pivots(  # pragma: no cover - compiled; tested through its callers
    prices: FloatArray, threshold: float, track_start: bool
) -> tuple[IntArray, IntArray, int]:
    """The confirmed swing extremes of ``prices`` in one pass (``prices`` not empty).

    A swing is a move of at least ``threshold`` (a fraction) from the last extreme. Once a
    direction is known, a higher price (rising) or a lower one (falling) replaces the candidate
    extreme, and the first bar at least ``threshold`` back from the candidate *confirms* it and
    starts the opposite swing at itself. Before the first confirmation:

    - ``track_start``: the highest and the lowest price so far are both candidates; whichever is
      confirmed first sets the direction (the training labels' rule);
    - otherwise bar 0 is the only candidate: the first bar ``threshold`` above or below
      ``prices[0]`` confirms bar 0 and sets the direction (KTRDR's ``zigzag`` indicator).

    A NaN price is skipped (it compares false with everything).

    Returns:
        (bar of each confirmed extreme, bar that confirmed it, the candidate extreme still
        open at the end or -1 when no direction was ever set).
    """
    n = prices.shape[0]
    extremes = np.empty(n, dtype=np.int64)
    confirmations = np.empty(n, dtype=np.int64)
    count = 0
    rise, fall = 1.0 + threshold, 1.0 - threshold
    high = low = prices[0]
    high_at = low_at = 0
    trend = 0  # +1 rising (tracking a high), -1 falling (tracking a low), 0 not yet known
    for t in range(n):
        price = prices[t]
        if trend > 0:
            if price > high:
                high, high_at = price, t
            elif price <= high * fall:
                extremes[count], confirmations[count] = high_at, t
                count += 1
                trend, low, low_at = -1, price, t
        elif trend < 0:
            if price < low:
                low, low_at = price, t
            elif price >= low * rise:
                extremes[count], confirmations[count] = low_at, t
                count += 1
                trend, high, high_at = 1, price, t
        else:
            if track_start:
                if price > high:
                    high, high_at = price, t
                elif price < low:
                    low, low_at = price, t
            if price >= low * rise:
                extremes[count], confirmations[count] = low_at, t
                count += 1
                trend, high, high_at = 1, price, t
            elif price <= high * fall:
                extremes[count], confirmations[count] = high_at, t
                count += 1
                trend, low, low_at = -1, price, t
    candidate = high_at if trend > 0 else low_at if trend < 0 else -1
    return extremes[:count].copy(), confirmations[:count].copy(), candidate
