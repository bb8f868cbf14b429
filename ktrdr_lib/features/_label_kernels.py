"""The label kinds' two sequential loops, compiled with numba.

- :func:`first_barrier`: for each bar, the first later bar whose high or low crosses a
  barrier (a first-passage search with an early exit per bar).
- :func:`cusum_events`: the symmetric CUSUM filter, whose sums reset when they fire.

Imported inside the functions that need them, so loading a strategy never loads numba.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["cusum_events", "first_barrier"]

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
