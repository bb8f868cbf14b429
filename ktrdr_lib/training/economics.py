"""What a model's signals would have earned on the test split: an evaluation of the training
result, not a backtesting engine (no order book, fills, sizing or portfolio).

From per-bar positions (BUY +1, SELL −1, HOLD 0) and each bar's next-bar return, vectorised:

- a position taken at bar ``t`` earns ``r[t] = close[t+1] / close[t] − 1`` (the bar after;
  nothing before ``t + 1`` is used to earn it, nothing after ``t`` to choose it);
- every change of position pays ``round_trip_cost / 2`` per unit changed (opening and closing
  a position is one round trip; a flip from long to short is two units, one round trip); the
  first bar pays for opening its position;
- net return per bar ``p[t] · r[t] − cost[t]``; equity ``∏(1 + net)``;
- **total return** ``equity[-1] − 1``; **annualised** ``(1 + total)^(periods_per_year / n) − 1``;
- **Sharpe** ``mean(net) / std(net) · √periods_per_year`` (``None`` when the net returns do not
  vary); **maximum drawdown** the largest fall of equity from its running peak (a fraction);
- **hit rate** the share of bars in a position whose gross return ``p·r`` was positive;
- **turnover** units of position changed per bar; **exposure** the share of bars in a position.

``periods_per_year`` comes from the test bars' own spacing (bars per year of calendar time), so
daily stock bars, hourly FX bars and crypto bars each get their own.

Example:
    >>> import numpy as np
    >>> figures = signal_economics(np.array([1, 1, 0]), np.array([0.01, -0.02, 0.03]),
    ...                            round_trip_cost=0.0, periods_per_year=252)
    >>> round(figures.total_return, 4), figures.exposure
    (-0.0102, 0.6667)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr_lib.errors import DataError
from ktrdr_lib.schemas.results import SignalEconomics

__all__ = ["periods_per_year", "positions_from_classes", "signal_economics"]

SECONDS_PER_YEAR = 365.25 * 86400


def periods_per_year(index: pd.DatetimeIndex | list[Any]) -> float | None:
    """Bars per year of calendar time in ``index`` (bar times, each counted once however many
    symbols have a row at it); ``None`` for fewer than two bars or no time between them."""
    times = pd.DatetimeIndex(index).unique()  # several symbols' rows share their bar times
    if len(times) < 2:
        return None
    span = (times.max() - times.min()).total_seconds()
    if span <= 0:
        return None
    return (len(times) - 1) / (span / SECONDS_PER_YEAR)


def positions_from_classes(
    predicted: npt.ArrayLike,
    probabilities: npt.ArrayLike | None = None,
    *,
    confidence_threshold: float | None = None,
) -> npt.NDArray[np.float64]:
    """Positions from class ids (0 BUY → +1, 1 HOLD → 0, 2 SELL → −1); with a confidence
    threshold, a signal whose probability is below it is flat."""
    classes = np.asarray(predicted, dtype=np.int64)
    positions = np.select([classes == 0, classes == 2], [1.0, -1.0], 0.0)
    if confidence_threshold is not None and probabilities is not None:
        confident = np.asarray(probabilities, dtype=np.float64).max(axis=1) >= confidence_threshold
        positions = np.where(confident, positions, 0.0)
    return positions


def signal_economics(
    positions: npt.ArrayLike,
    next_returns: npt.ArrayLike,
    *,
    round_trip_cost: float,
    periods_per_year: float | None,
) -> SignalEconomics:
    """The figures of the module's docstring for one position series.

    Bars whose next return is unknown (the last bar of a series) are left out.

    Raises:
        DataError: the arrays differ in length, or no bar has a next return.
    """
    p = np.asarray(positions, dtype=np.float64)
    r = np.asarray(next_returns, dtype=np.float64)
    if p.shape != r.shape:
        raise DataError(f"{p.shape[0]} positions but {r.shape[0]} next-bar returns")
    keep = np.isfinite(r)
    p, r = p[keep], r[keep]
    n = p.shape[0]
    if n == 0:
        raise DataError("no test bar has a next-bar return to earn; the test split is too short")
    changes = np.abs(np.diff(p, prepend=0.0))
    costs = changes * round_trip_cost / 2.0
    gross = p * r
    net = gross - costs
    equity = np.cumprod(1.0 + net)
    total = float(equity[-1] - 1.0)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    drawdown = float(np.max(1.0 - equity / peak)) if n else 0.0
    std = float(net.std(ddof=1)) if n > 1 else 0.0
    yearly = periods_per_year
    sharpe = None
    if std > 1e-15 and yearly is not None:
        sharpe = float(net.mean() / std * math.sqrt(yearly))
    annualised = None
    if yearly is not None and equity[-1] > 0:
        annualised = float(equity[-1] ** (yearly / n) - 1.0)
    held = p != 0
    return SignalEconomics(
        bars=n,
        total_return=round(total, 6),
        annualised_return=None if annualised is None else round(annualised, 6),
        sharpe=None if sharpe is None else round(sharpe, 4),
        max_drawdown=round(drawdown, 6),
        hit_rate=round(float(np.mean(gross[held] > 0)), 4) if held.any() else None,
        turnover=round(float(changes.sum() / n), 6),
        exposure=round(float(held.mean()), 4),
        costs=round(float(costs.sum()), 6),
        round_trip_cost=round_trip_cost,
        periods_per_year=None if yearly is None else round(yearly, 2),
    )
