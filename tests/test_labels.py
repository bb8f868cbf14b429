"""ZigZag labels on hand-made series, decided_at checked by hand and by truncation."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.labels import (
    BUY,
    HOLD,
    LABEL_NAMES,
    SELL,
    label_distribution,
    zigzag_labels,
)

B, H, S = BUY, HOLD, SELL


def test_label_ids_and_names() -> None:
    assert (BUY, HOLD, SELL) == (0, 1, 2)
    assert LABEL_NAMES == ("BUY", "HOLD", "SELL")


def test_clean_up_down_up_zigzag() -> None:
    # Low 100 at bar 0, confirmed at bar 2 (105 = +5 %); high 110 at bar 3, confirmed at bar 5
    # (100 <= 104.5); low 97 at bar 6, confirmed at bar 8 (104 >= 101.85); the last rise to 108
    # has no confirmed top.
    close = [100, 102, 105, 110, 106, 100, 97, 99, 104, 108]
    result = zigzag_labels(np.array(close, dtype=float), 0.05)
    assert result.extremes.tolist() == [0, 3, 6]
    assert result.labels.tolist() == [H, B, B, H, S, S, H, H, H, H]
    assert result.decided_at.tolist() == [2, 5, 5, 5, 8, 8, 8, 9, 9, 9]
    assert result.labels.dtype == np.int64
    assert result.extremes.dtype == np.int64
    assert result.decided_at.dtype == np.int64


def test_first_extreme_can_be_a_high() -> None:
    # High 100 at bar 0 confirmed at bar 2 (90 <= 95); low 90 at bar 2 confirmed at bar 3.
    result = zigzag_labels(np.array([100.0, 96.0, 90.0, 95.0]), 0.05)
    assert result.extremes.tolist() == [0, 2]
    assert result.labels.tolist() == [H, S, H, H]
    assert result.decided_at.tolist() == [2, 3, 3, 3]


def test_moves_below_threshold_are_ignored() -> None:
    # Every move is under 3 %: no swing, no extremes.
    wiggle = zigzag_labels(np.array([100.0, 102.0, 100.0, 102.5, 101.0, 100.5]), 0.03)
    assert wiggle.extremes.size == 0
    assert wiggle.labels.tolist() == [H] * 6
    assert wiggle.decided_at.tolist() == [5] * 6
    # A 2.7 % dip inside a 15 % rise does not end the upswing.
    dip = zigzag_labels(np.array([100.0, 110.0, 107.0, 115.0, 100.0]), 0.05)
    assert dip.extremes.tolist() == [0, 3]
    assert dip.labels.tolist() == [H, B, B, H, H]
    assert dip.decided_at.tolist() == [1, 4, 4, 4, 4]


def test_a_move_of_exactly_the_threshold_is_a_swing() -> None:
    # Exactly representable: 100 * 1.25 == 125 and 125 * 0.75 == 93.75.
    result = zigzag_labels(np.array([100.0, 125.0, 93.75]), 0.25)
    assert result.extremes.tolist() == [0, 1]
    assert result.labels.tolist() == [H, H, H]
    assert result.decided_at.tolist() == [1, 2, 2]


def test_equal_highs_keep_the_first_bar_as_the_extreme() -> None:
    result = zigzag_labels(np.array([100.0, 110.0, 110.0, 100.0]), 0.05)
    assert result.extremes.tolist() == [0, 1]


def test_flat_series_is_all_hold() -> None:
    result = zigzag_labels(np.full(50, 12.5), 0.01)
    assert result.extremes.size == 0
    assert (result.labels == HOLD).all()
    assert (result.decided_at == 49).all()


def test_empty_and_single_bar_series() -> None:
    empty = zigzag_labels(np.array([]), 0.03)
    assert empty.labels.size == empty.extremes.size == empty.decided_at.size == 0
    single = zigzag_labels(np.array([5.0]), 0.03)
    assert single.labels.tolist() == [H]
    assert single.decided_at.tolist() == [0]


def random_walk_close(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, n)))


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return random_walk_close(3000, seed=21)


def test_extremes_alternate_are_swing_ends_and_at_least_threshold_apart(walk: np.ndarray) -> None:
    threshold = 0.02
    extremes = zigzag_labels(walk, threshold).extremes
    assert extremes.size > 20
    prices = walk[extremes]
    steps = np.diff(prices)
    assert (np.sign(steps[1:]) == -np.sign(steps[:-1])).all()  # high, low, high, ...
    assert (np.abs(steps) / prices[:-1] >= threshold - 1e-12).all()
    for left, middle, right in zip(extremes, extremes[1:], extremes[2:], strict=False):
        segment = walk[left : right + 1]
        is_high = walk[middle] > walk[left]
        assert walk[middle] == (segment.max() if is_high else segment.min())


def test_labels_follow_the_swing_direction(walk: np.ndarray) -> None:
    result = zigzag_labels(walk, 0.02)
    for start, end in zip(result.extremes, result.extremes[1:], strict=False):
        inside = result.labels[start + 1 : end]
        expected = BUY if walk[end] > walk[start] else SELL
        assert (inside == expected).all()
        assert result.labels[start] == HOLD
    assert (result.labels[: result.extremes[0] + 1] == HOLD).all()
    assert (result.labels[result.extremes[-1] :] == HOLD).all()


def test_label_is_unchanged_when_the_series_ends_at_decided_at(walk: np.ndarray) -> None:
    result = zigzag_labels(walk, 0.02)
    last = walk.size - 1
    decided = np.unique(result.decided_at[result.decided_at < last])
    assert decided.size > 20
    for cut in decided:
        truncated = zigzag_labels(walk[: cut + 1], 0.02)
        bars = np.flatnonzero(result.decided_at == cut)
        np.testing.assert_array_equal(truncated.labels[bars], result.labels[bars])
        assert truncated.extremes.tolist() == result.extremes[: truncated.extremes.size].tolist()


def test_label_stays_decided_for_any_later_cut(walk: np.ndarray) -> None:
    result = zigzag_labels(walk, 0.02)
    rng = np.random.default_rng(4)
    for cut in rng.integers(0, walk.size, 25):
        truncated = zigzag_labels(walk[: cut + 1], 0.02)
        settled = np.flatnonzero(result.decided_at <= cut)
        np.testing.assert_array_equal(truncated.labels[settled], result.labels[settled])


def test_decided_at_is_tight_for_swing_bars(walk: np.ndarray) -> None:
    # One bar earlier the extreme ending the swing is not confirmed, so the bar is still HOLD.
    result = zigzag_labels(walk, 0.02)
    swing_bars = np.flatnonzero(result.labels != HOLD)
    for cut in np.unique(result.decided_at[swing_bars]):
        truncated = zigzag_labels(walk[:cut], 0.02)
        bars = swing_bars[result.decided_at[swing_bars] == cut]
        assert (truncated.labels[bars] == HOLD).all()


def test_decided_at_is_never_before_the_bar(walk: np.ndarray) -> None:
    result = zigzag_labels(walk, 0.02)
    assert (result.decided_at >= np.arange(walk.size)).all()
    assert (np.diff(result.decided_at) >= 0).all()


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.0, 3.0, float("nan")])
def test_bad_threshold_is_a_config_error(threshold: float) -> None:
    with pytest.raises(ConfigError, match="zigzag_threshold"):
        zigzag_labels(np.array([1.0, 2.0]), threshold)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -3.0])
def test_bad_prices_are_a_data_error_naming_the_bar(bad: float) -> None:
    close = np.array([10.0, 11.0, bad, 12.0])
    with pytest.raises(DataError, match="bar 2"):
        zigzag_labels(close, 0.03)


def test_two_dimensional_close_is_a_data_error() -> None:
    with pytest.raises(DataError, match="1-D"):
        zigzag_labels(np.ones((3, 2)), 0.03)


def test_label_distribution_counts_every_class() -> None:
    assert label_distribution(np.array([0, 2, 2, 1, 2])) == {"BUY": 1, "HOLD": 1, "SELL": 3}
    assert label_distribution(np.array([1, 1])) == {"BUY": 0, "HOLD": 2, "SELL": 0}
    assert label_distribution(np.array([], dtype=np.int64)) == {"BUY": 0, "HOLD": 0, "SELL": 0}


def test_label_distribution_rejects_unknown_ids() -> None:
    with pytest.raises(DataError, match="found 3"):
        label_distribution(np.array([0, 3]))
