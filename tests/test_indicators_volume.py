"""The volume indicators (OBV, MFI, VWAP, volume ratio) against TA-Lib where KTRDR equals it,
else against pandas statements of KTRDR's formulas; their catalog entries and the error when
the data has no volume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.errors import DataError
from ktrdr_lib.features.indicators import (
    INDICATOR_CATALOG,
    compute_indicator,
    compute_outputs,
    indicator_warmup,
    mfi,
    obv,
    volume_ratio,
    vwap,
)
from tests.indicator_checks import assert_same, assert_spelling_resolves, hlcv, spec

VOLUME_INDICATORS = ["obv", "mfi", "cmf", "adline", "vwap", "volumeratio"]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(2000, seed=41)


def test_obv_starts_at_zero_and_is_talibs_obv_less_the_first_volume(bars: pd.DataFrame) -> None:
    """KTRDR's OBV starts at 0; TA-Lib's (and ours before) at the first bar's volume."""
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    ours = obv(close, volume)
    assert ours[0] == 0.0
    assert_same(ours, talib.OBV(close, volume) - volume[0])


@pytest.mark.parametrize("period", [2, 14, 100])  # TA-Lib takes no period 1
def test_mfi_is_talib_mfi(bars: pd.DataFrame, period: int) -> None:
    assert_same(mfi(*hlcv(bars), period), talib.MFI(*hlcv(bars), period))


def test_mfi_is_100_without_falls_0_without_rises_and_50_without_flows() -> None:
    rising = np.linspace(10.0, 20.0, 30)
    volume = np.full(30, 1000.0)
    np.testing.assert_array_equal(mfi(rising, rising, rising, volume, 5)[5:], 100.0)
    np.testing.assert_array_equal(mfi(rising[::-1], rising[::-1], rising[::-1], volume, 5)[5:], 0.0)
    flat = np.full(30, 3.0)
    np.testing.assert_array_equal(mfi(flat, flat, flat, volume, 5)[5:], 50.0)


def pandas_vwap(bars: pd.DataFrame, period: int, use_typical_price: bool) -> pd.Series:
    price = (bars["high"] + bars["low"] + bars["close"]) / 3 if use_typical_price else bars["close"]
    weighted, volume = price * bars["volume"], bars["volume"]
    if period == 0:
        return weighted.cumsum() / volume.cumsum()
    return (
        weighted.rolling(period, min_periods=1).sum() / volume.rolling(period, min_periods=1).sum()
    )


@pytest.mark.parametrize(("period", "typical"), [(20, True), (20, False), (0, True), (1, True)])
def test_vwap_weights_prices_by_volume_over_partial_windows_at_the_start(
    bars: pd.DataFrame, period: int, typical: bool
) -> None:
    ours = vwap(*hlcv(bars), period, typical)
    assert_same(ours, pandas_vwap(bars, period, typical))


def test_vwap_is_nan_where_no_volume_traded(bars: pd.DataFrame) -> None:
    high, low, close, volume = (column.copy() for column in hlcv(bars))
    volume[100:110] = 0.0
    ours = vwap(high, low, close, volume, 5, True)
    assert np.isnan(ours[104:110]).all()
    assert np.isfinite(ours[:104]).all() and np.isfinite(ours[110:]).all()


@pytest.mark.parametrize("period", [2, 20, 100])
def test_volume_ratio_divides_volume_by_its_average(bars: pd.DataFrame, period: int) -> None:
    volume = bars["volume"]
    assert_same(volume_ratio(volume, period), volume / volume.rolling(period).mean())


def test_volume_ratio_is_1_where_the_average_volume_is_zero() -> None:
    volume = np.array([0.0] * 10 + [5.0, 5.0])
    np.testing.assert_array_equal(volume_ratio(volume, 3)[2:10], 1.0)
    assert np.isnan(volume_ratio(volume, 3)[:2]).all()


# --- catalog entries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("obv", {}),
        ("mfi", {"period": 14}),
        ("vwap", {"period": 20, "use_typical_price": True}),
        ("volumeratio", {"period": 20}),
    ],
)
def test_entries_declare_ktrdr_defaults(name: str, params: dict[str, object]) -> None:
    entry = INDICATOR_CATALOG[name]
    assert entry.outputs == (name,)
    assert entry.params == params


def test_ranges_and_kinds_are_ktrdrs() -> None:
    bounds = {
        name: INDICATOR_CATALOG[name].parameters[0].bounds_text()
        for name in ("mfi", "vwap", "volumeratio")
    }
    assert bounds == {
        "mfi": ">= 1 and <= 100",
        "vwap": ">= 0 and <= 200",
        "volumeratio": ">= 2 and <= 100",
    }
    use_typical_price = INDICATOR_CATALOG["vwap"].parameter("use_typical_price")
    assert use_typical_price is not None and use_typical_price.flag


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("volume_ratio", "volumeratio"),
        ("VolumeRatio", "volumeratio"),
        ("VWAP", "vwap"),
        ("OBVIndicator", "obv"),
        ("MFI", "mfi"),
    ],
)
def test_every_ktrdr_spelling_resolves(spelling: str, name: str) -> None:
    assert_spelling_resolves(spelling, name)


def test_vwap_flag_reaches_the_computation(bars: pd.DataFrame) -> None:
    on_close = compute_indicator(spec("vwap", use_typical_price=False), bars)
    assert_same(on_close, pandas_vwap(bars, 20, False))
    cumulative = compute_indicator(spec("vwap", period=0), bars)
    assert_same(cumulative, pandas_vwap(bars, 0, True))


@pytest.mark.parametrize("name", VOLUME_INDICATORS)
def test_data_without_volume_is_a_data_error_naming_the_indicator(
    bars: pd.DataFrame, name: str
) -> None:
    assert "volume" in INDICATOR_CATALOG[name].inputs
    with pytest.raises(DataError, match=rf"the data has no volume, and indicator '{name}' needs"):
        compute_outputs(spec(name), bars.drop(columns="volume"))


@pytest.mark.parametrize("name", ["obv", "mfi", "vwap", "volumeratio", "cmf", "adline"])
def test_zero_volume_everywhere_is_data_without_volume(bars: pd.DataFrame, name: str) -> None:
    quotes = bars.assign(volume=0.0)
    quotes.attrs["symbol"] = "EURUSD"
    with pytest.raises(DataError, match=r"the EURUSD data has no volume \(it is 0 on every bar"):
        compute_outputs(spec(name), quotes)


@pytest.mark.parametrize("name", ["mfi", "vwap", "volumeratio"])
def test_warmup_is_honest(bars: pd.DataFrame, name: str) -> None:
    """Past the warm-up, values are finite and no longer depend on where data starts."""
    late_start = 97
    warmup = indicator_warmup(spec(name))
    full = compute_indicator(spec(name), bars)
    late = compute_indicator(spec(name), bars.iloc[late_start:])
    assert np.isfinite(late[warmup:]).all()
    np.testing.assert_allclose(late[warmup:], full[late_start + warmup :], rtol=1e-9)
