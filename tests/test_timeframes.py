"""Tests for ktrdr_lib.data.timeframes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.data.timeframes import (
    align_to_base,
    floor_to_timeframe,
    parse_timeframe,
    resample_ohlcv,
    sort_timeframes,
)
from ktrdr_lib.errors import ConfigError, DataError

PANDAS_RULES = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1m", pd.Timedelta(minutes=1)),
        ("15m", pd.Timedelta(minutes=15)),
        ("1h", pd.Timedelta(hours=1)),
        ("4h", pd.Timedelta(hours=4)),
        ("1d", pd.Timedelta(days=1)),
        ("1w", pd.Timedelta(days=7)),
        ("2w", pd.Timedelta(days=14)),
    ],
)
def test_parse_timeframe_accepts_the_four_units(text: str, expected: pd.Timedelta) -> None:
    assert parse_timeframe(text) == expected


@pytest.mark.parametrize("text", ["", "h", "0h", "1x", "1.5h", "1H", " 1h", "1hh", "-1d", "01d"])
def test_parse_timeframe_rejects_other_forms_naming_value_and_forms(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_timeframe(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "m (minutes)" in message
    assert "w (weeks)" in message


@pytest.mark.parametrize("text", ["99999999999999999999d", "53w", "365d", "524161m"])
def test_parse_timeframe_refuses_bars_longer_than_52_weeks(text: str) -> None:
    # 99999999999999999999d overflowed pandas' Timedelta (an HTTP 500 at the API's door)
    with pytest.raises(ConfigError, match=r"at most 52 weeks") as caught:
        parse_timeframe(text)
    assert repr(text) in str(caught.value)
    assert parse_timeframe("52w") == parse_timeframe("364d") == pd.Timedelta(weeks=52)


def test_sort_timeframes_orders_fastest_first() -> None:
    assert sort_timeframes(["1d", "5m", "1w", "4h", "1h"]) == ["5m", "1h", "4h", "1d", "1w"]


def test_sort_timeframes_rejects_invalid_entries() -> None:
    with pytest.raises(ConfigError, match="'1y'"):
        sort_timeframes(["1h", "1y"])


def test_floor_to_timeframe_puts_weeks_on_mondays_and_hours_on_the_epoch_grid() -> None:
    stamps = pd.DatetimeIndex(["2024-01-03 17:20", "2024-01-07 23:59"], tz="UTC")
    weeks = floor_to_timeframe(stamps, "1w")
    assert list(weeks.day_name()) == ["Monday", "Monday"]
    assert list(weeks) == [pd.Timestamp("2024-01-01", tz="UTC")] * 2
    four_hours = floor_to_timeframe(stamps, "4h")
    assert list(four_hours.hour) == [16, 20]


def test_resample_ohlcv_aggregates_each_column_by_its_rule() -> None:
    index = pd.date_range("2024-01-01 00:00", periods=8, freq="h", tz="UTC")
    bars = pd.DataFrame(
        {
            "open": [10.0, 11, 12, 13, 20, 21, 22, 23],
            "high": [15.0, 19, 14, 13, 25, 30, 24, 23],
            "low": [9.0, 8, 11, 12, 18, 19, 17, 22],
            "close": [11.0, 12, 13, 14, 21, 22, 23, 24],
            "volume": [1.0, 2, 3, 4, 5, 6, 7, 8],
        },
        index=index,
    )
    result = resample_ohlcv(bars, "4h")
    assert list(result.index) == [index[0], index[4]]
    assert result.loc[index[0]].tolist() == [10.0, 19.0, 8.0, 14.0, 10.0]
    assert result.loc[index[4]].tolist() == [20.0, 30.0, 17.0, 24.0, 26.0]
    assert result.index.name == "date"
    assert (result.dtypes == "float64").all()


def test_resample_ohlcv_matches_pandas_resample_on_daily_buckets() -> None:
    hourly = generate_ohlcv(24 * 20 + 7, timeframe="1h", seed=3, start="2024-03-01 05:00")
    expected = hourly.resample("1D", label="left", closed="left").agg(PANDAS_RULES).dropna()
    result = resample_ohlcv(hourly, "1d")
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy())
    assert list(result.index) == list(expected.index)


def test_resample_ohlcv_weekly_buckets_start_monday() -> None:
    daily = generate_ohlcv(60, timeframe="1d", seed=4, start="2024-01-03")
    expected = daily.resample("W-MON", label="left", closed="left").agg(PANDAS_RULES).dropna()
    result = resample_ohlcv(daily, "1w")
    assert set(result.index.day_name()) == {"Monday"}
    assert list(result.index) == list(expected.index)
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy())


def test_resample_ohlcv_drops_empty_buckets() -> None:
    hours = pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 02:00", "2024-01-04 03:00"])
    bars = pd.DataFrame(
        {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0},
        index=hours.tz_localize("UTC"),
    )
    result = resample_ohlcv(bars, "1d")
    assert list(result.index.strftime("%Y-%m-%d")) == ["2024-01-01", "2024-01-04"]
    assert result["volume"].tolist() == [20.0, 10.0]


def test_resample_ohlcv_refuses_to_upsample() -> None:
    daily = generate_ohlcv(10, timeframe="1d")
    with pytest.raises(ConfigError, match="upsample"):
        resample_ohlcv(daily, "1h")


def test_resample_ohlcv_reports_missing_columns() -> None:
    bars = generate_ohlcv(10).drop(columns=["low"])
    with pytest.raises(DataError, match="missing columns \\['low'\\]"):
        resample_ohlcv(bars, "4h")


def test_resample_ohlcv_without_volume_resamples_the_prices() -> None:
    bars = generate_ohlcv(12)
    without = resample_ohlcv(bars.drop(columns=["volume"]), "4h")
    assert list(without.columns) == ["open", "high", "low", "close"]
    pd.testing.assert_frame_equal(without, resample_ohlcv(bars, "4h").drop(columns=["volume"]))


def test_resample_ohlcv_rejects_unsorted_bars() -> None:
    bars = generate_ohlcv(10).iloc[::-1]
    with pytest.raises(DataError, match="not sorted"):
        resample_ohlcv(bars, "4h")


def _daily_close_frame() -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    hourly = generate_ohlcv(24 * 5, timeframe="1h", seed=5, start="2024-01-01")
    daily = resample_ohlcv(hourly, "1d")
    return daily[["close"]], pd.DatetimeIndex(hourly.index)


def test_align_to_base_never_uses_a_bar_before_it_closes() -> None:
    daily, base = _daily_close_frame()
    aligned = align_to_base(daily, "1d", base, "1h")
    # The naive alignment leaks: at 10:00 on day 2 it shows day 2's close, known only at 24:00.
    day_one, day_two = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")
    naive = daily.reindex(base, method="ffill")
    ten_am = day_two + pd.Timedelta(hours=10)
    assert naive.loc[ten_am, "close"] == daily.loc[day_two, "close"]
    assert aligned.loc[ten_am, "close"] == daily.loc[day_one, "close"]
    # The last hour of a day closes together with the day, so it may see that day.
    last_hour = day_two + pd.Timedelta(hours=23)
    assert aligned.loc[last_hour, "close"] == daily.loc[day_two, "close"]


def test_align_to_base_picks_the_latest_known_bar_for_every_row() -> None:
    daily, base = _daily_close_frame()
    aligned = align_to_base(daily, "1d", base, "1h")
    for stamp in base:
        known = daily[daily.index + pd.Timedelta(days=1) <= stamp + pd.Timedelta(hours=1)]
        expected = known["close"].iloc[-1] if len(known) else np.nan
        np.testing.assert_equal(aligned.loc[stamp, "close"], expected)


def test_align_to_base_fills_nan_before_the_first_known_bar() -> None:
    daily, base = _daily_close_frame()
    aligned = align_to_base(daily, "1d", base, "1h")
    first_day = base[base < pd.Timestamp("2024-01-01 23:00", tz="UTC")]
    assert aligned.loc[first_day, "close"].isna().all()
    assert aligned.index.equals(base)


def test_align_to_base_four_hour_bar_is_visible_at_its_last_hour() -> None:
    base = pd.date_range("2024-01-01", periods=12, freq="h", tz="UTC")
    four_hour = pd.DataFrame({"value": [1.0, 2.0, 3.0]}, index=base[::4])
    aligned = align_to_base(four_hour, "4h", base, "1h")
    expected = [np.nan] * 3 + [1.0] * 4 + [2.0] * 4 + [3.0]
    np.testing.assert_array_equal(aligned["value"].to_numpy(), np.array(expected))


def test_align_to_base_rejects_unsorted_frames() -> None:
    daily, base = _daily_close_frame()
    with pytest.raises(DataError, match="sorted and unique"):
        align_to_base(daily.iloc[::-1], "1d", base, "1h")


def test_align_to_base_rejects_a_non_datetime_base_index() -> None:
    daily, _ = _daily_close_frame()
    with pytest.raises(DataError, match="DatetimeIndex"):
        align_to_base(daily, "1d", pd.RangeIndex(5), "1h")


# -- markets with weekend gaps (FX) and markets that never close (crypto) ------------------


def _by_hand(hourly: pd.DataFrame, bucket: pd.DatetimeIndex) -> pd.DataFrame:
    """Each bucket's OHLCV written out plainly: first open, max high, min low, last close, sum."""
    rows = {}
    for start in bucket.unique():
        inside = hourly[floor_to_timeframe(hourly.index, "1d") == start]
        rows[start] = [
            inside["open"].iloc[0],
            inside["high"].max(),
            inside["low"].min(),
            inside["close"].iloc[-1],
            inside["volume"].sum(),
        ]
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["open", "high", "low", "close", "volume"]
    )


