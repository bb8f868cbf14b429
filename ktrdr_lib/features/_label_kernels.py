"""The label kinds' two sequential loops, compiled with numba.

- :func:`first_barrier`: for each bar, the first later bar whose high or low crosses a
  barrier (a first-passage search with an early exit per bar).
- :func:`cusum_events`: the symmetric CUSUM filter, whose sums reset when they fire.
- :func:`swing_pivots`: ZigZag pivots with a threshold that may change bar by bar (the regime
  labels' ATR-scaled swings).

Imported inside the functions that need them, so loading a strategy never loads numba.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["cusum_events", "first_barrier", "swing_pivots"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def first_barrier(  # pragma: no cover - compiled; tested through its callers
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    upper: FloatArray,
    lower: FloatArray,
    horizon: int,
) -> tuple[IntArray, IntArray]:
    """For each bar ``t``: which barrier is touched first within ``horizon`` bars.

    Bars ``t + 1 .. t + horizon`` (those that exist) are scanned in order: a high at or above
    ``upper[t]`` is the upper barrier (+1), a low at or below ``lower[t]`` the lower one (-1); a
    bar touching both counts as +1 when it closes at or above ``close[t]``, else -1. No touch
    within ``horizon`` bars is 0 (the time barrier decides).

    Returns:
        (side per bar, the bar that decided it: the touch, or ``t + horizon`` when none); a bar
        whose barriers are untouched by the end of the data and that has fewer than ``horizon``
        bars after it is undecided: side 0 and bar -1.
    """
    n = close.shape[0]
    side = np.zeros(n, dtype=np.int64)
    until = np.full(n, -1, dtype=np.int64)
    for t in range(n):
        last = min(t + horizon, n - 1)
        for s in range(t + 1, last + 1):
            up = high[s] >= upper[t]
            down = low[s] <= lower[t]
            if up and down:
                side[t] = 1 if close[s] >= close[t] else -1
            elif up:
                side[t] = 1
            elif down:
                side[t] = -1
            else:
                continue
            until[t] = s
            break
        if until[t] < 0 and t + horizon <= n - 1:
            until[t] = t + horizon
    return side, until


@numba.njit(cache=True)
def cusum_events(  # pragma: no cover - compiled; tested through its callers
    returns: FloatArray, thresholds: FloatArray
) -> npt.NDArray[np.bool_]:
    """The symmetric CUSUM filter over log returns (``returns[t]`` = log(close t / close t-1)).

    Two sums run: ``up = max(0, up + r - h)`` and ``down = min(0, down + r + h)``; bar ``t`` is
    an event when ``up > h`` or ``down < -h`` (with ``h = thresholds[t]``), and the sum that
    fired starts again from 0. A NaN return or threshold leaves the sums as they are.
    """
    n = returns.shape[0]
    events = np.zeros(n, dtype=np.bool_)
    up = 0.0
    down = 0.0
    for t in range(n):
        r, h = returns[t], thresholds[t]
        if np.isnan(r) or np.isnan(h):
            continue
        up = max(0.0, up + r - h)
        down = min(0.0, down + r + h)
        if up > h:
            events[t] = True
            up = 0.0
        elif down < -h:
            events[t] = True
            down = 0.0
    return events


@numba.njit(cache=True)
def swing_pivots(  # pragma: no cover - compiled; tested through its callers
    prices: FloatArray, thresholds: FloatArray
) -> tuple[IntArray, IntArray]:
    """Swing pivots of ``prices`` with the threshold ``thresholds[t]`` (a fraction) at bar t.

    Bar 0 is the first pivot. Until a direction exists, the first bar whose price has moved
    the threshold away from bar 0 sets it and becomes the candidate extreme; then a higher
    price (rising) or a lower one (falling) replaces the candidate, and the first bar the
    threshold back from it confirms it as a pivot and becomes the next candidate. The last
    candidate is a pivot too (unconfirmed). A NaN threshold confirms nothing.

    Returns:
        (pivot bars in order, the bar that confirmed each: the direction-setting bar for bar 0,
        ``-1`` for the last, unconfirmed candidate).
    """
    n = prices.shape[0]
    pivots = np.empty(n + 1, dtype=np.int64)
    confirmed = np.empty(n + 1, dtype=np.int64)
    pivots[0], confirmed[0] = 0, -1
    count = 1
    if n == 0:
        return pivots[:0].copy(), confirmed[:0].copy()
    extreme, extreme_at = prices[0], 0
    trend = 0
    for t in range(1, n):
        price, threshold = prices[t], thresholds[t]
        if np.isnan(threshold):
            if (trend > 0 and price > extreme) or (trend < 0 and price < extreme):
                extreme, extreme_at = price, t
            continue
        change = (price - extreme) / extreme
        if trend == 0:
            if abs(change) >= threshold:
                confirmed[0] = t
                trend = 1 if change > 0 else -1
                extreme, extreme_at = price, t
        elif trend > 0:
            if price > extreme:
                extreme, extreme_at = price, t
            elif change <= -threshold:
                pivots[count], confirmed[count] = extreme_at, t
                count += 1
                trend, extreme, extreme_at = -1, price, t
        elif price < extreme:
            extreme, extreme_at = price, t
        elif change >= threshold:
            pivots[count], confirmed[count] = extreme_at, t
            count += 1
            trend, extreme, extreme_at = 1, price, t
    if pivots[count - 1] != extreme_at:
        pivots[count], confirmed[count] = extreme_at, -1
        count += 1
    return pivots[:count].copy(), confirmed[:count].copy()
