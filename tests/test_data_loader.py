"""Tests for ktrdr_lib.data.loader and the bundled sample data."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import bokeh_sampledata
import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.loader import available_series, load_ohlcv, require_bars
from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.data.timeframes import resample_ohlcv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.paths import SAMPLE_DATA_DIR

HEADER = "date,open,high,low,close,volume"
GOOD_ROWS = [
    "2017-04-19T09:00:00Z,10,11,9,10.5,100",
    "2017-04-19T10:00:00Z,10.5,12,10,11.5,200",
    "2017-04-19T11:00:00Z,11.5,11.8,11,11.2,150",
    "2017-04-19T12:00:00Z,11.2,11.4,10.8,11.0,120",
]
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "extract_sample_data.py"


def write_rows(
    folder: Path, rows: list[str], *, name: str = "TEST_1h.csv", header: str = HEADER
) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def load_error(folder: Path, rows: list[str], **kwargs: object) -> str:
    write_rows(folder, rows, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(DataError) as caught:
        load_ohlcv("TEST", "1h", data_dir=folder)
    return str(caught.value)


# --- happy paths ---------------------------------------------------------------------------


def test_loads_csv_as_utc_float_frame(tmp_path: Path) -> None:
    path = write_rows(tmp_path, GOOD_ROWS)
    bars = load_ohlcv("TEST", "1h", data_dir=tmp_path)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars.dtypes == "float64").all()
    assert isinstance(bars.index, pd.DatetimeIndex)
    assert str(bars.index.tz) == "UTC"
    assert bars.index.name == "date"
    assert bars.index[0] == pd.Timestamp("2017-04-19 09:00", tz="UTC")
    assert bars["close"].tolist() == [10.5, 11.5, 11.2, 11.0]
    assert bars.attrs["source"] == str(path)
    assert bars.attrs["symbol"] == "TEST"
    assert "resampled_from" not in bars.attrs


def test_loads_gzip_csv(tmp_path: Path) -> None:
    bars = generate_ohlcv(200, timeframe="1h", seed=1)
    write_ohlcv_csv(bars, tmp_path / "GZ_1h.csv.gz")
    pd.testing.assert_frame_equal(load_ohlcv("GZ", "1h", data_dir=tmp_path), bars, check_freq=False)


def test_loads_parquet_with_a_datetime_index(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bars = generate_ohlcv(200, timeframe="1d", seed=2)
    bars.to_parquet(tmp_path / "PQ_1d.parquet")
    pd.testing.assert_frame_equal(load_ohlcv("PQ", "1d", data_dir=tmp_path), bars, check_freq=False)


def test_loads_parquet_with_a_date_column(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bars = generate_ohlcv(50, timeframe="1d", seed=2)
    table = bars.reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    table.to_parquet(tmp_path / "PQ_1d.parquet", index=False)
    loaded = load_ohlcv("PQ", "1d", data_dir=tmp_path)
    np.testing.assert_array_equal(loaded.index.asi8, bars.index.asi8)


def test_plain_dates_are_taken_as_utc_midnight(tmp_path: Path) -> None:
    write_rows(tmp_path, ["2017-04-19,1,2,0.5,1.5,10", "2017-04-20,1.5,2,1,1.2,0"], name="D_1d.csv")
    bars = load_ohlcv("D", "1d", data_dir=tmp_path)
    assert list(bars.index) == [
        pd.Timestamp("2017-04-19", tz="UTC"),
        pd.Timestamp("2017-04-20", tz="UTC"),
    ]


def test_headers_are_case_insensitive_and_extra_columns_ignored(tmp_path: Path) -> None:
    rows = [f"{row},x" for row in GOOD_ROWS]
    write_rows(tmp_path, rows, header="Date,Open,High,Low,Close,Volume,Note")
    bars = load_ohlcv("TEST", "1h", data_dir=tmp_path)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]


def test_symbol_match_is_case_insensitive_and_timeframes_match_by_duration(tmp_path: Path) -> None:
    write_rows(tmp_path, GOOD_ROWS, name="Test_60m.csv")
    assert len(load_ohlcv("TEST", "1h", data_dir=tmp_path)) == len(GOOD_ROWS)


@pytest.fixture
def hourly_dir(tmp_path: Path) -> Path:
    write_ohlcv_csv(
        generate_ohlcv(24 * 30, timeframe="1h", seed=4, start="2024-01-01"), tmp_path / "SYN_1h.csv"
    )
    return tmp_path


def test_start_and_end_are_inclusive(hourly_dir: Path) -> None:
    bars = load_ohlcv(
        "SYN", "1h", data_dir=hourly_dir, start="2024-01-05T10:00:00Z", end="2024-01-05T20:00:00Z"
    )
    assert bars.index[0] == pd.Timestamp("2024-01-05 10:00", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2024-01-05 20:00", tz="UTC")
    assert len(bars) == 11


def test_a_date_only_end_includes_that_whole_day(hourly_dir: Path) -> None:
    bars = load_ohlcv("SYN", "1h", data_dir=hourly_dir, start="2024-01-05", end="2024-01-06")
    assert bars.index[-1] == pd.Timestamp("2024-01-06 23:00", tz="UTC")
    assert len(bars) == 48


def test_history_bars_are_kept_before_start(hourly_dir: Path) -> None:
    start = pd.Timestamp("2024-01-10", tz="UTC").to_pydatetime()
    bars = load_ohlcv(
        "SYN", "1h", data_dir=hourly_dir, start=start, end="2024-01-10", history_bars=30
    )
    assert len(bars) == 30 + 24
    assert bars.index[30] == pd.Timestamp(start)
    assert bars.index[0] == pd.Timestamp(start) - pd.Timedelta(hours=30)


def test_history_bars_stop_at_the_first_bar(hourly_dir: Path) -> None:
    bars = load_ohlcv(
        "SYN", "1h", data_dir=hourly_dir, start="2024-01-01T05:00:00Z", history_bars=100
    )
    assert bars.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_missing_timeframe_is_resampled_from_a_faster_file(hourly_dir: Path) -> None:
    bars = load_ohlcv("SYN", "4h", data_dir=hourly_dir)
    hourly = load_ohlcv("SYN", "1h", data_dir=hourly_dir)
    pd.testing.assert_frame_equal(bars, resample_ohlcv(hourly, "4h"))
    assert bars.attrs["resampled_from"] == "1h"
    assert bars.attrs["timeframe"] == "4h"


def test_resampling_uses_the_slowest_timeframe_that_divides(hourly_dir: Path) -> None:
    hourly = load_ohlcv("SYN", "1h", data_dir=hourly_dir)
    write_ohlcv_csv(resample_ohlcv(hourly, "4h"), hourly_dir / "SYN_4h.csv")
    write_ohlcv_csv(resample_ohlcv(hourly, "5h"), hourly_dir / "SYN_5h.csv")
    assert load_ohlcv("SYN", "1d", data_dir=hourly_dir).attrs["resampled_from"] == "4h"
    assert load_ohlcv("SYN", "10h", data_dir=hourly_dir).attrs["resampled_from"] == "5h"


def test_resampled_series_are_filtered_in_their_own_bars(hourly_dir: Path) -> None:
    bars = load_ohlcv(
        "SYN", "1d", data_dir=hourly_dir, start="2024-01-10", end="2024-01-12", history_bars=2
    )
    assert list(bars.index.strftime("%d")) == ["08", "09", "10", "11", "12"]


def test_available_series_lists_data_files_only(tmp_path: Path) -> None:
    for name in (
        "AAPL_1d.csv.gz",
        "AAPL_1h.csv",
        "BRK.B_1d.parquet",
        "notes.txt",
        "X_1y.csv",
        "bad.csv",
    ):
        (tmp_path / name).write_text("", encoding="utf-8")
    listed = [(symbol, tf, path.name) for symbol, tf, path in available_series(tmp_path)]
    assert listed == [
        ("AAPL", "1h", "AAPL_1h.csv"),
        ("AAPL", "1d", "AAPL_1d.csv.gz"),
        ("BRK.B", "1d", "BRK.B_1d.parquet"),
    ]
    assert available_series(tmp_path / "missing") == []


def test_default_data_dir_is_the_bundled_sample() -> None:
    symbols = {symbol for symbol, _, _ in available_series()}
    assert {"AAPL", "GOOG", "IBM", "MSFT"} <= symbols
    assert load_ohlcv("IBM", "1d").attrs["source"].startswith(str(SAMPLE_DATA_DIR))


def test_ktrdr_data_dir_overrides_the_default(
    hourly_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_DATA_DIR", str(hourly_dir))
    assert [symbol for symbol, _, _ in available_series()] == ["SYN"]
    assert len(load_ohlcv("SYN", "1h")) == 24 * 30


# --- request errors -----------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["", "../etc", "a/b", "a\\b", ".hidden", "A..B", "-x", "A B"])
def test_symbols_must_be_identifiers(tmp_path: Path, symbol: str) -> None:
    with pytest.raises(ConfigError, match="invalid symbol"):
        load_ohlcv(symbol, "1h", data_dir=tmp_path)


def test_invalid_timeframe_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'1hour'"):
        load_ohlcv("TEST", "1hour", data_dir=tmp_path)


def test_negative_history_bars_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="history_bars"):
        load_ohlcv("TEST", "1h", data_dir=tmp_path, history_bars=-1)


def test_unreadable_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'yesterday-ish'"):
        load_ohlcv("TEST", "1h", data_dir=tmp_path, start="yesterday-ish")


def test_start_after_end_is_a_data_error(hourly_dir: Path) -> None:
    with pytest.raises(DataError, match=r"start 2024-01-05T00:00:00Z is after end 2024-01-04"):
        load_ohlcv("SYN", "1h", data_dir=hourly_dir, start="2024-01-05", end="2024-01-04T00:00:00Z")


def test_empty_date_range_names_request_and_file_range(hourly_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_ohlcv("SYN", "1h", data_dir=hourly_dir, start="2025-01-01", end="2025-02-01")
    message = str(caught.value)
    assert "2025-01-01T00:00:00Z" in message
    assert "covers 2024-01-01T00:00:00Z to 2024-01-30T23:00:00Z" in message


# --- missing files ------------------------------------------------------------------------


def test_missing_timeframe_lists_the_symbols_files(tmp_path: Path) -> None:
    write_rows(tmp_path, GOOD_ROWS, name="TEST_1d.csv")
    with pytest.raises(DataError) as caught:
        load_ohlcv("TEST", "1h", data_dir=tmp_path)
    message = str(caught.value)
    assert "TEST_1d.csv" in message
    assert "KTRDR_DATA_DIR" in message
    assert str(tmp_path) in message


def test_unknown_symbol_lists_the_available_symbols(tmp_path: Path) -> None:
    write_rows(tmp_path, GOOD_ROWS, name="AAA_1h.csv")
    write_rows(tmp_path, GOOD_ROWS, name="BBB_1d.csv")
    with pytest.raises(DataError, match=r"available symbols: AAA, BBB.*KTRDR_DATA_DIR"):
        load_ohlcv("CCC", "1h", data_dir=tmp_path)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_ohlcv("TEST", "1h", data_dir=tmp_path / "nowhere")


# --- malformed files ----------------------------------------------------------------------


def test_missing_columns_are_named_with_the_columns_found(tmp_path: Path) -> None:
    rows = [",".join(row.split(",")[:3] + row.split(",")[4:]) for row in GOOD_ROWS]
    message = load_error(tmp_path, rows, header="date,open,high,close,volume")
    assert "missing column(s) low" in message
    assert "found columns date, open, high, close, volume" in message
    assert "(volume may be left out)" in message


def test_a_file_without_volume_loads_and_resamples_without_it(tmp_path: Path) -> None:
    rows = [row.rsplit(",", 1)[0] for row in GOOD_ROWS]
    write_rows(tmp_path, rows, header="date,open,high,low,close")
    bars = load_ohlcv("TEST", "1h", data_dir=tmp_path)
    assert list(bars.columns) == ["open", "high", "low", "close"]
    assert bars["close"].tolist() == [10.5, 11.5, 11.2, 11.0]
    two_hourly = load_ohlcv("TEST", "2h", data_dir=tmp_path)
    assert list(two_hourly.columns) == ["open", "high", "low", "close"]
    assert two_hourly["high"].tolist() == [11.0, 12.0, 11.4]  # buckets 08:00, 10:00, 12:00


def test_unparsable_date_names_line_and_value(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = "19/04/2017 11:00,11.5,11.8,11,11.2,150"
    message = load_error(tmp_path, rows)
    assert "TEST_1h.csv line 4" in message
    assert "'19/04/2017 11:00'" in message


def test_non_numeric_value_names_column_line_and_value(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "2017-04-19T10:00:00Z,10.5,12,10,abc,200"
    message = load_error(tmp_path, rows)
    assert "line 3 (2017-04-19T10:00:00Z)" in message
    assert "column close" in message
    assert "'abc'" in message


def test_nan_values_name_column_count_and_first_line(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "2017-04-19T10:00:00Z,10.5,12,10,11.5,"
    rows[3] = "2017-04-19T12:00:00Z,11.2,11.4,10.8,11.0,NaN"
    message = load_error(tmp_path, rows)
    assert "TEST_1h.csv: 2 problems in the file" in message
    assert "line 3 (2017-04-19T10:00:00Z): column volume is empty (NaN)" in message
    assert "line 5 (2017-04-19T12:00:00Z): column volume is empty (NaN)" in message


def test_unsorted_timestamps_name_the_first_offending_line(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[3]]
    message = load_error(tmp_path, rows)
    assert "line 4 (2017-04-19T10:00:00Z)" in message
    assert "ascending order" in message


def test_duplicate_timestamps_name_both_lines(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[1], GOOD_ROWS[2]]
    message = load_error(tmp_path, rows)
    assert "line 4 (2017-04-19T10:00:00Z): column date: duplicate timestamp" in message
    assert "line 3" in message


def test_high_below_low_reports_count_and_first_line(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "2017-04-19T10:00:00Z,10.5,9,10,11.5,200"
    rows[2] = "2017-04-19T11:00:00Z,11.5,10,11,11.2,150"
    message = load_error(tmp_path, rows)
    assert "line 3 (2017-04-19T10:00:00Z): high 9.0 is below low 10.0" in message
    assert "line 4 (2017-04-19T11:00:00Z): high 10.0 is below low 11.0" in message


def test_negative_price_is_reported(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[3] = "2017-04-19T12:00:00Z,-11.2,11.4,10.8,11.0,120"
    message = load_error(tmp_path, rows)
    assert "line 5 (2017-04-19T12:00:00Z): open must be > 0, got -11.2" in message


def test_negative_volume_is_reported(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[0] = "2017-04-19T09:00:00Z,10,11,9,10.5,-5"
    message = load_error(tmp_path, rows)
    assert "line 2 (2017-04-19T09:00:00Z): volume must be >= 0, got -5.0" in message


def test_every_problem_of_a_file_is_reported_in_one_error(tmp_path: Path) -> None:
    """high < low on one line and a NaN on another: both, each with file, line, column,
    value and what to do, in line order."""
    rows = list(GOOD_ROWS)
    rows[0] = "2017-04-19T09:00:00Z,10,8,9,10.5,100"  # high below low
    rows[2] = "2017-04-19T11:00:00Z,11.5,11.8,11,NaN,150"  # a missing close
    message = load_error(tmp_path, rows)
    lines = message.splitlines()
    assert lines[0].endswith("TEST_1h.csv: 2 problems in the file:")
    assert (
        "TEST_1h.csv line 2 (2017-04-19T09:00:00Z): high 8.0 is below low 9.0; fix or "
        in (lines[1])
    )
    assert (
        "TEST_1h.csv line 4 (2017-04-19T11:00:00Z): column close is empty (NaN); fill" in (lines[2])
    )
    assert len(lines) == 3


def test_problems_of_every_kind_are_listed_together(tmp_path: Path) -> None:
    rows = [
        "2017-04-19T09:00:00Z,10,11,9,10.5,100",
        "2017-04-19T10:00:00Z,-1,12,10,11.5,200",  # line 3: open <= 0
        "19/04/2017,11.5,11.8,11,11.2,150",  # line 4: unreadable date
        "2017-04-19T10:00:00Z,11.2,11.4,10.8,abc,120",  # line 5: duplicate date, text close
        "2017-04-19T08:00:00Z,11.2,11.4,10.8,11.0,-3",  # line 6: backwards, negative volume
    ]
    message = load_error(tmp_path, rows)
    assert "6 problems in the file" in message
    expected = [
        "line 3 (2017-04-19T10:00:00Z): open must be > 0, got -1.0",
        "line 4: column date: cannot read date '19/04/2017'",
        "line 5 (2017-04-19T10:00:00Z): column close has 'abc', which is not a number",
        "line 5 (2017-04-19T10:00:00Z): column date: duplicate timestamp, the same as line 3",
        "line 6 (2017-04-19T08:00:00Z): column date: timestamps are not in ascending order",
        "line 6 (2017-04-19T08:00:00Z): volume must be >= 0, got -3.0",
    ]
    positions = [message.find(text) for text in expected]
    missing = [text for text, at in zip(expected, positions, strict=True) if at < 0]
    assert not missing, message
    assert positions == sorted(positions)  # in line order


def test_a_file_with_many_problems_lists_the_first_hundred_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    from ktrdr_lib.errors import MAX_PROBLEMS

    stamps = pd.date_range("2020-01-01", periods=150, freq="1h", tz="UTC")
    rows = [f"{stamp.strftime('%Y-%m-%dT%H:%M:%SZ')},10,9,11,10,1" for stamp in stamps]
    message = load_error(tmp_path, rows)  # high < low on all 150 lines
    lines = message.splitlines()
    assert "150 problems in the file" in lines[0]
    assert len(lines) == 1 + MAX_PROBLEMS + 1
    assert "line 2 (2020-01-01T00:00:00Z): high 9.0 is below low 11.0" in lines[1]
    assert f"line {MAX_PROBLEMS + 1} " in lines[MAX_PROBLEMS]
    assert lines[-1].strip().startswith("and 50 more problems not listed (the first 100 are)")


def test_header_only_file_is_reported(tmp_path: Path) -> None:
    assert "no rows" in load_error(tmp_path, [])


def test_empty_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "TEST_1h.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_ohlcv("TEST", "1h", data_dir=tmp_path)


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    (tmp_path / "TEST_1h.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"TEST_1h\.csv\.gz: cannot be read"):
        load_ohlcv("TEST", "1h", data_dir=tmp_path)


# --- require_bars -------------------------------------------------------------------------


def test_require_bars_passes_when_enough(hourly_dir: Path) -> None:
    bars = load_ohlcv("SYN", "1h", data_dir=hourly_dir)
    require_bars(bars, len(bars), what="SYN 1h")


def test_require_bars_explains_the_shortfall(hourly_dir: Path) -> None:
    bars = load_ohlcv("SYN", "1h", data_dir=hourly_dir, end="2024-01-01")
    with pytest.raises(DataError) as caught:
        require_bars(bars, 250, what="SYN 1h", breakdown={"warm-up": 200, "samples": 50})
    message = str(caught.value)
    assert "too few bars for SYN 1h: have 24, need 250 (warm-up 200 + samples 50)" in message
    assert "2024-01-01T23:00:00Z" in message


# --- bundled sample data ------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["AAPL", "GOOG", "IBM", "MSFT"])
def test_sample_data_matches_the_adjusted_source(symbol: str) -> None:
    source = pd.read_csv(bokeh_sampledata.package_path("stocks.csv.gz"))
    rows = source[source["Ticker"] == symbol]
    bars = load_ohlcv(symbol, "1d")
    assert len(bars) == len(rows)
    assert bars.index[0] == pd.Timestamp(rows["Date"].min(), tz="UTC")
    np.testing.assert_allclose(bars["close"].to_numpy(), rows["Adj Close"].to_numpy(), rtol=1e-5)


def test_sample_data_has_no_split_crashes() -> None:
    bars = load_ohlcv("MSFT", "1d")
    assert bars["close"].pct_change().min() > -0.3


def _extract_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_sample_data", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_script_reproduces_the_bundled_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _extract_script().main(["--output-dir", str(tmp_path)]) == 0
    for symbol in ("AAPL", "GOOG", "IBM", "MSFT"):
        name = f"{symbol}_1d.csv.gz"
        assert (tmp_path / name).read_bytes() == (SAMPLE_DATA_DIR / name).read_bytes()
    assert "AAPL_1d.csv.gz: 3270 bars" in capsys.readouterr().out


def test_round_significant_keeps_six_digits() -> None:
    rounded = _extract_script().round_significant(
        np.array([4.186662803811, 1234567.89, 0.000123456789])
    )
    assert [repr(float(value)) for value in rounded] == ["4.18666", "1234570.0", "0.000123457"]