def test_fx_hours_skip_the_weekend_close() -> None:
    hourly = generate_ohlcv(24 * 15, timeframe="1h", seed=3, calendar="fx", start="2024-01-01")
    in_week = (hourly.index - pd.Timestamp("2024-01-01", tz="UTC")) % pd.Timedelta(weeks=1)
    closed = (in_week >= pd.Timedelta(days=4, hours=22)) & (
        in_week < pd.Timedelta(days=6, hours=22)
    )
    assert not closed.any()
    gaps = np.diff(hourly.index.asi8) // 3_600_000_000_000
    assert set(gaps.tolist()) == {
        1,
        49,
    }  # every hour, and 49 hours from Friday 21:00 to Sunday 22:00


def test_resampling_fx_hours_builds_every_trading_day_from_the_hours_it_has() -> None:
    hourly = generate_ohlcv(24 * 15, timeframe="1h", seed=3, calendar="fx", start="2024-01-01")
    daily = resample_ohlcv(hourly, "1d")
    assert not daily.isna().any().any()
    assert "Saturday" not in set(daily.index.day_name())
    per_day = pd.Series(floor_to_timeframe(hourly.index, "1d")).value_counts()
    sundays = per_day[per_day.index.day_name() == "Sunday"]
    assert len(sundays) >= 2 and set(sundays.tolist()) == {2}  # 22:00 and 23:00: a short day
    expected = _by_hand(hourly, floor_to_timeframe(hourly.index, "1d"))
    pd.testing.assert_frame_equal(
        daily, expected.set_axis(daily.index), check_names=False, check_freq=False
    )
    four_hour = resample_ohlcv(hourly, "4h")
    assert not four_hour.isna().any().any()
    assert len(four_hour) == len(np.unique(floor_to_timeframe(hourly.index, "4h")))


