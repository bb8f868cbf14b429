"""Baselines that know how the labels are built, and use only what is known at each bar.

A model's accuracy means little against the majority class when the labels themselves leak
part of the answer into the past. A ZigZag label says which swing a bar lies in, and once a
swing has moved ``threshold`` from its start it is *confirmed*: every later bar of it can be
read off past prices. These rules predict the label from that alone, with no model; a model
that does not beat the strongest of them has learned nothing the labels did not give away.

- :func:`swing_state` (ZigZag): the direction of the swing confirmed so far: BUY after a low
  was confirmed (an upswing is under way), SELL after a high, HOLD before the first one.
- :func:`swing_state_retrace` (ZigZag): the same, but once the close has given back half the
  threshold from the running extreme since that confirmation, the swing has probably turned:
  predict the other side.
- :func:`last_confirmed_side` (triple barrier, any label with ``decided_at``): the side of the
  last move whose barrier was touched by this bar (BUY for the upper, SELL for the lower),
  HOLD before any.

Every prediction at bar ``t`` reads closes up to ``t`` and labels decided by ``t`` only; a test
proves that cutting the series after ``t`` changes none of them.

Example:
    >>> import numpy as np
    >>> close = np.array([100.0, 95.0, 90.0, 96.0, 100.0, 94.0, 95.0])
    >>> swing_state(close, 0.05).tolist()   # low 90 confirmed at bar 3, high 100 at bar 5
    [1, 2, 2, 0, 0, 2, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ktrdr_lib.features.labels import BUY, HOLD, SELL, _check_close, _check_threshold

__all__ = [
    "BASELINE_DESCRIPTIONS",
    "label_baselines",
    "last_confirmed_side",
    "swing_state",
    "swing_state_retrace",
]

BASELINE_DESCRIPTIONS: dict[str, str] = {
    "majority": "always the training split's most frequent class",
    "swing_state": "the direction of the ZigZag swing confirmed so far (no model)",
    "swing_state_retrace": (
        "the confirmed swing's direction, turned once half the threshold is given back (no model)"
    ),
    "last_confirmed_side": "the side of the last move whose barrier was touched (no model)",
}
"""What each baseline predicts, in words."""

IntArray = npt.NDArray[np.int64]


def _confirmations(close: npt.NDArray[np.float64], threshold: float) -> tuple[IntArray, IntArray]:
    from ktrdr_lib.features.labels import _confirmed_extremes

    return _confirmed_extremes(close, threshold)


def _state(
    close: npt.ArrayLike, threshold: float
) -> tuple[npt.NDArray[np.float64], IntArray, IntArray]:
    """Prices, the index of the last confirmation at or before each bar (-1: none), and
    each confirmation's direction (+1: a low confirmed, an upswing; -1: a high)."""
    _check_threshold(threshold)
    prices = np.ascontiguousarray(close, dtype=np.float64)
    _check_close(prices)
    extremes, confirmations = _confirmations(prices, threshold)
    bars = np.arange(prices.shape[0], dtype=np.int64)
    last = np.searchsorted(confirmations, bars, side="right") - 1
    direction = np.where(prices[extremes] < prices[confirmations], 1, -1).astype(np.int64)
    return prices, last, direction


def swing_state(close: npt.ArrayLike, threshold: float) -> IntArray:
    """Per bar, the direction of the ZigZag swing confirmed so far (BUY, SELL; HOLD before
    the first confirmation).

    Raises:
        ConfigError: ``threshold`` is not strictly between 0 and 1.
        DataError: a close is not finite and positive.
    """
    prices, last, direction = _state(close, threshold)
    labels = np.full(prices.shape[0], HOLD, dtype=np.int64)
    known = last >= 0
    up = np.zeros_like(known)
    up[known] = direction[last[known]] > 0
    labels[known & up] = BUY
    labels[known & ~up] = SELL
    return labels


def swing_state_retrace(close: npt.ArrayLike, threshold: float, give_back: float = 0.5) -> IntArray:
    """:func:`swing_state`, turned to the other side once the close has given back
    ``give_back`` × ``threshold`` from the running extreme since the last confirmation (the
    highest close of an upswing, the lowest of a downswing).

    Raises:
        ConfigError: ``threshold`` is not strictly between 0 and 1.
        DataError: a close is not finite and positive.
    """
    prices, last, direction = _state(close, threshold)
    labels = swing_state(prices, threshold)
    known = np.flatnonzero(last >= 0)
    if known.size == 0:
        return labels
    import pandas as pd

    segment = last[known]
    series = pd.Series(prices[known])
    running_high = series.groupby(segment).cummax().to_numpy()
    running_low = series.groupby(segment).cummin().to_numpy()
    up = direction[segment] > 0
    drop = 1.0 - prices[known] / running_high
    rise = prices[known] / running_low - 1.0
    turned_down = up & (drop >= give_back * threshold)
    turned_up = ~up & (rise >= give_back * threshold)
    labels[known[turned_down]] = SELL
    labels[known[turned_up]] = BUY
    return labels


def last_confirmed_side(labels: npt.ArrayLike, decided_at: npt.ArrayLike) -> IntArray:
    """Per bar ``t``, the label of the latest BUY or SELL label decided at or before ``t``
    (the side of the last confirmed move); HOLD before any.

    Args:
        labels: class ids per bar (0 BUY, 1 HOLD, 2 SELL).
        decided_at: per bar, the bar whose price decided its label.
    """
    values = np.asarray(labels, dtype=np.int64)
    decided = np.asarray(decided_at, dtype=np.int64)
    n = values.shape[0]
    out = np.full(n, HOLD, dtype=np.int64)
    moves = np.flatnonzero(values != HOLD)
    if moves.size == 0:
        return out
    # Decided in bar order; at equal bars, the later label wins (it is the more recent move).
    order = moves[np.lexsort((moves, decided[moves]))]
    when = decided[order]
    latest = np.searchsorted(when, np.arange(n, dtype=np.int64), side="right") - 1
    seen = latest >= 0
    out[seen] = values[order[latest[seen]]]
    return out


def label_baselines(labels: Any, bars: Any, targets: Any) -> dict[str, IntArray]:
    """The label-aware baselines of ``labels``' kind, predicted for every bar of one
    symbol's base-timeframe ``bars`` (``targets``: those bars' computed labels).

    ZigZag: ``swing_state`` and ``swing_state_retrace``; triple barrier:
    ``last_confirmed_side`` (over the labelled bars only). Other kinds: none (the majority
    class and, for a regression, the zero and training-mean baselines are computed where the
    model is evaluated).
    """
    from ktrdr_lib.strategy.label_kinds import TripleBarrierLabelsSpec, ZigzagLabelsSpec

    if isinstance(labels, ZigzagLabelsSpec):
        close = bars["close"].to_numpy(dtype=np.float64)
        return {
            "swing_state": swing_state(close, labels.zigzag_threshold),
            "swing_state_retrace": swing_state_retrace(close, labels.zigzag_threshold),
        }
    if isinstance(labels, TripleBarrierLabelsSpec):
        known = np.where(targets.labelled, targets.values, HOLD)
        return {"last_confirmed_side": last_confirmed_side(known, targets.decided_at)}
    return {}
