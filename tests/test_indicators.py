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
    return IndicatorSpec(type=name, params={**defaults, **params})


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


def test_macd_matches_talib_once_the_seeds_have_faded(bars: pd.DataFrame) -> None:
    """KTRDR's MACD: pandas ewm(adjust=False) from bar 0, three outputs and no NaN; TA-Lib
    seeds its EMAs with averages (and ours before seeded the fast one at its own period), so
    the two agree once those seeds' weight (1 - 2/27) ** k has decayed."""
    close = bars["close"].to_numpy()
    line, signal, histogram = ind.macd(close, 12, 26, 9)
    assert not np.isnan(line).any()
    after = slice(MACD_SEED_DECAYED, None)
    atol = 1e-9 * close.max()
    for ours, reference in zip(
        (line, signal, histogram), talib.MACD(close, 12, 26, 9), strict=True
    ):
        np.testing.assert_allclose(ours[after], reference[after], rtol=1e-7, atol=atol)


@pytest.mark.parametrize("period", [2, 20, 50])
def test_moving_averages_are_the_raw_averages(bars: pd.DataFrame, period: int) -> None:
    """KTRDR's SMA / WMA give the average itself (ours gave price / average); the EMA is
    pandas ewm(span, adjust=True), not TA-Lib's SMA-seeded EMA."""
    close = bars["close"].to_numpy()
    sma = ind.simple_moving_average(close, period)
    assert_same_where_defined(sma, talib.SMA(close, period), rtol=1e-9)
    wma = ind.weighted_moving_average(close, period)
    assert_same_where_defined(wma, talib.WMA(close, period), rtol=1e-9)
    expected = pd.Series(close).ewm(span=period, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(ind.exponential_moving_average(close, period), expected, rtol=1e-12)


@pytest.mark.parametrize(("period", "multiplier"), [(20, 2.0), (10, 1.5)])
def test_bollinger_bands_are_talib_bands_with_the_sample_deviation(
    bars: pd.DataFrame, period: int, multiplier: float
) -> None:
    """KTRDR's bands: the three bands (ours gave the position in them), with the sample
    standard deviation (ddof=1), i.e. TA-Lib's ddof=0 bands widened by sqrt(n / (n - 1))."""
    close = bars["close"].to_numpy()
    widened = multiplier * np.sqrt(period / (period - 1))
    expected = talib.BBANDS(close, period, widened, widened)
    for ours, reference in zip(
        ind.bollinger_bands(close, period, multiplier), expected, strict=True
    ):
        assert_same_where_defined(ours, reference, rtol=1e-9)


@pytest.mark.parametrize("period", [1, 14])
def test_atr_is_the_simple_average_of_the_true_range(bars: pd.DataFrame, period: int) -> None:
    """KTRDR's ATR is the SMA of the true range (TR0 = high - low); ours was TA-Lib's Wilder ATR."""
    high, low, close = ohlc(bars)
    true_range = talib.TRANGE(high, low, close)
    true_range[0] = high[0] - low[0]
    expected = pd.Series(true_range).rolling(period).mean().to_numpy()
    assert_same_where_defined(ind.atr(high, low, close, period), expected, rtol=1e-9)


@pytest.mark.parametrize(("k_period", "d_period", "smooth_k"), [(14, 3, 3), (5, 3, 1)])
def test_stochastic_is_talib_slow_stochastic_after_warmup(
    bars: pd.DataFrame, k_period: int, d_period: int, smooth_k: int
) -> None:
    """KTRDR's stochastic: %K smoothed over ``smooth_k`` (default 3) and %D over ``d_period``;
    ours smoothed %K over ``d_period``. Like KTRDR it fills the warm-up with 50 (no NaN)."""
    slow_k, slow_d = talib.STOCH(*ohlc(bars), k_period, smooth_k, 0, d_period, 0)
    k, d = ind.stochastic(*ohlc(bars), k_period, d_period, smooth_k)
    first = k_period + smooth_k + d_period - 3
    assert not np.isnan(k).any() and not np.isnan(d).any()
    np.testing.assert_allclose(k[first:], slow_k[first:], rtol=1e-9)
    np.testing.assert_allclose(d[first:], slow_d[first:], rtol=1e-9)


def test_stochastic_without_smoothing_is_fast_k(bars: pd.DataFrame) -> None:
    fast_k, _ = talib.STOCHF(*ohlc(bars), fastk_period=14, fastd_period=1)
    k, _ = ind.stochastic(*ohlc(bars), 14, 1, 1)
    np.testing.assert_allclose(k[13:], fast_k[13:], rtol=1e-9)


@pytest.mark.parametrize("period", [1, 10])
def test_roc_and_momentum_match_talib(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_same_where_defined(ind.roc(close, period), talib.ROC(close, period), rtol=1e-9)
    assert_same_where_defined(ind.momentum(close, period), talib.MOM(close, period), rtol=1e-9)


def test_obv_is_talib_obv_started_at_zero(bars: pd.DataFrame) -> None:
    """KTRDR's OBV starts at 0; TA-Lib's (and ours before) at the first bar's volume."""
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    expected = talib.OBV(close, volume) - volume[0]
    assert_same_where_defined(ind.obv(close, volume), expected, rtol=1e-9)


# Far past both smoothings' starts for period 25: (1 - 1/25) ** 700 is about 4e-13.
ADX_SEEDS_FADED = 700


@pytest.mark.parametrize("period", [2, 14, 25])
def test_adx_matches_talib_once_the_seeds_have_faded(bars: pd.DataFrame, period: int) -> None:
    """KTRDR's ADX smooths with ewm(alpha=1/n, adjust=False) from bar 0 and gives +DI and -DI
    too; TA-Lib (and ours before) seeds Wilder's sums, so they agree once the seeds fade."""
    high, low, close = ohlc(bars)
    after = slice(ADX_SEEDS_FADED, None)
    references = (
        talib.ADX(high, low, close, period),
        talib.PLUS_DI(high, low, close, period),
        talib.MINUS_DI(high, low, close, period),
    )
    for ours, reference in zip(ind.adx(high, low, close, period), references, strict=True):
        assert not np.isnan(ours).any()
        np.testing.assert_allclose(ours[after], reference[after], rtol=1e-9)


@pytest.mark.parametrize("period", [5, 14])
def test_cci_williams_r_mfi_match_talib(bars: pd.DataFrame, period: int) -> None:
    high, low, close = ohlc(bars)
    volume = bars["volume"].to_numpy()
    assert_same_where_defined(
        ind.cci(high, low, close, period), talib.CCI(high, low, close, period), rtol=1e-7
    )
    # KTRDR's %R fills its warm-up with -50; TA-Lib's after it.
    np.testing.assert_allclose(ind.williams_r(high, low, close, period)[: period - 1], -50.0)
    assert_same_where_defined(
        ind.williams_r(high, low, close, period)[period - 1 :],
        talib.WILLR(high, low, close, period)[period - 1 :],
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
    high[length // 2] = np.nan  # windows holding the gap are undefined (-50), the others unaffected
    expected = (
        -100
        * (pd.Series(high).rolling(period).max() - close)
        / (pd.Series(high).rolling(period).max() - pd.Series(low).rolling(period).min())
    ).fillna(-50.0)
    assert_same_where_defined(ind.williams_r(high, low, close, period), expected.to_numpy(), 1e-12)


# --- strategy dispatch -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INDICATOR_CATALOG))
def test_every_catalog_indicator_computes_with_its_defaults(bars: pd.DataFrame, name: str) -> None:
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    values = ind.compute_indicator(spec, bars)
    assert values.dtype == np.float64
    assert values.shape == (len(bars),)
    warmup = ind.indicator_warmup(spec)
    if name == "zigzag":  # pivots only: NaN between them is its value, not a warm-up
        values = values[~np.isnan(values)]
        assert values.size > 2
    assert np.isfinite(values[warmup:]).all()


def test_compute_indicator_reads_the_source_column(bars: pd.DataFrame) -> None:
    spec = IndicatorSpec(type="rsi", source="high", params={"period": 9})
    expected = talib.RSI(bars["high"].to_numpy(), 9)
    assert_same_where_defined(ind.compute_indicator(spec, bars), expected, rtol=1e-9)


def test_compute_indicator_gives_catalog_value_semantics(bars: pd.DataFrame) -> None:
    close = bars["close"].to_numpy()
    sma = ind.compute_indicator(spec_for("simplemovingaverage", period=20), bars)
    assert_same_where_defined(sma, talib.SMA(close, 20), rtol=1e-9)  # KTRDR: the raw average
    stoch = ind.compute_indicator(spec_for("stochastic"), bars)
    assert_same_where_defined(stoch, ind.stochastic(*ohlc(bars), 14, 3, 3)[0], rtol=0)
    upper = ind.compute_indicator(spec_for("bollingerbands"), bars)
    assert_same_where_defined(upper, ind.bollinger_bands(close, 20, 2.0)[0], rtol=0)


@pytest.mark.parametrize("name", sorted(INDICATOR_CATALOG))
def test_values_after_warmup_do_not_depend_on_where_the_series_starts(name: str) -> None:
    """``indicator_warmup`` is honest: past it, a later start moves values < 1 % of their range."""
    if name == "zigzag":
        pytest.skip(
            "ZigZag pivots use hindsight and depend on the start until a swing (of any length)"
        )
    bars = random_walk_bars(900, seed=11)
    spec = spec_for(name, period=20) if name in ("sma", "ema") else spec_for(name)
    offset = 137
    full = ind.compute_indicator(spec, bars)[offset:]
    late = ind.compute_indicator(spec, bars.iloc[offset:])
    settled = slice(ind.indicator_warmup(spec), None)
    if name in ("obv", "adline"):  # running totals: the level depends on the start, not changes
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
    assert ind.indicator_warmup(spec_for("exponentialmovingaverage", period=20)) > 2 * 20
    assert ind.indicator_warmup(spec_for("simplemovingaverage", period=20)) == 19


def test_unknown_indicator_is_a_config_error_listing_known_names(bars: pd.DataFrame) -> None:
    spec = IndicatorSpec(type="volume_profile", params={})  # no KTRDR version had it
    with pytest.raises(ConfigError, match=r"unknown indicator 'volume_profile'.*rsi"):
        ind.compute_indicator(spec, bars)
    with pytest.raises(ConfigError, match="volume_profile"):
        ind.indicator_warmup(spec)


def test_missing_or_bad_parameter_is_a_config_error(bars: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'sma'.*missing parameter 'period'"):
        ind.compute_indicator(IndicatorSpec(type="sma", params={}), bars)
    with pytest.raises(ConfigError, match=r"'period' must be a whole number >= 2 and <= 100"):
        ind.compute_indicator(spec_for("rsi", period=2.5), bars)
    with pytest.raises(ConfigError, match="fast_period < slow_period"):
        ind.compute_indicator(spec_for("macd", fast_period=30), bars)


def test_missing_column_is_a_data_error(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'obv'.*needs a 'volume' column"):
        ind.compute_indicator(spec_for("obv"), bars.drop(columns="volume"))


def test_direct_call_with_bad_period_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="period"):
        ind.rsi(np.ones(10), 0)
    with pytest.raises(ConfigError, match="multiplier"):
        ind.bollinger_bands(np.ones(10), 5, 0.0)


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
        ("stochastic", 50.0),
        ("mfi", 50.0),
        ("williamsr", -50.0),
        ("bollingerbands", 42.5),  # the upper band (KTRDR); ours was the position 0.5
        ("bollingerbandwidth", 0.0),
        ("squeezeintensity", 0.0),
        ("cci", 0.0),
        ("fishertransform", 0.0),
        ("rvi", 0.0),
        ("obv", 0.0),
        ("cmf", 0.0),
        ("adline", 0.0),
        ("vwap", 42.5),
        ("volumeratio", 1.0),
        ("adx", 0.0),
        ("atr", 0.0),
        ("macd", 0.0),
        ("roc", 0.0),
        ("momentum", 0.0),
        ("simplemovingaverage", 42.5),  # the average (KTRDR); ours was price / average, 1.0
        ("exponentialmovingaverage", 42.5),
        ("weightedmovingaverage", 42.5),
        ("distancefromma", 0.0),
        ("keltnerchannels", 42.5),
        ("donchianchannels", 42.5),
        ("ichimoku", 42.5),
        ("supertrend", 42.5),
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
    for name, neutral in (
        ("rsi", None),
        ("bollingerbandwidth", 0.0),
        ("williamsr", -50.0),
        ("cci", 0.0),
    ):
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
    # Running totals have no warm-up, the VWAP averages over the bars so far, and KTRDR's
    # stochastic and Williams %R fill theirs with 50 / -50.
    # EMAs, MACD and ADX start at bar 0 (pandas ewm), the SAR at bar 1, a ZigZag pivot at bar 0.
    starts_at_once = ("exponentialmovingaverage", "macd", "adx", "parabolicsar", "zigzag")
    if name not in ("obv", "adline", "vwap", "stochastic", "williamsr", *starts_at_once):
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
    mean = windows.mean(axis=1)  # two-pass per window
    np.testing.assert_allclose(ind.simple_moving_average(close, 20)[19:], mean, rtol=1e-12)
    upper = mean + 2 * windows.std(axis=1, ddof=1)
    np.testing.assert_allclose(ind.bollinger_bands(close, 20, 2.0)[0][19:], upper, rtol=1e-12)


def test_rolling_windows_recover_after_a_nan_like_pandas() -> None:
    close = random_walk_bars(3000, seed=13)["close"].to_numpy().copy()
    close[1500] = np.nan
    expected = pd.Series(close).rolling(20).mean().to_numpy()
    assert_same_where_defined(ind.simple_moving_average(close, 20), expected, rtol=1e-12)
    assert np.isfinite(ind.simple_moving_average(close, 20)[1520:]).all()
