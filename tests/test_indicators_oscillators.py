"""The oscillators against TA-Lib where KTRDR equals it, else against pandas statements of
KTRDR's formulas (section 2.2 of the strategy-format facts); their catalog entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    cci,
    compute_outputs,
    fisher_transform,
    indicator_warmup,
    momentum,
    roc,
    rsi,
    rvi,
    stochastic,
    williams_r,
)
from tests.indicator_checks import assert_same, assert_spelling_resolves, hlc, spec


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(2000, seed=21)


# --- TA-Lib where KTRDR equals it --------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14, 100])
def test_rsi_is_talib_rsi(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same(rsi(close, period), talib.RSI(close, period))


@pytest.mark.parametrize("period", [1, 10, 100])
def test_roc_and_momentum_are_talib(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same(roc(close, period), talib.ROC(close, period))
    assert_same(momentum(close, period), talib.MOM(close, period))


@pytest.mark.parametrize("period", [2, 20, 100])
def test_cci_is_talib_cci(bars: pd.DataFrame, period: int) -> None:
    assert_same(cci(*hlc(bars), period), talib.CCI(*hlc(bars), period), rtol=1e-7)


@pytest.mark.parametrize(
    ("k_period", "d_period", "smooth_k"), [(14, 3, 3), (5, 1, 1), (1, 20, 20), (100, 4, 2)]
)
def test_stochastic_is_talib_slow_stochastic_once_its_windows_are_full(
    bars: pd.DataFrame, k_period: int, d_period: int, smooth_k: int
) -> None:
    k, d = stochastic(*hlc(bars), k_period, d_period, smooth_k)
    slow_k, slow_d = talib.STOCH(*hlc(bars), k_period, smooth_k, 0, d_period, 0)
    full = k_period + smooth_k + d_period - 3
    assert np.isnan(slow_d[:full]).all() and not np.isnan(slow_d[full:]).any()
    np.testing.assert_allclose(k[full:], slow_k[full:], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d[full:], slow_d[full:], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("period", [2, 14, 100])  # TA-Lib takes no period 1
def test_williams_r_is_talib_willr_once_its_window_is_full(bars: pd.DataFrame, period: int) -> None:
    ours = williams_r(*hlc(bars), period)
    np.testing.assert_allclose(ours[period - 1 :], talib.WILLR(*hlc(bars), period)[period - 1 :])


# --- pandas statements of KTRDR's formulas -------------------------------------------------------


def pandas_stochastic(
    bars: pd.DataFrame, k_period: int, d_period: int, smooth_k: int
) -> tuple[pd.Series, pd.Series]:
    highest = bars["high"].rolling(k_period).max()
    lowest = bars["low"].rolling(k_period).min()
    raw = (100 * (bars["close"] - lowest) / (highest - lowest)).fillna(50.0)
    k = raw.rolling(smooth_k, min_periods=1).mean()
    return k, k.rolling(d_period, min_periods=1).mean()


@pytest.mark.parametrize(("k_period", "d_period", "smooth_k"), [(14, 3, 3), (5, 2, 1), (30, 7, 5)])
def test_stochastic_fills_its_raw_gaps_with_50_and_averages_partial_windows(
    bars: pd.DataFrame, k_period: int, d_period: int, smooth_k: int
) -> None:
    """KTRDR fills the raw %K's NaN (warm-up included) with 50: nothing is NaN."""
    k, d = stochastic(*hlc(bars), k_period, d_period, smooth_k)
    expected_k, expected_d = pandas_stochastic(bars, k_period, d_period, smooth_k)
    assert_same(k, expected_k)
    assert_same(d, expected_d)
    assert k[0] == 50.0


def test_williams_r_fills_its_warmup_with_minus_50(bars: pd.DataFrame) -> None:
    high, low, close = hlc(bars)
    highest = bars["high"].rolling(14).max()
    expected = (
        -100 * (highest - bars["close"]) / (highest - bars["low"].rolling(14).min())
    ).fillna(-50.0)
    assert_same(williams_r(high, low, close, 14), expected)


def pandas_fisher(bars: pd.DataFrame, period: int, smoothing: int) -> tuple[pd.Series, pd.Series]:
    middle = (bars["high"] + bars["low"]) / 2
    highest = bars["high"].rolling(period).max()
    lowest = bars["low"].rolling(period).min()
    position = (2 * (middle - lowest) / (highest - lowest) - 1).clip(-0.999, 0.999)
    raw = 0.5 * np.log((1 + position) / (1 - position))
    fisher = raw.ewm(span=smoothing, adjust=False).mean()
    return fisher, fisher.shift(1)


