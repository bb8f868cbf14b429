"""Swing indicators: the ZigZag line of pivots.

KTRDR's ``zigzag`` indicator (section 5.1 of the strategy-format facts): bar 0 is a pivot;
until a direction exists, the first price ``threshold`` (a fraction) above or below the first
one becomes a pivot and sets it; in an up-swing a higher price replaces the last pivot and a
drop of ``threshold`` from it starts a down-swing at the current bar (and the mirror). The
last, still unconfirmed extreme is a pivot too. The value is the price on pivot bars and NaN
everywhere else.

The pivots are found with hindsight: a bar learns that it is a pivot only when a later price
confirms it (or because it is the latest extreme so far), so the value at a bar depends on
later bars, as it did in KTRDR. The swing finder is the one the ZigZag training labels use
(:func:`~ktrdr_lib.features.indicators._compiled.zigzag_pivots`), started at bar 0 as KTRDR's
indicator starts.

Example:
    >>> zigzag([100.0, 103.0, 106.0, 104.0, 100.0, 99.0], 0.05).tolist()
    [100.0, nan, 106.0, nan, nan, 99.0]
"""

from __future__ import annotations

import math

import msgspec

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import ArrayLike, FloatArray, as_float, nan_array
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, number

__all__ = ["ENTRIES", "zigzag"]


def zigzag(price: ArrayLike, threshold: float = 0.05) -> FloatArray:
    """The ZigZag pivots of ``price``: the price on pivot bars, NaN elsewhere.

    Args:
        price: prices (a NaN price is skipped).
        threshold: the smallest move that counts as a swing, as a fraction in (0, 1).

    Returns:
        The pivot prices, NaN off the pivots (and everywhere for an empty series).

    Raises:
        ConfigError: ``threshold`` is not strictly between 0 and 1.
    """
    from ktrdr_lib.features.indicators._compiled import zigzag_pivots  # numba: load on use

    if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
        raise ConfigError(
            f"zigzag threshold must be a fraction between 0 and 1 (got {threshold}); "
            "use e.g. 0.05 for 5 %."
        )
    prices = as_float(price)
    out = nan_array(prices.shape[0])
    if prices.shape[0] == 0:
        return out
    extremes, _, candidate = zigzag_pivots(prices, threshold, False)
    out[0] = prices[0]
    out[extremes] = prices[extremes]
    if candidate >= 0:
        out[candidate] = prices[candidate]
    return out


ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="zigzag",
        summary="ZigZag pivot prices at swing extremes, NaN between pivots (uses hindsight)",
        inputs=(SOURCE,),
        parameters=(number("threshold", 0.05, bounds=msgspec.Meta(gt=0, lt=1)),),
        outputs=("zigzag",),
        compute=zigzag,
        # No warm-up: NaN off the pivots is the value itself, not a warm-up.
        warmup=lambda threshold: 0,
    ),
)
"""The swing family's catalog entries."""
