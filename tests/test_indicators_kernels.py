"""The window kernels the oscillator, volatility and volume families build on, against pandas
and two-pass numpy: span-doubling sums, mean and variance, partial windows, differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.features.indicators._kernels import (
    lagged_difference,
    partial_rolling_mean,
    partial_rolling_sum,
    rolling_mean_and_variance,
    rolling_sum,
)

PERIODS = [1, 2, 3, 14, 20, 21, 50, 500]
# Lengths below, at and above a period, and across the 16 384-row cache blocks.
LENGTHS = [0, 1, 19, 20, 21, 1000, 40_003]


def random_walk(length: int, seed: int = 5) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.004, length)))


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("period", PERIODS)
def test_rolling_sum_is_pandas_rolling_sum(length: int, period: int) -> None:
    values = random_walk(length)
    expected = pd.Series(values, dtype=np.float64).rolling(period).sum().to_numpy()
    ours = rolling_sum(values, period)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, equal_nan=True)


def test_rolling_sum_skips_a_warmup_and_recovers_after_nan_and_inf() -> None:
    values = random_walk(3000)
    values[1000], values[2000] = np.nan, np.inf
    ours = rolling_sum(values, 20, first_valid=7)
    padded = values.copy()
    padded[:7] = np.nan
    expected = pd.Series(padded).rolling(20).sum().to_numpy()  # NaN where ours is inf
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(expected))
    assert np.isnan(ours[:26]).all() and np.isnan(ours[1000:1020]).all()
    assert np.isinf(ours[2000:2020]).all() and np.isfinite(ours[2020:]).all()
    finite = np.isfinite(expected)
    np.testing.assert_allclose(ours[finite], expected[finite], rtol=1e-12)


def test_rolling_sum_writes_into_out() -> None:
    values = random_walk(100)
    out = np.empty(100)
    assert rolling_sum(values, 10, out=out) is out


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("period", [p for p in PERIODS if p > 1])
def test_rolling_mean_and_variance_are_the_two_pass_ones(length: int, period: int) -> None:
    values = random_walk(length) * 1000.0  # large levels, small changes: cancellation-prone
    mean, variance = rolling_mean_and_variance(values, period, ddof=1)
    assert np.isnan(mean[: period - 1]).all() and np.isnan(variance[: period - 1]).all()
    if length < period:
        return
    windows = np.lib.stride_tricks.sliding_window_view(values, period)
    np.testing.assert_allclose(mean[period - 1 :], windows.mean(axis=1), rtol=1e-13)
    deviation = windows.std(axis=1, ddof=1)
    np.testing.assert_allclose(np.sqrt(variance[period - 1 :]), deviation, rtol=1e-10)


def test_rolling_variance_of_a_flat_window_is_exactly_zero() -> None:
    values = np.concatenate([random_walk(700), np.full(100, 0.1 + 0.2)])
    mean, variance = rolling_mean_and_variance(values, 21, ddof=1)
    np.testing.assert_array_equal(variance[-80:], 0.0)
    np.testing.assert_array_equal(mean[-80:], 0.1 + 0.2)


def test_rolling_variance_recovers_after_nan_and_takes_its_ddof() -> None:
    values = random_walk(500)
    values[250] = np.nan
    _, variance = rolling_mean_and_variance(values, 10, ddof=0)
    expected = pd.Series(values).rolling(10).var(ddof=0).to_numpy()
    np.testing.assert_array_equal(np.isnan(variance), np.isnan(expected))
    np.testing.assert_allclose(variance, expected, rtol=1e-7, equal_nan=True)
    assert np.isnan(rolling_mean_and_variance(values, 1, ddof=1)[1]).all()


@pytest.mark.parametrize(("period", "min_periods"), [(50, 20), (3, 1), (1, 1), (20, 20), (900, 1)])
def test_partial_windows_are_pandas_min_periods(period: int, min_periods: int) -> None:
    values = random_walk(800)
    rolling = pd.Series(values).rolling(period, min_periods=min_periods)
    np.testing.assert_allclose(
        partial_rolling_sum(values, period, min_periods), rolling.sum().to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        partial_rolling_mean(values, period, min_periods), rolling.mean().to_numpy(), rtol=1e-12
    )


@pytest.mark.parametrize(("length", "lag"), [(10, 3), (3, 3), (2, 5), (0, 1)])
def test_lagged_difference_is_pandas_diff(length: int, lag: int) -> None:
    values = random_walk(length)
    expected = pd.Series(values, dtype=np.float64).diff(lag).to_numpy()
    np.testing.assert_array_equal(lagged_difference(values, lag), expected)
