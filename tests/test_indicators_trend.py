"""MACD, ADX, Aroon, SuperTrend and the parabolic SAR against independent statements of KTRDR's
formulas (section 2.2 of the strategy-format facts): pandas for the vectorised ones, plain
Python loops for the two that carry a state from bar to bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    adx,
    aroon,
    compute_outputs,
    indicator_warmup,
    macd,
    parabolic_sar,
    supertrend,
)
from ktrdr_lib.strategy.spec import IndicatorSpec
from tests.indicator_checks import hlc
from tests.test_indicators import assert_same_where_defined, random_walk_bars


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(1500, seed=21)


def pandas_true_range(bars: pd.DataFrame) -> pd.Series:
    previous = bars["close"].shift()
    ranges = [bars["high"] - bars["low"], (bars["high"] - previous).abs()]
    ranges.append((bars["low"] - previous).abs())
    return pd.concat(ranges, axis=1).max(axis=1)  # the first bar: high - low


# --- MACD --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (1, 2, 1), (5, 35, 5)])
def test_macd_is_the_difference_of_pandas_ewms(
    bars: pd.DataFrame, fast: int, slow: int, signal: int
) -> None:
    close = bars["close"]
    line = close.ewm(span=fast, adjust=False).mean() - close.ewm(span=slow, adjust=False).mean()
    signal_line = line.ewm(span=signal, adjust=False).mean()
    ours = macd(close.to_numpy(), fast, slow, signal)
    for value, expected in zip(ours, (line, signal_line, line - signal_line), strict=True):
        np.testing.assert_allclose(value, expected.to_numpy(), rtol=1e-9, atol=1e-11)


def test_macd_needs_fast_below_slow() -> None:
    with pytest.raises(ConfigError, match="fast_period < slow_period"):
        macd(np.ones(50), 26, 26)


def test_macd_entry_renames_ktrdrs_short_keys_and_names_its_columns() -> None:
    entry = INDICATOR_CATALOG.require("MACDIndicator")
    assert entry.outputs == ("line", "signal", "histogram")
    assert entry.renamed_parameters == {
        "fast": "fast_period",
        "slow": "slow_period",
        "signal": "signal_period",
    }
    assert entry.technical_columns is not None
    assert entry.technical_columns(fast_period=12, slow_period=26, signal_period=9) == {
        "MACD_12_26": "line",
        "MACD_signal_12_26_9": "signal",
        "MACD_hist_12_26_9": "histogram",
    }


# --- ADX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx_is_ewm_smoothed_directional_movement(bars: pd.DataFrame, period: int) -> None:
    rise, fall = bars["high"].diff(), -bars["low"].diff()
    plus_dm = rise.where((rise > fall) & (rise > 0), 0.0)
    minus_dm = fall.where((fall > rise) & (fall > 0), 0.0)

    def smooth(values: pd.Series) -> pd.Series:
        return values.ewm(alpha=1 / period, adjust=False).mean()

    ranges = smooth(pandas_true_range(bars))
    plus_di, minus_di = 100 * smooth(plus_dm) / ranges, 100 * smooth(minus_dm) / ranges
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    expected = (smooth(dx.fillna(0.0)), plus_di, minus_di)  # DX 0 where both DIs are 0
    for ours, reference in zip(adx(*hlc(bars), period), expected, strict=True):
        np.testing.assert_allclose(ours, reference.to_numpy(), rtol=1e-9, atol=1e-9)


def test_adx_of_a_flat_market_is_zero() -> None:
    flat = np.full(100, 3.0)
    with np.errstate(all="raise"):
        for line in adx(flat, flat, flat, 14):
            np.testing.assert_array_equal(line, 0.0)


def test_adx_entry_names_its_columns_and_resolves_its_long_name() -> None:
    entry = INDICATOR_CATALOG.require("AverageDirectionalIndex")
    assert entry.name == "adx" and entry.outputs == ("adx", "plus_di", "minus_di")
    assert entry.parameter("period").bounds_text() == ">= 2 and <= 200"  # type: ignore[union-attr]
    assert entry.technical_columns is not None
    assert entry.technical_columns(period=14) == {
        "ADX_14": "adx",
        "DI_Plus_14": "plus_di",
        "DI_Minus_14": "minus_di",
    }


# --- Aroon -------------------------------------------------------------------------------------


def pandas_aroon(high: np.ndarray, low: np.ndarray, period: int) -> tuple[pd.Series, pd.Series]:
    """Bars since the first highest high / lowest low of the last ``period`` bars (argmax)."""
    since_high = (period - 1) - pd.Series(high).rolling(period).apply(np.argmax, raw=True)
    since_low = (period - 1) - pd.Series(low).rolling(period).apply(np.argmin, raw=True)
    return 100 * (period - since_high) / period, 100 * (period - since_low) / period


@pytest.mark.parametrize("period", [1, 2, 14, 25, 64])
def test_aroon_counts_bars_since_the_extremes_of_n_bars(bars: pd.DataFrame, period: int) -> None:
    high, low, _ = hlc(bars)
    up, down = pandas_aroon(high, low, period)
    ours = aroon(high, low, period)
    for value, expected in zip(ours, (up, down, up - down), strict=True):
        assert_same_where_defined(value, expected.to_numpy(), rtol=1e-12)


def test_aroon_picks_the_first_of_equal_extremes_and_skips_gap_windows(bars: pd.DataFrame) -> None:
    high, low, _ = hlc(bars)
    high, low = np.round(high), np.round(low)  # many ties
    high[700] = np.nan
    up, down = pandas_aroon(high, low, 14)
    ours_up, ours_down, _ = aroon(high, low, 14)
    assert_same_where_defined(ours_up, up.to_numpy(), rtol=1e-12)
    assert_same_where_defined(ours_down, down.to_numpy(), rtol=1e-12)
    assert np.isnan(ours_up[700:714]).all() and np.isfinite(ours_up[714:]).all()


def test_aroon_include_oscillator_changes_nothing(bars: pd.DataFrame) -> None:
    high, low, _ = hlc(bars)
    for with_, without in zip(aroon(high, low, 14, True), aroon(high, low, 14), strict=True):
        np.testing.assert_array_equal(with_, without)
    entry = INDICATOR_CATALOG["aroon"]
    assert entry.params == {"period": 14, "include_oscillator": False}
    assert entry.technical_columns is not None
    assert entry.technical_columns(period=25, include_oscillator=False) == {
        "Aroon_25_Up": "up",
        "Aroon_25_Down": "down",
        "Aroon_25_Oscillator": "oscillator",
    }


# --- SuperTrend --------------------------------------------------------------------------------


def loop_supertrend(bars: pd.DataFrame, period: int, multiplier: float) -> tuple[list, list]:
    """The usual carried bands, written as a plain loop from the first bar with an ATR."""
    high, low, close = hlc(bars)
    atr = pandas_true_range(bars).rolling(period).mean().to_numpy()
    trend, direction = [np.nan] * len(close), [np.nan] * len(close)
    upper = lower = np.nan
    up = True
    for i in range(period - 1, len(close)):
        basic_upper = (high[i] + low[i]) / 2 + multiplier * atr[i]
        basic_lower = (high[i] + low[i]) / 2 - multiplier * atr[i]
        if i == period - 1:
            upper, lower = basic_upper, basic_lower
            up = close[i] > lower
        else:
            if basic_upper < upper or close[i - 1] > upper:
                upper = basic_upper
            if basic_lower > lower or close[i - 1] < lower:
                lower = basic_lower
            up = close[i] > lower if up else close[i] >= upper
        trend[i], direction[i] = (lower, 1.0) if up else (upper, -1.0)
    return trend, direction


@pytest.mark.parametrize(("period", "multiplier"), [(10, 3.0), (2, 1.0), (50, 0.5)])
def test_supertrend_carries_its_bands_as_the_plain_loop_does(
    bars: pd.DataFrame, period: int, multiplier: float
) -> None:
    trend, direction = supertrend(*hlc(bars), period, multiplier)
    expected_trend, expected_direction = loop_supertrend(bars, period, multiplier)
    assert_same_where_defined(trend, np.array(expected_trend), rtol=1e-12)
    np.testing.assert_array_equal(direction, np.array(expected_direction))
    assert set(direction[period - 1 :]) == {-1.0, 1.0}


def test_supertrend_entry_names_its_columns() -> None:
    entry = INDICATOR_CATALOG.require("SuperTrend")
    assert entry.params == {"period": 10, "multiplier": 3.0}
    assert entry.outputs == ("trend", "direction")
    assert entry.technical_columns is not None
    assert entry.technical_columns(period=10, multiplier=3.0) == {
        "SuperTrend_10_3": "trend",
        "ST_Direction_10_3": "direction",
        "SuperTrend_10_3.0": "trend",
        "ST_Direction_10_3.0": "direction",
    }


# --- parabolic SAR -----------------------------------------------------------------------------


def loop_sar(bars: pd.DataFrame, initial: float, step: float, most: float) -> list[float]:
    """KTRDR's order of steps: penetration of the new SAR first, then the two-bar clamp."""
    high, low, close = hlc(bars)
    sar = [np.nan] * len(close)
    rising = close[1] > close[0]
    extreme, sar[1] = (high[1], low[0]) if rising else (low[1], high[0])
    af = initial
    for i in range(2, len(close)):
        value = sar[i - 1] + af * (extreme - sar[i - 1])
        if rising and low[i] <= value:
            rising, value, af, extreme = False, extreme, initial, low[i]
        elif not rising and high[i] >= value:
            rising, value, af, extreme = True, extreme, initial, high[i]
        elif rising:
            value = min(value, low[i - 1], low[i - 2])
            if high[i] > extreme:
                extreme, af = high[i], min(af + step, most)
        else:
            value = max(value, high[i - 1], high[i - 2])
            if low[i] < extreme:
                extreme, af = low[i], min(af + step, most)
        sar[i] = value
    return sar


