"""ZigZag training labels: BUY on upswings, SELL on downswings, HOLD elsewhere.

A swing is a move of at least ``threshold`` (a fraction) away from the last extreme. Walking
the closes once, a candidate extreme is kept (the highest close since the last confirmed low,
or the lowest since the last confirmed high) and *confirmed* on the first bar whose close has
moved ``threshold`` back from it. Before the first confirmation both a high and a low candidate
are tracked, and whichever is confirmed first sets the direction. Confirmed extremes alternate
high / low.

Labels, per bar ``t``:

- BUY (0) strictly between a low extreme and the next (high) extreme;
- SELL (2) strictly between a high extreme and the next (low) extreme;
- HOLD (1) on the extremes, before the first and after the last confirmed extreme.

``decided_at[t]`` is the last bar whose close is needed to know label ``t`` for certain: the bar
that confirmed the first extreme at or after ``t`` (for a swing bar, the extreme that ends its
swing), or the series' last bar when no extreme after ``t`` has been confirmed. Cutting the
series anywhere at or after ``decided_at[t]`` leaves label ``t`` unchanged, so training rows
whose ``decided_at`` falls in a later split must be purged.

Example:
    >>> import numpy as np
    >>> close = np.array([100.0, 95.0, 90.0, 96.0, 100.0, 94.0, 95.0])
    >>> result = zigzag_labels(close, 0.05)
    >>> result.extremes.tolist(), result.labels.tolist()
    ([0, 2, 4], [1, 2, 1, 0, 1, 1, 1])
    >>> result.decided_at.tolist()
    [1, 3, 3, 5, 5, 6, 6]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ktrdr_lib.errors import ConfigError, DataError

__all__ = [
    "BUY",
    "HOLD",
    "LABEL_NAMES",
    "SELL",
    "ZigZagLabels",
    "label_distribution",
    "zigzag_labels",
]

IntArray = npt.NDArray[np.int64]

BUY = 0
HOLD = 1
SELL = 2
LABEL_NAMES: tuple[str, str, str] = ("BUY", "HOLD", "SELL")


@dataclass(frozen=True)
class ZigZagLabels:
    """ZigZag labels of one close series.

    Attributes:
        labels: int64 per bar: 0 BUY, 1 HOLD, 2 SELL.
        extremes: int64 bar indices of the confirmed extremes, in order, alternating high/low.
        decided_at: int64 per bar: the last bar whose close determines that bar's label.
    """

    labels: IntArray
    extremes: IntArray
    decided_at: IntArray


def _check_threshold(threshold: float) -> None:
    if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
        raise ConfigError(
            f"training.labels.zigzag_threshold must be a fraction between 0 and 1 "
            f"(got {threshold}); use e.g. 0.03 for 3 %."
        )


def _check_close(close: npt.NDArray[np.float64]) -> None:
    if close.ndim != 1:
        raise DataError(f"ZigZag needs a 1-D close series (got shape {close.shape}).")
    bad = np.flatnonzero(~(np.isfinite(close) & (close > 0)))
    if bad.size:
        raise DataError(
            f"ZigZag needs finite, positive closes; bar {int(bad[0])} has {close[bad[0]]} "
            f"({bad.size} such bars). Clean or drop those bars before labelling."
        )


def _confirmed_extremes(
    close: npt.NDArray[np.float64], threshold: float
) -> tuple[IntArray, IntArray]:
    """The confirmed extremes and the bar confirming each, in one compiled pass.

    Before the first confirmation both the highest and the lowest close so far are candidates
    (see :func:`~ktrdr_lib.features.indicators._compiled.zigzag_pivots`).
    """
    from ktrdr_lib.features.indicators._compiled import zigzag_pivots  # numba: load on use

    extremes, confirmations, _ = zigzag_pivots(close, threshold, True)
    return extremes, confirmations


def zigzag_labels(close: npt.ArrayLike, threshold: float) -> ZigZagLabels:
    """Label every bar BUY, HOLD or SELL by the ZigZag swing it lies in.

    One sequential O(n) pass (compiled) finds the confirmed extremes; labels and
    ``decided_at`` are then filled in vectorised.

    Args:
        close: closing prices, finite and positive.
        threshold: the smallest move that counts as a swing, as a fraction (0.03 = 3 %).

    Returns:
        The labels, the confirmed extremes and, per bar, the bar that decided its label.

    Raises:
        ConfigError: ``threshold`` is not strictly between 0 and 1.
        DataError: ``close`` is not 1-D or holds a non-finite or non-positive price.
    """
    _check_threshold(threshold)
    prices = np.ascontiguousarray(close, dtype=np.float64)
    _check_close(prices)
    n = prices.shape[0]
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return ZigZagLabels(labels=empty, extremes=empty.copy(), decided_at=empty.copy())
    extremes, confirmations = _confirmed_extremes(prices, threshold)
    first_is_high = bool(extremes.size) and prices[extremes[0]] > prices[confirmations[0]]
    bars = np.arange(n, dtype=np.int64)

    # Index of the last extreme at or before each bar (-1 before the first).
    previous_extreme = np.searchsorted(extremes, bars, side="right") - 1
    in_swing = (previous_extreme >= 0) & (previous_extreme < extremes.size - 1)
    in_swing[extremes] = False
    swing_from_high = (previous_extreme % 2 == 0) == first_is_high
    labels = np.full(n, HOLD, dtype=np.int64)
    labels[in_swing & swing_from_high] = SELL
    labels[in_swing & ~swing_from_high] = BUY

    # The first extreme at or after each bar decides it; none yet → the last bar.
    next_extreme = np.searchsorted(extremes, bars, side="left")
    decided_at = np.append(confirmations, n - 1)[next_extreme]
    return ZigZagLabels(labels=labels, extremes=extremes, decided_at=decided_at)


def label_distribution(labels: npt.ArrayLike) -> dict[str, int]:
    """Count of each label.

    Args:
        labels: class ids 0 (BUY), 1 (HOLD), 2 (SELL).

    Returns:
        ``{"BUY": n0, "HOLD": n1, "SELL": n2}``, zero counts included.

    Raises:
        DataError: a value is not one of the three class ids.

    Example:
        >>> label_distribution([0, 1, 1, 2])
        {'BUY': 1, 'HOLD': 2, 'SELL': 1}
    """
    ids = np.asarray(labels, dtype=np.int64).ravel()
    outside = ids[(ids < 0) | (ids >= len(LABEL_NAMES))]
    if outside.size:
        raise DataError(
            f"labels must be 0 (BUY), 1 (HOLD) or 2 (SELL); found {int(outside[0])} "
            f"({outside.size} such values)."
        )
    counts = np.bincount(ids, minlength=len(LABEL_NAMES))
    return {name: int(count) for name, count in zip(LABEL_NAMES, counts, strict=True)}
