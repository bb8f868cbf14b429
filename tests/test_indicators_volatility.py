"""The volatility indicators against pandas statements of KTRDR's formulas (section 2.2 of the
strategy-format facts; none of them is TA-Lib's), and their catalog entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    atr,
    bollinger_band_width,
    bollinger_bands,
    compute_indicator,
    compute_outputs,
    indicator_warmup,
    squeeze_intensity,
)
from ktrdr_lib.strategy.spec import IndicatorSpec
from tests.indicator_checks import assert_same, assert_spelling_resolves, hlc, spec


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(2000, seed=31)


def pandas_true_range(bars: pd.DataFrame) -> pd.Series:
    previous = bars["close"].shift(1)
    ranges = pd.concat(
        [
            bars["high"] - bars["low"],
            (bars["high"] - previous).abs(),
            (bars["low"] - previous).abs(),
        ],
        axis=1,
    ).max(axis=1)
    ranges.iloc[0] = bars["high"].iloc[0] - bars["low"].iloc[0]
    return ranges


def pandas_bands(price: pd.Series, period: int, multiplier: float) -> tuple[pd.Series, ...]:
    middle = price.rolling(period).mean()
    deviation = price.rolling(period).std()  # ddof=1
    return middle + multiplier * deviation, middle, middle - multiplier * deviation


# --- formulas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 14, 100])
def test_atr_is_the_simple_average_of_the_true_range(bars: pd.DataFrame, period: int) -> None:
    """KTRDR's ATR: SMA of TR with TR0 = high - low (ours was TA-Lib's Wilder ATR before)."""
    assert_same(atr(*hlc(bars), period), pandas_true_range(bars).rolling(period).mean())


def test_atr_is_not_talibs_wilder_atr(bars: pd.DataFrame) -> None:
    ours, wilder = atr(*hlc(bars), 14), talib.ATR(*hlc(bars), 14)
    assert not np.allclose(ours[100:], wilder[100:], rtol=1e-3)


@pytest.mark.parametrize(("period", "multiplier"), [(20, 2.0), (2, 0.5), (200, 10.0)])
def test_bollinger_bands_use_the_sample_standard_deviation(
    bars: pd.DataFrame, period: int, multiplier: float
) -> None:
    close = bars["close"]
    for ours, expected in zip(
        bollinger_bands(close, period, multiplier),
        pandas_bands(close, period, multiplier),
        strict=True,
    ):
        assert_same(ours, expected)


def test_bollinger_bands_are_talib_bands_widened_to_ddof_1(bars: pd.DataFrame) -> None:
    close = bars["close"].to_numpy()
    ddof_1 = 2.0 * np.sqrt(20 / 19)
    upper, middle, lower = talib.BBANDS(close, 20, ddof_1, ddof_1)
    for ours, expected in zip(bollinger_bands(close, 20, 2.0), (upper, middle, lower), strict=True):
        assert_same(ours, expected)


@pytest.mark.parametrize(("period", "multiplier"), [(20, 2.0), (5, 1.0)])
def test_band_width_is_the_band_spread_over_the_middle(
    bars: pd.DataFrame, period: int, multiplier: float
) -> None:
    upper, middle, lower = pandas_bands(bars["close"], period, multiplier)
    ours = bollinger_band_width(bars["close"], period, multiplier)
    assert_same(ours, (upper - lower) / middle)


def pandas_squeeze(
    bars: pd.DataFrame, bb_period: int, bb_multiplier: float, kc_period: int, kc_multiplier: float
) -> pd.Series:
    bb_upper, _, bb_lower = pandas_bands(bars["close"], bb_period, bb_multiplier)
    kc_middle = bars["close"].ewm(span=kc_period, adjust=False).mean()
    kc_half = kc_multiplier * pandas_true_range(bars).rolling(10).mean()
    kc_upper, kc_lower = kc_middle + kc_half, kc_middle - kc_half
    width = kc_upper - kc_lower
    gap = np.minimum((kc_upper - bb_upper) / width, (bb_lower - kc_lower) / width)
    return np.maximum(gap, 0.0)


@pytest.mark.parametrize(
    ("bb_period", "bb_multiplier", "kc_period", "kc_multiplier"),
    [(20, 2.0, 20, 2.0), (10, 1.0, 30, 3.0), (20, 2.0, 20, 1.0)],
)
def test_squeeze_intensity_compares_the_bands_with_a_keltner_channel(
    bars: pd.DataFrame, bb_period: int, bb_multiplier: float, kc_period: int, kc_multiplier: float
) -> None:
    ours = squeeze_intensity(
        bars["close"], *hlc(bars), bb_period, bb_multiplier, kc_period, kc_multiplier
    )
    expected = pandas_squeeze(bars, bb_period, bb_multiplier, kc_period, kc_multiplier)
    assert_same(ours, expected)
    assert (ours[bb_period:] >= 0).all() and (ours[bb_period:] <= 1).all()
    assert 0 < np.mean(ours[bb_period:] > 0) < 1  # both states occur


def test_squeeze_bands_follow_the_source_but_the_channel_follows_the_close(
    bars: pd.DataFrame,
) -> None:
    on_high = compute_indicator(
        IndicatorSpec(
            type="squeezeintensity",
            source="high",
            params={"bb_period": 20, "bb_multiplier": 2.0, "kc_period": 20, "kc_multiplier": 2.0},
        ),
        bars,
    )
    shifted = bars.assign(close=bars["high"])
    bands_on_high = pandas_squeeze(shifted, 20, 2.0, 20, 2.0)
    assert not np.allclose(on_high[30:], bands_on_high.to_numpy()[30:])
    expected = squeeze_intensity(bars["high"], *hlc(bars), 20, 2.0, 20, 2.0)
    assert_same(on_high, expected, rtol=0)


# --- flat markets and short inputs ----------------------------------------------------------


def flat_bars(n: int) -> pd.DataFrame:
    price = np.full(n, 42.5)
    return pd.DataFrame({"open": price, "high": price, "low": price, "close": price})


def test_flat_bars_give_zero_width_and_no_squeeze() -> None:
    bars = flat_bars(100)
    with np.errstate(all="raise"):
        true_range = atr(*hlc(bars), 14)
        upper, middle, lower = bollinger_bands(bars["close"], 20, 2.0)
        width = bollinger_band_width(bars["close"], 20, 2.0)
        squeeze = squeeze_intensity(bars["close"], *hlc(bars))
    np.testing.assert_array_equal(true_range[13:], 0.0)
    for band in (upper, middle, lower):
        np.testing.assert_array_equal(band[19:], 42.5)
    np.testing.assert_array_equal(width[19:], 0.0)
    np.testing.assert_array_equal(squeeze[19:], 0.0)


def test_band_width_is_zero_on_a_zero_middle_band() -> None:
    prices = np.array([1.0, -1.0] * 10)
    width = bollinger_band_width(prices, 2, 2.0)
    np.testing.assert_array_equal(width[1:], 0.0)


@pytest.mark.parametrize("length", [0, 1, 5])
def test_inputs_shorter_than_the_window_are_nan(length: int) -> None:
    bars = generate_ohlcv(30, seed=2).iloc[:length]
    arrays = (
        atr(*hlc(bars), 14)[1:],
        *bollinger_bands(bars["close"], 20, 2.0),
        bollinger_band_width(bars["close"], 20, 2.0),
        squeeze_intensity(bars["close"], *hlc(bars)),
    )
    for values in arrays:
        assert np.isnan(values).all()


# --- catalog entries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outputs", "params"),
    [
        ("atr", ("atr",), {"period": 14}),
        ("bollingerbands", ("upper", "middle", "lower"), {"period": 20, "multiplier": 2.0}),
        ("bollingerbandwidth", ("bollingerbandwidth",), {"period": 20, "multiplier": 2.0}),
        (
            "squeezeintensity",
            ("squeezeintensity",),
            {"bb_period": 20, "bb_multiplier": 2.0, "kc_period": 20, "kc_multiplier": 2.0},
        ),
    ],
)
def test_entries_declare_ktrdr_outputs_and_defaults(
    name: str, outputs: tuple[str, ...], params: dict[str, float]
) -> None:
    entry = INDICATOR_CATALOG[name]
    assert entry.outputs == outputs
    assert entry.params == params


def test_ranges_are_ktrdrs() -> None:
    period = INDICATOR_CATALOG["atr"].parameter("period")
    assert period is not None and period.bounds_text() == ">= 1 and <= 100"
    bands = INDICATOR_CATALOG["bollingerbands"]
    assert [p.bounds_text() for p in bands.parameters] == [">= 2 and <= 200", "> 0 and <= 10"]
    squeeze = INDICATOR_CATALOG["squeezeintensity"]
    assert squeeze.parameter("bb_multiplier").bounds_text() == "> 0 and <= 5"  # type: ignore[union-attr]
    assert squeeze.parameter("kc_multiplier").bounds_text() == "> 0 and <= 5"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("bbands", "bollingerbands"),
        ("BollingerBands", "bollingerbands"),
        ("bollinger_bands", "bollingerbands"),
        ("BollingerBandWidth", "bollingerbandwidth"),
        ("bbwidth", "bollingerbandwidth"),
        ("bb_width", "bollingerbandwidth"),
        ("bollinger_band_width", "bollingerbandwidth"),
        ("squeeze_intensity", "squeezeintensity"),
        ("ATRIndicator", "atr"),
    ],
)
def test_every_ktrdr_spelling_resolves(spelling: str, name: str) -> None:
    assert_spelling_resolves(spelling, name)


@pytest.mark.parametrize("name", ["bollingerbands", "bollingerbandwidth"])
def test_std_dev_is_read_as_the_multiplier(name: str) -> None:
    assert INDICATOR_CATALOG[name].renamed_parameters == {"std_dev": "multiplier"}


def test_band_technical_columns_are_late_v2_names() -> None:
    columns = INDICATOR_CATALOG["bollingerbands"].technical_columns
    assert columns is not None
    assert columns(period=20, multiplier=2.0) == {
        "upper_20_2.0": "upper",
        "middle_20_2.0": "middle",
        "lower_20_2.0": "lower",
        "upper_20_2": "upper",
        "middle_20_2": "middle",
        "lower_20_2": "lower",
    }
    assert set(columns(period=10, multiplier=1.5)) == {
        "upper_10_1.5",
        "middle_10_1.5",
        "lower_10_1.5",
    }


def test_compute_outputs_gives_the_three_bands_upper_first(bars: pd.DataFrame) -> None:
    outputs = compute_outputs(spec("bbands", multiplier=1.5), bars)
    assert list(outputs) == ["upper", "middle", "lower"]
    assert_same(compute_indicator(spec("bbands", multiplier=1.5), bars), outputs["upper"], rtol=0)
    assert_same(outputs["lower"], pandas_bands(bars["close"], 20, 1.5)[2])


@pytest.mark.parametrize(
    "name", ["atr", "bollingerbands", "bollingerbandwidth", "squeezeintensity"]
)
def test_warmup_covers_every_output(bars: pd.DataFrame, name: str) -> None:
    """Past the warm-up, every output is finite and no longer depends on where data starts."""
    late_start = 97
    warmup = indicator_warmup(spec(name))
    full = compute_outputs(spec(name), bars)
    late = compute_outputs(spec(name), bars.iloc[late_start:])
    for output, values in full.items():
        settled_late = late[output][warmup:]
        assert np.isfinite(settled_late).all(), output
        span = np.nanmax(values) - np.nanmin(values)
        np.testing.assert_allclose(
            settled_late, values[late_start + warmup :], atol=0.01 * span, rtol=0
        )
