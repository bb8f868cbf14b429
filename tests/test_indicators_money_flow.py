"""Chaikin money flow and the A/D line against pandas statements of KTRDR's formulas (TA-Lib's
``AD`` for the line), and their catalog entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    ad_line,
    cmf,
    compute_outputs,
    indicator_warmup,
)
from tests.indicator_checks import assert_same, assert_spelling_resolves, hlcv, spec

CMF_OUTPUTS = (
    "cmf",
    "mf_multiplier",
    "mf_volume",
    "momentum",
    "signal",
    "histogram",
    "above_zero",
    "below_zero",
)
AD_OUTPUTS = ("line", "mf_multiplier", "mf_volume", "roc_10", "momentum_21", "relative_strength")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(2000, seed=51)


def pandas_multiplier(bars: pd.DataFrame) -> pd.Series:
    high, low, close = bars["high"], bars["low"], bars["close"]
    span = high - low
    return (((close - low) - (high - close)) / span).where(span != 0, 0.0)


def pandas_cmf(bars: pd.DataFrame, period: int) -> dict[str, pd.Series]:
    multiplier = pandas_multiplier(bars)
    flow_volume = multiplier * bars["volume"]
    volume_sum = bars["volume"].rolling(period).sum()
    money_flow = flow_volume.rolling(period).sum() / volume_sum
    money_flow = money_flow.where(volume_sum != 0, 0.0)
    signal = money_flow.ewm(span=9, adjust=False).mean()
    missing = money_flow.isna()
    return {
        "cmf": money_flow,
        "mf_multiplier": multiplier,
        "mf_volume": flow_volume,
        "momentum": money_flow - money_flow.shift(5),
        "signal": signal,
        "histogram": money_flow - signal,
        "above_zero": (money_flow > 0).astype(float).mask(missing),
        "below_zero": (money_flow < 0).astype(float).mask(missing),
    }


@pytest.mark.parametrize("period", [2, 21, 500])
def test_cmf_and_its_companions_follow_ktrdrs_formulas(bars: pd.DataFrame, period: int) -> None:
    """``above_zero``/``below_zero`` stay NaN during the warm-up (KTRDR: False)."""
    ours = cmf(*hlcv(bars), period)
    expected = pandas_cmf(bars, period)
    assert len(ours) == len(CMF_OUTPUTS)
    for name, values in zip(CMF_OUTPUTS, ours, strict=True):
        assert_same(values, expected[name])


def pandas_ad_line(bars: pd.DataFrame) -> dict[str, pd.Series]:
    multiplier = pandas_multiplier(bars)
    flow_volume = multiplier * bars["volume"]
    line = flow_volume.cumsum()
    return {
        "line": line,
        "mf_multiplier": multiplier,
        "mf_volume": flow_volume,
        "roc_10": (line / line.shift(10) - 1) * 100,
        "momentum_21": line - line.shift(21),
        "relative_strength": (line / line.rolling(50, min_periods=20).mean() - 1) * 100,
    }


def test_ad_line_and_its_companions_follow_ktrdrs_formulas(bars: pd.DataFrame) -> None:
    ours = ad_line(*hlcv(bars))
    expected = pandas_ad_line(bars)
    for name, values in zip(AD_OUTPUTS, ours, strict=True):
        assert_same(values, expected[name], rtol=1e-8)
    assert_same(ours[0], talib.AD(*hlcv(bars)))


def test_ad_smoothing_parameters_change_nothing_as_in_ktrdr(bars: pd.DataFrame) -> None:
    plain = ad_line(*hlcv(bars))
    smoothed = ad_line(*hlcv(bars), use_sma_smoothing=True, smoothing_period=5)
    for a, b in zip(plain, smoothed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_bar_without_range_has_multiplier_0_and_no_volume_gives_cmf_0() -> None:
    price = np.full(40, 7.0)
    volume = np.zeros(40)
    with np.errstate(all="raise"):
        money_flow, multiplier, *_ = cmf(price, price, price, volume, 5)
        line, *_ = ad_line(price, price, price, volume)
    np.testing.assert_array_equal(multiplier, 0.0)
    np.testing.assert_array_equal(money_flow[4:], 0.0)
    np.testing.assert_array_equal(line, 0.0)


@pytest.mark.parametrize("length", [0, 1, 5])
def test_short_inputs_keep_their_shape(length: int) -> None:
    bars = generate_ohlcv(30, seed=2).iloc[:length]
    for values in (*cmf(*hlcv(bars), 21), *ad_line(*hlcv(bars))):
        assert values.shape == (length,)
    assert np.isnan(cmf(*hlcv(bars), 21)[0]).all()


# --- catalog entries -----------------------------------------------------------------------------


def test_entries_declare_ktrdr_outputs_and_parameters() -> None:
    money_flow, line = INDICATOR_CATALOG["cmf"], INDICATOR_CATALOG["adline"]
    assert money_flow.outputs == CMF_OUTPUTS
    assert money_flow.params == {"period": 21}
    assert money_flow.parameters[0].bounds_text() == ">= 2 and <= 500"
    assert line.outputs == AD_OUTPUTS
    assert line.params == {"use_sma_smoothing": False, "smoothing_period": 21}
    assert line.parameters[0].flag


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("CMF", "cmf"),
        ("chaikinmoneyflow", "cmf"),
        ("chaikin_money_flow", "cmf"),
        ("ADLine", "adline"),
        ("accumulationdistribution", "adline"),
        ("accumulation_distribution", "adline"),
    ],
)
def test_every_ktrdr_spelling_resolves(spelling: str, name: str) -> None:
    assert_spelling_resolves(spelling, name)


def test_compute_outputs_names_every_output(bars: pd.DataFrame) -> None:
    outputs = compute_outputs(spec("cmf"), bars)
    assert tuple(outputs) == CMF_OUTPUTS
    assert_same(outputs["signal"], pandas_cmf(bars, 21)["signal"])
    assert tuple(compute_outputs(spec("adline", use_sma_smoothing=True), bars)) == AD_OUTPUTS


def test_cmf_warmup_covers_every_output(bars: pd.DataFrame) -> None:
    late_start = 97
    warmup = indicator_warmup(spec("cmf"))
    full = compute_outputs(spec("cmf"), bars)
    late = compute_outputs(spec("cmf"), bars.iloc[late_start:])
    for output, values in full.items():
        settled_late = late[output][warmup:]
        assert np.isfinite(settled_late).all(), output
        span = np.nanmax(values) - np.nanmin(values)
        np.testing.assert_allclose(
            settled_late, values[late_start + warmup :], atol=0.01 * span, rtol=0
        )


def test_ad_line_changes_after_warmup_do_not_depend_on_the_start(bars: pd.DataFrame) -> None:
    """A running total: its level depends on where the data starts, its changes do not."""
    late_start = 97
    warmup = indicator_warmup(spec("adline"))
    full = compute_outputs(spec("adline"), bars)
    late = compute_outputs(spec("adline"), bars.iloc[late_start:])
    for output in ("line", "momentum_21"):
        np.testing.assert_allclose(
            np.diff(late[output][warmup:]), np.diff(full[output][late_start + warmup :]), rtol=1e-6
        )
    assert all(np.isfinite(values[warmup:]).all() for values in late.values())


def test_cmf_signal_steps_over_a_gap_as_pandas_does() -> None:
    bars = generate_ohlcv(400, seed=6)
    bars.iloc[200, bars.columns.get_loc("volume")] = np.nan
    ours = cmf(*hlcv(bars), 21)
    expected = pandas_cmf(bars, 21)
    for name in ("cmf", "signal", "histogram"):
        assert_same(ours[CMF_OUTPUTS.index(name)], expected[name])
    assert np.isfinite(ours[CMF_OUTPUTS.index("signal")][221:]).all()