@pytest.mark.parametrize(("period", "smoothing"), [(10, 3), (2, 1), (100, 20)])
def test_fisher_transform_is_the_smoothed_transform_of_the_mid_point(
    bars: pd.DataFrame, period: int, smoothing: int
) -> None:
    fisher, signal = fisher_transform(bars["high"], bars["low"], period, smoothing)
    expected_fisher, expected_signal = pandas_fisher(bars, period, smoothing)
    assert_same(fisher, expected_fisher)
    assert_same(signal, expected_signal)


def pandas_rvi(bars: pd.DataFrame, period: int, signal_period: int) -> tuple[pd.Series, pd.Series]:
    def weighted(x: pd.Series) -> pd.Series:
        return (x.shift(3) + 2 * x.shift(2) + 2 * x.shift(1) + x) / 6

    numerator = weighted(bars["close"] - bars["open"]).rolling(period).mean()
    denominator = weighted(bars["high"] - bars["low"]).rolling(period).mean()
    ratio = numerator / denominator
    return ratio, ratio.rolling(signal_period).mean()


@pytest.mark.parametrize(("period", "signal_period"), [(10, 4), (4, 1), (100, 50)])
def test_rvi_is_the_ratio_of_the_averaged_weighted_moves(
    bars: pd.DataFrame, period: int, signal_period: int
) -> None:
    ours = rvi(bars["open"], *hlc(bars), period, signal_period)
    expected = pandas_rvi(bars, period, signal_period)
    assert_same(ours[0], expected[0])
    assert_same(ours[1], expected[1])


# --- flat markets, gaps, short inputs -----------------------------------------------------------


def flat_bars(n: int) -> pd.DataFrame:
    price = np.full(n, 42.5)
    return pd.DataFrame({"open": price, "high": price, "low": price, "close": price})


def test_flat_bars_give_neutral_values_not_nan() -> None:
    bars = flat_bars(120)
    with np.errstate(all="raise"):
        k, d = stochastic(*hlc(bars))
        fisher, signal = fisher_transform(bars["high"], bars["low"])
        vigour, vigour_signal = rvi(bars["open"], *hlc(bars))
        percent_r = williams_r(*hlc(bars))
    np.testing.assert_array_equal(k, 50.0)
    np.testing.assert_array_equal(d, 50.0)
    np.testing.assert_array_equal(percent_r, -50.0)
    np.testing.assert_array_equal(fisher[9:], 0.0)
    np.testing.assert_array_equal(signal[10:], 0.0)
    np.testing.assert_array_equal(vigour[12:], 0.0)
    np.testing.assert_array_equal(vigour_signal[15:], 0.0)


@pytest.mark.parametrize("length", [0, 1, 3, 5])
def test_inputs_shorter_than_a_window_are_nan_or_neutral(length: int) -> None:
    bars = generate_ohlcv(50, seed=2).iloc[:length]
    fisher, signal = fisher_transform(bars["high"], bars["low"], 10, 3)
    vigour, vigour_signal = rvi(bars["open"], *hlc(bars), 10, 4)
    for values in (fisher, signal, vigour, vigour_signal):
        assert values.shape == (length,)
        assert np.isnan(values).all()
    k, d = stochastic(*hlc(bars))
    np.testing.assert_array_equal(k, 50.0)
    np.testing.assert_array_equal(d, 50.0)


def test_stochastic_and_williams_r_treat_a_gap_as_undefined() -> None:
    bars = generate_ohlcv(300, seed=4)
    high, low, close = (column.copy() for column in hlc(bars))
    high[150] = np.nan
    k, _ = stochastic(high, low, close, 14, 3, 1)
    np.testing.assert_array_equal(k[150:164], 50.0)
    assert np.isfinite(k).all()
    percent_r = williams_r(high, low, close, 14)
    np.testing.assert_array_equal(percent_r[150:164], -50.0)