@pytest.mark.parametrize("factors", [(0.02, 0.02, 0.2), (0.01, 0.005, 0.1), (0.1, 0.1, 0.5)])
def test_parabolic_sar_follows_the_plain_loop(
    bars: pd.DataFrame, factors: tuple[float, float, float]
) -> None:
    ours = parabolic_sar(*hlc(bars), *factors)
    assert_same_where_defined(ours, np.array(loop_sar(bars, *factors)), rtol=1e-12)


def test_parabolic_sar_short_inputs_and_bad_factors() -> None:
    assert np.isnan(parabolic_sar([1.0], [0.5], [0.7])).all()
    assert parabolic_sar([], [], []).shape == (0,)
    with pytest.raises(ConfigError, match="step_af"):
        parabolic_sar(np.ones(5), np.ones(5), np.ones(5), 0.02, 0.0)


# --- through the catalog -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["macd", "adx", "aroon", "supertrend", "parabolicsar"])
def test_every_output_settles_after_the_warmup(name: str) -> None:
    """Past ``indicator_warmup``, a later start moves no output by 1 % of its range."""
    bars = random_walk_bars(2500, seed=22)
    entry = INDICATOR_CATALOG[name]
    spec = IndicatorSpec(type=name, params=dict(entry.params))
    offset, settled = 400, slice(indicator_warmup(spec), None)
    full = compute_outputs(spec, bars)
    late = compute_outputs(spec, bars.iloc[offset:])
    for output in entry.outputs:
        whole, later = full[output][offset:], late[output]
        value_range = np.nanmax(whole) - np.nanmin(whole)
        np.testing.assert_allclose(later[settled], whole[settled], atol=0.01 * value_range)


def test_psar_resolves_and_parameters_are_ktrdrs() -> None:
    entry = INDICATOR_CATALOG.require("psar")
    assert entry.name == "parabolicsar" and entry.outputs == ("sar",)
    assert entry.params == {"initial_af": 0.02, "step_af": 0.02, "max_af": 0.2}
