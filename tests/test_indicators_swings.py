"""The ZigZag indicator against a plain loop of KTRDR's pivot rule (section 5.1 of the
strategy-format facts), and its pivot finder shared with the ZigZag labels."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators import INDICATOR_CATALOG, compute_indicator, zigzag
from ktrdr_lib.features.labels import zigzag_labels
from ktrdr_lib.strategy.spec import IndicatorSpec
from tests.test_indicators import random_walk_bars


def loop_zigzag(prices: np.ndarray, threshold: float) -> np.ndarray:
    """KTRDR's rule: bar 0 is a pivot, the first move of ``threshold`` from it sets the
    direction, a further extreme replaces the last pivot, a move back of ``threshold`` from it
    starts the next swing."""
    out = np.full(prices.shape[0], np.nan)
    out[0] = prices[0]
    last, direction = 0, 0
    for t in range(1, prices.shape[0]):
        change = (prices[t] - prices[last]) / prices[last]
        if direction == 0 and abs(change) >= threshold:
            direction = 1 if change > 0 else -1
        elif direction * (prices[t] - prices[last]) > 0:  # a further extreme replaces the pivot
            out[last] = np.nan
        elif direction != 0 and -direction * change >= threshold:
            direction = -direction
        else:
            continue
        out[t], last = prices[t], t
    return out


@pytest.mark.parametrize("threshold", [0.005, 0.03, 0.2])
@pytest.mark.parametrize("seed", [1, 2])
def test_zigzag_pivots_are_ktrdrs(threshold: float, seed: int) -> None:
    close = random_walk_bars(5000, seed=seed)["close"].to_numpy()
    ours = zigzag(close, threshold)
    np.testing.assert_array_equal(ours, loop_zigzag(close, threshold))
    assert np.count_nonzero(~np.isnan(ours)) > 2


def test_zigzag_by_hand() -> None:
    # 106 confirms the rise from 100 (+6 %); 100 the fall from 106; 99 is the open extreme.
    close = np.array([100.0, 103.0, 106.0, 104.0, 100.0, 99.0])
    np.testing.assert_array_equal(zigzag(close, 0.05), [100.0, np.nan, 106.0, np.nan, np.nan, 99.0])
    # No move reaches the threshold: bar 0 is the only pivot.
    flat = zigzag(np.array([100.0, 101.0, 99.5, 100.5]), 0.05)
    np.testing.assert_array_equal(flat, [100.0, np.nan, np.nan, np.nan])
    assert zigzag(np.empty(0), 0.05).shape == (0,)


@pytest.mark.parametrize("threshold", [0.0, 1.0, float("nan")])
def test_zigzag_threshold_is_a_fraction(threshold: float) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        zigzag(np.ones(5), threshold)


def test_zigzag_and_the_labels_confirm_the_same_swings_once_started() -> None:
    """One pivot finder: the labels also track a high and a low from the start, the indicator
    starts at bar 0; once a swing is under way the two confirm the same extremes."""
    close = random_walk_bars(4000, seed=3)["close"].to_numpy()
    pivots = np.flatnonzero(~np.isnan(zigzag(close, 0.03)))
    extremes = zigzag_labels(close, 0.03).extremes
    later = extremes[extremes > pivots[2]]
    assert later.size > 10
    assert set(later.tolist()) <= set(pivots.tolist())


def test_zigzag_entry() -> None:
    entry = INDICATOR_CATALOG["zigzag"]
    assert entry.params == {"threshold": 0.05} and entry.outputs == ("zigzag",)
    assert entry.parameter("threshold").bounds_text() == "> 0 and < 1"  # type: ignore[union-attr]
    bars = random_walk_bars(500, seed=4)
    spec = IndicatorSpec(type="zigzag", params={"threshold": 0.02}, source="high")
    expected = zigzag(bars["high"].to_numpy(), 0.02)
    np.testing.assert_array_equal(compute_indicator(spec, bars), expected)
