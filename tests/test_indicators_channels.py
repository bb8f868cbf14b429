"""Keltner Channels, Donchian Channels and Ichimoku against pandas statements of KTRDR's
formulas and TA-Lib's mid-prices (section 2.2 of the strategy-format facts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    compute_outputs,
    donchian_channels,
    ichimoku,
    indicator_warmup,
    keltner_channels,
)
from ktrdr_lib.strategy.spec import IndicatorSpec
from tests.indicator_checks import hlc
from tests.test_indicators import assert_same_where_defined, random_walk_bars


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(1500, seed=23)


@pytest.mark.parametrize(("period", "atr_period", "multiplier"), [(20, 10, 2.0), (2, 2, 0.5)])
def test_keltner_is_an_ewm_plus_minus_the_average_true_range(
    bars: pd.DataFrame, period: int, atr_period: int, multiplier: float
) -> None:
    previous = bars["close"].shift()
    true_range = pd.concat(
        [
            bars["high"] - bars["low"],
            (bars["high"] - previous).abs(),
            (bars["low"] - previous).abs(),
        ],
        axis=1,
    ).max(axis=1)
    middle = bars["close"].ewm(span=period, adjust=False).mean()
    half_width = multiplier * true_range.rolling(atr_period).mean()
    upper, ours_middle, lower = keltner_channels(*hlc(bars), period, atr_period, multiplier)
    np.testing.assert_allclose(ours_middle, middle.to_numpy(), rtol=1e-12)
    assert_same_where_defined(upper, (middle + half_width).to_numpy(), rtol=1e-12)
    assert_same_where_defined(lower, (middle - half_width).to_numpy(), rtol=1e-12)


def test_keltner_entry_names_its_columns() -> None:
    entry = INDICATOR_CATALOG.require("keltner_channels")
    assert entry.name == "keltnerchannels" and entry.outputs == ("upper", "middle", "lower")
    assert entry.params == {"period": 20, "atr_period": 10, "multiplier": 2.0}
    assert entry.technical_columns is not None
    assert entry.technical_columns(period=20, atr_period=10, multiplier=2.0) == {
        "KC_Middle_20": "middle",
        "KC_Upper_20_10_2.0": "upper",
        "KC_Lower_20_10_2.0": "lower",
        "KC_Upper_20_10_2": "upper",
        "KC_Lower_20_10_2": "lower",
    }


@pytest.mark.parametrize("period", [2, 20, 55])
def test_donchian_is_talibs_extremes_and_mid_price(bars: pd.DataFrame, period: int) -> None:
    high, low, _ = hlc(bars)
    upper, middle, lower = donchian_channels(high, low, period)
    assert_same_where_defined(upper, talib.MAX(high, period), rtol=0)
    assert_same_where_defined(lower, talib.MIN(low, period), rtol=0)
    assert_same_where_defined(middle, talib.MIDPRICE(high, low, period), rtol=1e-15)
    unchanged = donchian_channels(high, low, period, include_middle=False)
    for with_, without in zip(unchanged, (upper, middle, lower), strict=True):
        np.testing.assert_array_equal(with_, without)  # include_middle changes nothing


def test_ichimoku_lines_are_unshifted_mid_prices(bars: pd.DataFrame) -> None:
    high, low, close = hlc(bars)
    tenkan, kijun, senkou_a, senkou_b, chikou = ichimoku(high, low, close, 9, 26, 52, 26)
    assert_same_where_defined(tenkan, talib.MIDPRICE(high, low, 9), rtol=1e-15)
    assert_same_where_defined(kijun, talib.MIDPRICE(high, low, 26), rtol=1e-15)
    assert_same_where_defined(senkou_b, talib.MIDPRICE(high, low, 52), rtol=1e-15)
    expected_a = (talib.MIDPRICE(high, low, 9) + talib.MIDPRICE(high, low, 26)) / 2
    assert_same_where_defined(senkou_a, expected_a, rtol=1e-15)
    np.testing.assert_array_equal(chikou, close)
    shifted = ichimoku(high, low, close, 9, 26, 52, 5)  # displacement is accepted, never applied
    for line, same in zip(shifted, (tenkan, kijun, senkou_a, senkou_b, chikou), strict=True):
        np.testing.assert_array_equal(line, same)


def test_ichimoku_entry_reads_the_tables_short_keys() -> None:
    entry = INDICATOR_CATALOG["ichimoku"]
    assert entry.outputs == ("tenkan", "kijun", "senkou_a", "senkou_b", "chikou")
    assert entry.params == {
        "tenkan_period": 9,
        "kijun_period": 26,
        "senkou_b_period": 52,
        "displacement": 26,
    }
    assert entry.renamed_parameters["senkou_b"] == "senkou_b_period"


@pytest.mark.parametrize("name", ["keltnerchannels", "donchianchannels", "ichimoku"])
def test_every_output_settles_after_the_warmup(name: str) -> None:
    bars = random_walk_bars(1500, seed=24)
    entry = INDICATOR_CATALOG[name]
    spec = IndicatorSpec(type=name, params=dict(entry.params))
    offset, settled = 300, slice(indicator_warmup(spec), None)
    full, late = compute_outputs(spec, bars), compute_outputs(spec, bars.iloc[offset:])
    for output in entry.outputs:
        whole = full[output][offset:]
        value_range = np.nanmax(whole) - np.nanmin(whole)
        np.testing.assert_allclose(late[output][settled], whole[settled], atol=0.01 * value_range)
        assert np.isfinite(late[output][settled]).all()
