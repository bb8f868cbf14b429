"""Moving averages and the distance from one, against TA-Lib and pandas statements of KTRDR's
formulas (section 2.2 of the strategy-format facts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators import INDICATOR_CATALOG, compute_outputs, indicator_warmup
from ktrdr_lib.features.indicators.averages import (
    distance_from_ma,
    exponential_mean,
    exponential_moving_average,
    simple_moving_average,
    weighted_moving_average,
)
from ktrdr_lib.strategy.spec import IndicatorSpec
from tests.test_indicators import assert_same_where_defined, random_walk_bars


@pytest.fixture(scope="module")
def close() -> np.ndarray:
    return random_walk_bars(1500)["close"].to_numpy()


@pytest.mark.parametrize("period", [2, 20, 500])
def test_simple_and_weighted_averages_are_talibs(close: np.ndarray, period: int) -> None:
    assert_same_where_defined(simple_moving_average(close, period), talib.SMA(close, period), 1e-9)
    assert_same_where_defined(
        weighted_moving_average(close, period), talib.WMA(close, period), 1e-12
    )


@pytest.mark.parametrize("period", [1, 3, 20])
def test_weighted_average_stays_exact_on_long_series(period: int) -> None:
    """Running totals restart every few hundred windows: no drift with length."""
    close = random_walk_bars(60_000, seed=12)["close"].to_numpy() * 1000.0
    weights = np.arange(1.0, period + 1.0)
    windows = np.lib.stride_tricks.sliding_window_view(close, period)
    expected = windows @ weights / weights.sum()
    ours = weighted_moving_average(close, period)
    np.testing.assert_allclose(ours[period - 1 :], expected, rtol=1e-12)


def test_weighted_average_of_a_flat_series_is_exactly_the_price() -> None:
    np.testing.assert_array_equal(weighted_moving_average(np.full(3000, 1.1), 7)[6:], 1.1)


def test_weighted_average_gaps_spoil_only_their_windows() -> None:
    close = random_walk_bars(1200, seed=13)["close"].to_numpy().copy()
    close[600] = np.nan
    close[900] = np.inf
    weights = np.arange(1.0, 11.0)
    expected = (
        pd.Series(close)
        .rolling(10)
        .apply(lambda window: window @ weights / weights.sum(), raw=True)
        .replace(np.inf, np.nan)
        .to_numpy()
    )
    assert_same_where_defined(weighted_moving_average(close, 10), expected, rtol=1e-12)


@pytest.mark.parametrize("period", [1, 2, 20, 500])
@pytest.mark.parametrize("adjust", [True, False])
def test_exponential_average_is_pandas_ewm(close: np.ndarray, period: int, adjust: bool) -> None:
    """KTRDR's EMA is pandas ewm(span=n, adjust=True) by default, from bar 0 (not TA-Lib's)."""
    expected = pd.Series(close).ewm(span=period, adjust=adjust).mean().to_numpy()
    ours = exponential_moving_average(close, period, adjust)
    assert not np.isnan(ours).any()
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_exponential_mean_follows_pandas_over_gaps(close: np.ndarray) -> None:
    gapped = close.copy()
    gapped[[0, 1, 700]] = np.nan
    for adjust in (True, False):
        expected = pd.Series(gapped).ewm(alpha=0.1, adjust=adjust).mean().to_numpy()
        assert_same_where_defined(exponential_mean(gapped, 0.1, adjust=adjust), expected, 1e-12)
    assert exponential_mean(np.empty(0), 0.5, adjust=True).shape == (0,)


def test_exponential_average_converges_to_talibs(close: np.ndarray) -> None:
    """TA-Lib seeds with the mean of the first n prices; the difference fades as (1 - 2/21)^k."""
    ours = exponential_moving_average(close, 20, adjust=False)
    np.testing.assert_allclose(ours[400:], talib.EMA(close, 20)[400:], rtol=1e-12)


@pytest.mark.parametrize("ma_type", ["SMA", "EMA", "ema"])
def test_distance_from_ma_is_the_percent_gap_to_the_average(
    close: np.ndarray, ma_type: str
) -> None:
    prices = pd.Series(close)
    if ma_type.upper() == "SMA":
        average = prices.rolling(20).mean()
    else:
        average = prices.ewm(span=20, adjust=True).mean()
    expected = (100 * (prices - average) / average).to_numpy()
    assert_same_where_defined(distance_from_ma(close, 20, ma_type), expected, rtol=1e-9)  # type: ignore[arg-type]


def test_distance_from_a_zero_average_is_nan_and_a_bad_type_is_refused() -> None:
    distance = distance_from_ma(np.array([1.0, -1.0, 2.0]), 2)
    assert np.isnan(distance[:2]).all() and distance[2] == pytest.approx(100 * (2 - 0.5) / 0.5)
    with pytest.raises(ConfigError, match="SMA or EMA"):
        distance_from_ma(np.ones(5), 2, "WMA")  # type: ignore[arg-type]


# --- catalog entries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("sma", "simplemovingaverage"),
        ("SMA", "simplemovingaverage"),
        ("volume_sma", "simplemovingaverage"),
        ("ema", "exponentialmovingaverage"),
        ("EMAIndicator", "exponentialmovingaverage"),
        ("wma", "weightedmovingaverage"),
        ("DistanceFromMA", "distancefromma"),
    ],
)
def test_every_ktrdr_spelling_resolves(spelling: str, name: str) -> None:
    assert INDICATOR_CATALOG.require(spelling).name == name


def test_entries_declare_ktrdrs_parameters_and_outputs() -> None:
    sma = INDICATOR_CATALOG["simplemovingaverage"]
    assert sma.params == {"period": 20} and sma.outputs == ("sma",)
    assert sma.parameter("period").bounds_text() == ">= 2 and <= 500"  # type: ignore[union-attr]
    ema = INDICATOR_CATALOG["exponentialmovingaverage"]
    assert ema.params == {"period": 20, "adjust": True}
    assert ema.parameter("adjust").flag  # type: ignore[union-attr]
    assert ema.parameter("period").bounds_text() == ">= 1 and <= 500"  # type: ignore[union-attr]
    assert INDICATOR_CATALOG["weightedmovingaverage"].params == {"period": 20}
    distance = INDICATOR_CATALOG["distancefromma"]
    assert distance.params == {"period": 20, "ma_type": "SMA"}
    assert distance.parameter("ma_type").choices == ("SMA", "EMA")  # type: ignore[union-attr]
    assert all(INDICATOR_CATALOG[n].uses_source for n in ("simplemovingaverage", "distancefromma"))


def test_strategy_computation_gives_the_raw_average_and_honours_adjust() -> None:
    bars = random_walk_bars(300, seed=5)
    close = bars["close"].to_numpy()
    sma = compute_outputs(IndicatorSpec(type="sma", params={"period": 10.0}), bars)
    assert list(sma) == ["sma"]
    assert_same_where_defined(sma["sma"], talib.SMA(close, 10), rtol=1e-12)
    spec = IndicatorSpec(type="ema", params={"period": 10.0, "adjust": False}, source="high")
    expected = bars["high"].ewm(span=10, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(compute_outputs(spec, bars)["ema"], expected, rtol=1e-12)
    distance = IndicatorSpec(type="distancefromma", params={"period": 10.0, "ma_type": "ema"})
    assert indicator_warmup(distance) > 10  # an EMA's start takes ~2.3 spans to fade