# --- catalog entries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outputs", "params"),
    [
        ("rsi", ("rsi",), {"period": 14}),
        ("stochastic", ("k", "d"), {"k_period": 14, "d_period": 3, "smooth_k": 3}),
        ("williamsr", ("williamsr",), {"period": 14}),
        ("roc", ("roc",), {"period": 10}),
        ("momentum", ("momentum",), {"period": 10}),
        ("cci", ("cci",), {"period": 20}),
        ("fishertransform", ("fisher", "signal"), {"period": 10, "smoothing": 3}),
        ("rvi", ("rvi", "signal"), {"period": 10, "signal_period": 4}),
    ],
)
def test_entries_declare_ktrdr_outputs_and_defaults(
    name: str, outputs: tuple[str, ...], params: dict[str, int]
) -> None:
    entry = INDICATOR_CATALOG[name]
    assert entry.outputs == outputs
    assert entry.params == params


@pytest.mark.parametrize(
    ("parameter", "low", "high"),
    [
        (("rsi", "period"), 2, 100),
        (("stochastic", "k_period"), 1, 100),
        (("stochastic", "d_period"), 1, 20),
        (("stochastic", "smooth_k"), 1, 20),
        (("williamsr", "period"), 1, 100),
        (("roc", "period"), 1, 100),
        (("momentum", "period"), 1, 100),
        (("cci", "period"), 2, 100),
        (("fishertransform", "period"), 2, 100),
        (("fishertransform", "smoothing"), 1, 20),
        (("rvi", "period"), 4, 100),
        (("rvi", "signal_period"), 1, 50),
    ],
)
def test_parameter_ranges_are_ktrdrs(parameter: tuple[str, str], low: int, high: int) -> None:
    declared = INDICATOR_CATALOG[parameter[0]].parameter(parameter[1])
    assert declared is not None
    assert declared.admits(low) and declared.admits(high)
    assert not declared.admits(low - 1) and not declared.admits(high + 1)


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("stoch", "stochastic"),
        ("Stochastic", "stochastic"),
        ("williams_r", "williamsr"),
        ("WilliamsR", "williamsr"),
        ("RSIIndicator", "rsi"),
        ("FisherTransform", "fishertransform"),
        ("RVI", "rvi"),
        ("CCI", "cci"),
    ],
)
def test_every_ktrdr_spelling_resolves(spelling: str, name: str) -> None:
    assert_spelling_resolves(spelling, name)


def test_technical_columns_name_the_outputs_as_late_v2_did() -> None:
    stoch, vigour = INDICATOR_CATALOG["stochastic"], INDICATOR_CATALOG["rvi"]
    assert stoch.technical_columns is not None and vigour.technical_columns is not None
    assert stoch.technical_columns(k_period=14, d_period=3, smooth_k=3) == {
        "Stochastic_K_14_3": "k",
        "Stochastic_D_14_3_3": "d",
    }
    assert vigour.technical_columns(period=10, signal_period=4) == {
        "RVI_10_4_RVI": "rvi",
        "RVI_10_4_Signal": "signal",
    }


def test_compute_outputs_gives_every_output_and_rvi_reads_open(bars: pd.DataFrame) -> None:
    outputs = compute_outputs(spec("rvi"), bars)
    assert list(outputs) == ["rvi", "signal"]
    expected = pandas_rvi(bars, 10, 4)
    assert_same(outputs["signal"], expected[1])
    with pytest.raises(Exception, match="'open'"):
        compute_outputs(spec("rvi"), bars.drop(columns="open"))


@pytest.mark.parametrize("name", ["stochastic", "fishertransform", "rvi"])
def test_warmup_covers_every_output(bars: pd.DataFrame, name: str) -> None:
    """Past the warm-up, every output is finite and no longer depends on where data starts."""
    late_start = 97
    warmup = indicator_warmup(spec(name))
    full = compute_outputs(spec(name), bars)
    late = compute_outputs(spec(name), bars.iloc[late_start:])
    for output, values in full.items():
        settled_full = values[late_start + warmup :]
        settled_late = late[output][warmup:]
        assert np.isfinite(settled_late).all(), output
        span = np.nanmax(values) - np.nanmin(values)
        np.testing.assert_allclose(settled_late, settled_full, atol=0.01 * span, rtol=0)


def test_fisher_transform_steps_over_a_gap_as_pandas_does() -> None:
    bars = generate_ohlcv(400, seed=6)
    bars.iloc[200, bars.columns.get_loc("high")] = np.nan
    fisher, signal = fisher_transform(bars["high"], bars["low"], 10, 3)
    expected_fisher, expected_signal = pandas_fisher(bars, 10, 3)
    assert_same(fisher, expected_fisher)
    assert_same(signal, expected_signal)
    assert np.isfinite(fisher[220:]).all()