def test_slower_fx_bars_reach_the_hours_after_the_weekend_without_look_ahead() -> None:
    hourly = generate_ohlcv(24 * 15, timeframe="1h", seed=3, calendar="fx", start="2024-01-01")
    daily = resample_ohlcv(hourly, "1d")
    aligned = align_to_base(daily[["close"]], "1d", hourly.index, "1h")
    known_at = daily.index + pd.Timedelta(days=1)
    for row_start, value in aligned["close"].dropna().items():
        position = daily.index[daily["close"] == value][0]
        # the daily bar shown closed no later than the hourly bar it is shown on
        assert position + pd.Timedelta(days=1) <= row_start + pd.Timedelta(hours=1)
        # and it is the latest daily bar that had closed by then
        closed = known_at[known_at <= row_start + pd.Timedelta(hours=1)]
        assert position + pd.Timedelta(days=1) == closed[-1]
    sunday_open = hourly.index[hourly.index.day_name() == "Sunday"][0]
    assert (
        aligned.loc[sunday_open, "close"]
        == daily["close"][daily.index.day_name() == "Friday"].iloc[0]
    )
    assert aligned["close"].iloc[24:].notna().all()  # after the first day, never a gap


def test_crypto_days_are_whole_every_day_of_the_week() -> None:
    hourly = generate_ohlcv(
        24 * 14, timeframe="1h", seed=5, calendar="continuous", start="2024-01-01"
    )
    daily = resample_ohlcv(hourly, "1d")
    assert len(daily) == 14
    assert {"Saturday", "Sunday"} <= set(daily.index.day_name())
    counts = pd.Series(floor_to_timeframe(hourly.index, "1d")).value_counts()
    assert set(counts.tolist()) == {24}


def test_weekday_calendar_has_no_weekend_bars() -> None:
    daily = generate_ohlcv(20, timeframe="1d", seed=1, calendar="weekdays", start="2024-01-01")
    assert set(daily.index.day_name()) == {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
    weekly = resample_ohlcv(daily, "1w")
    assert len(weekly) == 4 and not weekly.isna().any().any()


def test_an_unknown_calendar_is_refused() -> None:
    with pytest.raises(ConfigError, match="calendar 'lunar' is unknown"):
        generate_ohlcv(5, calendar="lunar")  # type: ignore[arg-type]
