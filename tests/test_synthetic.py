"""Tests for ktrdr_lib.data.synthetic."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.labels import label_distribution, zigzag_labels


def test_same_seed_gives_identical_bars() -> None:
    pd.testing.assert_frame_equal(generate_ohlcv(2000, seed=42), generate_ohlcv(2000, seed=42))


def test_different_seeds_give_different_bars() -> None:
    first, second = generate_ohlcv(500, seed=1), generate_ohlcv(500, seed=2)
    assert not np.allclose(first["close"].to_numpy(), second["close"].to_numpy())


def test_bars_are_valid_ohlcv() -> None:
    bars = generate_ohlcv(20_000, seed=9)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars.dtypes == "float64").all()
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    volume = bars["volume"].to_numpy()
    assert (volume >= 1).all()
    np.testing.assert_array_equal(volume, np.round(volume))


def test_first_open_is_the_start_price() -> None:
    assert generate_ohlcv(5, start_price=42.5)["open"].iloc[0] == 42.5


@pytest.mark.parametrize(("timeframe", "step"), [("15m", "15min"), ("1h", "1h"), ("1d", "1D")])
def test_index_is_utc_at_the_timeframe_spacing(timeframe: str, step: str) -> None:
    bars = generate_ohlcv(100, timeframe=timeframe, start="2021-06-01")
    expected = pd.date_range("2021-06-01", periods=100, freq=step, tz="UTC", name="date")
    assert bars.index.equals(expected)


def test_weekly_bars_start_on_mondays() -> None:
    bars = generate_ohlcv(10, timeframe="1w", start="2024-01-03")
    assert set(bars.index.day_name()) == {"Monday"}


def test_long_up_and_down_runs_and_ranges_are_present() -> None:
    log_close = pd.Series(np.log(generate_ohlcv(5000, seed=0)["close"].to_numpy()))
    move_over_60 = log_close.diff(60).dropna()
    assert move_over_60.max() > 0.04
    assert move_over_60.min() < -0.04
    assert (move_over_60.abs() < 0.01).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zigzag_finds_all_three_classes(seed: int) -> None:
    close = generate_ohlcv(3000, seed=seed)["close"].to_numpy()
    counts = label_distribution(zigzag_labels(close, 0.03).labels)
    assert counts["HOLD"] > 0
    assert counts["BUY"] > 0.25 * len(close)
    assert counts["SELL"] > 0.25 * len(close)


def test_volume_rises_with_volatility() -> None:
    bars = generate_ohlcv(20_000, seed=3)
    bar_range = (bars["high"] - bars["low"]) / bars["close"]
    assert np.corrcoef(bar_range, bars["volume"])[0, 1] > 0.3


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_bars": 0}, "n_bars"),
        ({"n_bars": 10, "start_price": 0.0}, "start_price"),
        ({"n_bars": 10, "timeframe": "1y"}, "timeframe"),
        ({"n_bars": 10, "start": "not a date"}, "start"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        generate_ohlcv(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["SYN_1h.csv", "SYN_1h.csv.gz"])
def test_written_files_load_back_unchanged(tmp_path: Path, name: str) -> None:
    bars = generate_ohlcv(300, seed=5)
    write_ohlcv_csv(bars, tmp_path / name)
    loaded = load_ohlcv("SYN", "1h", data_dir=tmp_path)
    pd.testing.assert_frame_equal(loaded, bars, check_freq=False)


def test_written_csv_has_the_data_file_header_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "SYN_1d.csv"
    write_ohlcv_csv(generate_ohlcv(3, timeframe="1d", start="2017-04-19"), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "date,open,high,low,close,volume"
    assert lines[1].startswith("2017-04-19T00:00:00Z,")
    assert "." not in lines[1].rsplit(",", 1)[1]


def test_gzip_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    bars = generate_ohlcv(200, seed=8)
    write_ohlcv_csv(bars, tmp_path / "a.csv.gz")
    write_ohlcv_csv(bars, tmp_path / "b.csv.gz")
    first = (tmp_path / "a.csv.gz").read_bytes()
    assert first == (tmp_path / "b.csv.gz").read_bytes()
    assert first[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(first).startswith(b"date,open,high,low,close,volume\n")


def test_write_rejects_frames_without_ohlcv_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="volume"):
        write_ohlcv_csv(generate_ohlcv(5).drop(columns="volume"), tmp_path / "x.csv")
