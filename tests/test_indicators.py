"""Indicators against TA-Lib, warm-up honesty, edge cases and the strategy dispatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features import indicators as ind
from ktrdr_lib.features.indicators import INDICATOR_CATALOG
from ktrdr_lib.features.indicators._recursions import smooth_from_seed
from ktrdr_lib.strategy.spec import IndicatorSpec

N_BARS = 1500
# Far past any seed here: (1 - 2/13) ** 300 is about 1e-22.
MACD_SEED_DECAYED = 300


def random_walk_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """Realistic OHLCV: random-walk log closes, wicks around open/close, log-normal volume."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([close[0]], close[:-1])) * (1 + rng.normal(0.0, 0.001, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.lognormal(10.0, 0.6, n)
    index = pd.date_range("2020-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(N_BARS)


def spec_for(name: str, **params: float) -> IndicatorSpec:
    """A spec with catalog defaults filled in, as the strategy loader gives it."""
    defaults = {k: v for k, v in INDICATOR_CATALOG[name].params.items() if v is not None}
    return IndicatorSpec(name=name, feature_id=name, params={**defaults, **params})


def assert_same_where_defined(ours: np.ndarray, reference: np.ndarray, rtol: float) -> None:
    """Same NaN warm-up and the same values after it (rounding noise around 0 allowed)."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, rtol=rtol, atol=1e-9, equal_nan=True)


def ohlc(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy()


# --- agreement with TA-Lib -------------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_matches_talib(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same_where_defined(ind.rsi(close, period), talib.RSI(close, period), rtol=1e-9)


def test_macd_line_and_signal_match_talib_once_fast_seed_has_decayed(bars: pd.DataFrame) -> None:
    # TA-Lib seeds the fast EMA at the slow EMA's start; ours seeds it at its own period.
    # The two agree once that seed's weight (1 - 2/13) ** k has decayed.
    close = bars["close"].to_numpy()
    line = ind.macd(close, 12, 26)
    ref_line, ref_signal, _ = talib.MACD(close, 12, 26, 9)
    assert np.isnan(line[:25]).all()
    assert not np.isnan(line[25:]).any()
    after = slice(MACD_SEED_DECAYED, None)
    atol = 1e-9 * close.max()
    np.testing.assert_allclose(line[after], ref_line[after], rtol=1e-7, atol=atol)
    signal = ind.macd_signal(line, 9)
    np.testing.assert_allclose(signal[after], ref_signal[after], rtol=1e-7, atol=atol)


@pytest.mark.parametrize("period", [1, 20, 50])
def test_sma_and_ema_ratios_match_talib(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same_where_defined(
        ind.sma_ratio(close, period), close / talib.SMA(close, period), rtol=1e-9
    )
    assert_same_where_defined(
        ind.ema_ratio(close, period), close / talib.EMA(close, period), rtol=1e-9
    )


@pytest.mark.parametrize(("period", "std_dev"), [(20, 2.0), (10, 1.5)])
def test_bbands_position_matches_talib(bars: pd.DataFrame, period: int, std_dev: float) -> None:
    close = bars["close"].to_numpy()
    upper, _, lower = talib.BBANDS(close, period, std_dev, std_dev)
    ours = ind.bbands_position(close, period, std_dev)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(upper))
    # Positions near 0 make relative error meaningless; compare on the band-width scale.
    np.testing.assert_allclose(ours, (close - lower) / (upper - lower), atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("period", [1, 14])
def test_atr_matches_talib(bars: pd.DataFrame, period: int) -> None:
    assert_same_where_defined(
        ind.atr(*ohlc(bars), period), talib.ATR(*ohlc(bars), period), rtol=1e-9
    )


@pytest.mark.parametrize(("k_period", "d_period"), [(14, 3), (5, 1)])
def test_stoch_k_is_talib_slow_k(bars: pd.DataFrame, k_period: int, d_period: int) -> None:
    slow_k, _ = talib.STOCH(
        *ohlc(bars), fastk_period=k_period, slowk_period=d_period, slowd_period=3
    )
    ours = ind.stoch_k(*ohlc(bars), k_period, d_period)
    # TA-Lib also waits for its %D (2 more bars); ours is defined from k + d - 2 on.
    first = k_period + d_period - 2
    assert np.isnan(ours[:first]).all()
    assert not np.isnan(ours[first:]).any()
    np.testing.assert_allclose(ours[first + 2 :], slow_k[first + 2 :], rtol=1e-9)


def test_stoch_k_with_unit_smoothing_is_fast_k(bars: pd.DataFrame) -> None:
    fast_k, _ = talib.STOCHF(*ohlc(bars), fastk_period=14, fastd_period=1)
    assert_same_where_defined(ind.stoch_k(*ohlc(bars), 14, 1), fast_k, rtol=1e-9)


@pytest.mark.parametrize("period", [1, 10])
def test_roc_and_momentum_match_talib(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same_where_defined(ind.roc(close, period), talib.ROC(close, period), rtol=1e-9)
    assert_same_where_defined(ind.momentum(close, period), talib.MOM(close, period), rtol=1e-9)


def test_obv_matches_talib(bars: pd.DataFrame) -> None:
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    assert_same_where_defined(ind.obv(close, volume), talib.OBV(close, volume), rtol=1e-9)


@pytest.mark.parametrize("period", [2, 14, 25])
def test_adx_matches_talib(bars: pd.DataFrame, period: int) -> None:
    assert_same_where_defined(
        ind.adx(*ohlc(bars), period), talib.ADX(*ohlc(bars), period), rtol=1e-9
    )


@pytest.mark.parametrize("period", [5, 14])
def test_cci_williams_r_mfi_match_talib(bars: pd.DataFrame, period: int) -> None:
    high, low, close = ohlc(bars)
    volume = bars["volume"].to_numpy()
    assert_same_where_defined(
        ind.cci(high, low, close, period), talib.CCI(high, low, close, period), rtol=1e-7
    )
    assert_same_where_defined(
        ind.williams_r(high, low, close, period),
        talib.WILLR(high, low, close, period),
        rtol=1e-9,
    )
    assert_same_where_defined(
        ind.mfi(high, low, close, volume, period),
        talib.MFI(high, low, close, volume, period),
        rtol=1e-9,
    )


@pytest.mark.parametrize(("length", "period"), [(100, 7), (101, 7), (7, 7), (50, 1)])
def test_rolling_extremes_match_pandas_around_gaps(length: int, period: int) -> None:
    bars = random_walk_bars(length, seed=9)
    high, low, close = (column.copy() for column in ohlc(bars))
    high[length // 2] = np.nan  # windows holding the gap are NaN, the others unaffected
    expected = -100 * (
        (pd.Series(high).rolling(period).max() - close)
        / (pd.Series(high).rolling(period).max() - pd.Series(low).rolling(period).min())
    )
    assert_same_where_defined(ind.williams_r(high, low, close, period), expected.to_numpy(), 1e-12)


# --- strategy dispatch -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INDICATOR_CATALOG))
def test_every_catalog_indicator_computes_with_its_defaults(bars: pd.DataFrame, name: str) -> None:
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    values = ind.compute_indicator(spec, bars)
    assert values.dtype == np.float64
    assert values.shape == (len(bars),)
    warmup = ind.indicator_warmup(spec)
    assert np.isfinite(values[warmup:]).all()


def test_compute_indicator_reads_the_source_column(bars: pd.DataFrame) -> None:
    spec = IndicatorSpec(name="rsi", feature_id="rsi_high", source="high", params={"period": 9})
    expected = talib.RSI(bars["high"].to_numpy(), 9)
    assert_same_where_defined(ind.compute_indicator(spec, bars), expected, rtol=1e-9)


def test_compute_indicator_gives_catalog_value_semantics(bars: pd.DataFrame) -> None:
    close = bars["close"].to_numpy()
    sma = ind.compute_indicator(spec_for("sma", period=20), bars)
    assert_same_where_defined(sma, close / talib.SMA(close, 20), rtol=1e-9)
    stoch = ind.compute_indicator(spec_for("stoch"), bars)
    assert_same_where_defined(stoch, ind.stoch_k(*ohlc(bars), 14, 3), rtol=0)


@pytest.mark.parametrize("name", sorted(INDICATOR_CATALOG))
def test_values_after_warmup_do_not_depend_on_where_the_series_starts(name: str) -> None:
    """``indicator_warmup`` is honest: past it, a later start moves values < 1 % of their range."""
    bars = random_walk_bars(900, seed=11)
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    offset = 137
    full = ind.compute_indicator(spec, bars)[offset:]
    late = ind.compute_indicator(spec, bars.iloc[offset:])
    settled = slice(ind.indicator_warmup(spec), None)
    if name == "obv":  # a running total: the level depends on the start, the changes do not
        full, late = np.diff(full), np.diff(late)
    value_range = np.nanmax(full) - np.nanmin(full)
    np.testing.assert_allclose(late[settled], full[settled], rtol=0, atol=0.01 * value_range)
    assert not np.isnan(late[settled]).any()


def test_warmup_counts_leading_nan_bars_at_least(bars: pd.DataFrame) -> None:
    for name in INDICATOR_CATALOG:
        spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
        values = ind.compute_indicator(spec, bars)
        leading_nans = int(np.argmax(~np.isnan(values)))
        assert ind.indicator_warmup(spec) >= leading_nans, name


def test_exponential_warmup_exceeds_the_nan_stretch() -> None:
    assert ind.indicator_warmup(spec_for("rsi", period=14)) > 3 * 14
    assert ind.indicator_warmup(spec_for("ema", period=20)) > 2 * 20
    assert ind.indicator_warmup(spec_for("sma", period=20)) == 19


def test_unknown_indicator_is_a_config_error_listing_known_names(bars: pd.DataFrame) -> None:
    spec = IndicatorSpec(name="supertrend", feature_id="st", params={})
    with pytest.raises(ConfigError, match=r"unknown indicator 'supertrend'.*rsi"):
        ind.compute_indicator(spec, bars)
    with pytest.raises(ConfigError, match="supertrend"):
        ind.indicator_warmup(spec)


def test_missing_or_bad_parameter_is_a_config_error(bars: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'sma'.*missing parameter 'period'"):
        ind.compute_indicator(IndicatorSpec(name="sma", feature_id="sma", params={}), bars)
    with pytest.raises(ConfigError, match=r"'period' must be a whole number >= 1 \(got 2.5\)"):
        ind.compute_indicator(spec_for("rsi", period=2.5), bars)
    with pytest.raises(ConfigError, match="fast_period < slow_period"):
        ind.compute_indicator(spec_for("macd", fast_period=30), bars)


def test_missing_column_is_a_data_error(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'obv'.*needs a 'volume' column"):
        ind.compute_indicator(spec_for("obv"), bars.drop(columns="volume"))


def test_direct_call_with_bad_period_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="period"):
        ind.rsi(np.ones(10), 0)
    with pytest.raises(ConfigError, match="std_dev"):
        ind.bbands_position(np.ones(10), 5, 0.0)


# --- edge cases ------------------------------------------------------------------------------


def constant_bars(n: int) -> pd.DataFrame:
    price = np.full(n, 42.5)
    return pd.DataFrame(
        {"open": price, "high": price, "low": price, "close": price, "volume": np.full(n, 1e4)}
    )


@pytest.mark.parametrize(
    ("name", "neutral"),
    [
        ("rsi", 50.0),
        ("stoch", 50.0),
        ("mfi", 50.0),
        ("williams_r", -50.0),
        ("bbands", 0.5),
        ("cci", 0.0),
        ("adx", 0.0),
        ("atr", 0.0),
        ("macd", 0.0),
        ("roc", 0.0),
        ("momentum", 0.0),
        ("sma", 1.0),
        ("ema", 1.0),
    ],
)
def test_constant_prices_give_the_neutral_value_not_nan(name: str, neutral: float) -> None:
    bars = constant_bars(200)
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    with np.errstate(all="raise"):
        values = ind.compute_indicator(spec, bars)
    leading = int(np.argmax(~np.isnan(values)))
    np.testing.assert_allclose(values[leading:], neutral, atol=1e-12)
    assert leading < 60


def test_constant_stretch_after_movement_gives_neutral_values() -> None:
    moving = random_walk_bars(100, seed=5)
    flat = constant_bars(60)
    flat.index = pd.date_range(moving.index[-1], periods=61, freq="1h", tz="UTC")[1:]
    bars = pd.concat([moving, flat])
    tail = slice(-20, None)
    for name, neutral in (("rsi", None), ("bbands", 0.5), ("williams_r", -50.0), ("cci", 0.0)):
        values = ind.compute_indicator(spec_for(name), bars)[tail]
        assert np.isfinite(values).all(), name
        if neutral is not None:
            np.testing.assert_allclose(values, neutral, atol=1e-12)


@pytest.mark.parametrize("name", sorted(INDICATOR_CATALOG))
@pytest.mark.parametrize("length", [0, 1, 5])
def test_input_shorter_than_the_period_is_all_nan(name: str, length: int) -> None:
    bars = random_walk_bars(50).iloc[:length]
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    values = ind.compute_indicator(spec, bars)
    assert values.shape == (length,)
    if name != "obv":  # OBV has no warm-up
        assert np.isnan(values).all()


def test_rsi_of_a_steady_rise_is_100_and_of_a_steady_fall_is_0() -> None:
    rising = np.linspace(10.0, 20.0, 40)
    np.testing.assert_allclose(ind.rsi(rising, 14)[14:], 100.0)
    np.testing.assert_allclose(ind.rsi(rising[::-1], 14)[14:], 0.0)


# --- vectorised building blocks against plain loops ---------------------------------------------


def loop_smooth(values: np.ndarray, alpha: float, seed_index: int, seed: float) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    if seed_index < values.shape[0]:
        out[seed_index] = seed
        for t in range(seed_index + 1, values.shape[0]):
            out[t] = (1 - alpha) * out[t - 1] + alpha * values[t]
    return out


@pytest.mark.parametrize("alpha", [1.0, 2 / 3, 0.5, 1 / 14, 2 / 201, 1e-3])
@pytest.mark.parametrize(("length", "seed_index"), [(40_000, 13), (1030, 0), (5, 4), (3, 7)])
def test_smooth_from_seed_matches_the_plain_recursion(
    alpha: float, length: int, seed_index: int
) -> None:
    # Lengths cross block and chunk boundaries; mixed signs test cancellation.
    values = np.random.default_rng(3).normal(5.0, 10.0, length)
    expected = loop_smooth(values, alpha, seed_index, 1.5)
    ours = smooth_from_seed(values, alpha, seed_index, 1.5)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12 * 10.0)
    in_place = values.copy()
    assert smooth_from_seed(in_place, alpha, seed_index, 1.5, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, ours)


def test_smooth_from_seed_turns_nan_after_a_nan_input() -> None:
    values = np.random.default_rng(4).normal(size=5000)
    values[2500] = np.nan
    smoothed = smooth_from_seed(values, 0.1, 9, 0.0)
    assert np.isfinite(smoothed[9:2500]).all()
    assert np.isnan(smoothed[2500:]).all()


def test_window_indicators_stay_exact_on_long_series() -> None:
    """Running totals restart per segment: no drift with length (TA-Lib accuracy, 1e-9)."""
    close = random_walk_bars(60_000, seed=12)["close"].to_numpy() * 1000.0
    windows = np.lib.stride_tricks.sliding_window_view(close, 20)
    mean, sd = windows.mean(axis=1), windows.std(axis=1)  # two-pass per window
    np.testing.assert_allclose(ind.sma_ratio(close, 20)[19:], close[19:] / mean, rtol=1e-12)
    position = (close[19:] - (mean - 2 * sd)) / (4 * sd)
    np.testing.assert_allclose(ind.bbands_position(close, 20, 2.0)[19:], position, atol=1e-9)


def test_rolling_windows_recover_after_a_nan_like_pandas() -> None:
    close = random_walk_bars(3000, seed=13)["close"].to_numpy().copy()
    close[1500] = np.nan
    expected = close / pd.Series(close).rolling(20).mean().to_numpy()
    assert_same_where_defined(ind.sma_ratio(close, 20), expected, rtol=1e-12)
    assert np.isfinite(ind.sma_ratio(close, 20)[1520:]).all()
