"""Errors at the door: a request for data that is not there fails before anything is stored,
naming what is missing and listing what exists (library, orchestrator and CLI)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.cli.commands import EXIT_ERROR
from ktrdr_lib.data.files import read_validated, series_span
from ktrdr_lib.data.loader import WINDOW_MIN_BARS, require_series, require_window
from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import DataError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.pipeline.context import build_training_context


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """AAPL and EURUSD hourly, MSFT daily: 2000 bars each from 2020-01-01."""
    root = tmp_path / "data"
    root.mkdir()
    write_ohlcv_csv(generate_ohlcv(2000, timeframe="1h", seed=1), root / "AAPL_1h.csv")
    write_ohlcv_csv(generate_ohlcv(2000, timeframe="1h", seed=2), root / "EURUSD_1h.csv.gz")
    write_ohlcv_csv(generate_ohlcv(2000, timeframe="1d", seed=3), root / "MSFT_1d.csv")
    return root


# -- what exists, when a series is missing -------------------------------------------------------


def test_a_missing_timeframe_lists_the_symbols_that_have_it_and_the_symbols_timeframes(
    data_dir: Path,
) -> None:
    with pytest.raises(DataError) as caught:
        require_series(["MSFT"], ["1h"], data_dir=data_dir)
    message = caught.value.detail
    assert f"no 1h data for MSFT in {data_dir}" in message
    assert "symbols with 1h data: AAPL, EURUSD" in message
    assert "timeframes for MSFT: 1d" in message
    assert "KTRDR_DATA_DIR" in message


def test_a_missing_symbol_lists_the_symbols_there_are(data_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        require_series(["GOOG"], ["1d"], data_dir=data_dir)
    message = caught.value.detail
    assert "no 1d data for GOOG" in message
    assert "available symbols: AAPL, EURUSD, MSFT" in message
    # 1d can be resampled from the hourly files, so those symbols count as having it
    assert "symbols with 1d data: AAPL, EURUSD, MSFT" in message


# -- the date window -----------------------------------------------------------------------------


def test_a_window_with_no_bars_names_the_series_its_span_and_the_request(data_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        require_window(["MSFT"], ["1d"], start="2030-01-01", end="2031-01-01", data_dir=data_dir)
    assert caught.value.detail == (
        "MSFT 1d has bars from 2020-01-01 to 2025-06-22; the requested range "
        "2030-01-01..2031-01-01 has none — widen it or pick dates inside"
    )


def test_every_series_outside_the_window_is_listed(data_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        require_window(["AAPL", "EURUSD"], ["1h", "1d"], end="2019-06-30", data_dir=data_dir)
    message = caught.value.detail
    assert message.startswith("4 series have no or too few bars in the requested range up to ")
    assert "AAPL 1h has bars from 2020-01-01 to 2020-03-24T07:00:00Z" in message
    assert "EURUSD 1d (resampled from EURUSD_1h.csv.gz) has bars from" in message


def test_a_window_too_short_on_the_base_timeframe_is_refused(data_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        require_window(
            ["AAPL"],
            ["1h", "1d"],
            start="2020-02-01T00:00:00Z",
            end="2020-02-01T05:00:00Z",
            base_timeframe="1h",
            data_dir=data_dir,
        )
    assert "holds at most 6 of them" in caught.value.detail
    assert f"training needs at least {WINDOW_MIN_BARS} 1h bars" in caught.value.detail
    # half a day is enough hours, and the 1d series, which only adds context, needs no more
    require_window(
        ["AAPL"],
        ["1h", "1d"],
        start="2020-02-01T00:00:00Z",
        end="2020-02-01T12:00:00Z",
        base_timeframe="1h",
        data_dir=data_dir,
    )


def test_a_window_overlapping_the_data_passes(data_dir: Path) -> None:
    require_window(
        ["AAPL", "EURUSD", "MSFT"],
        ["1d"],
        start="2019-01-01",
        end="2020-01-12",
        base_timeframe="1d",
        data_dir=data_dir,
    )
    require_window(["AAPL"], ["1h"], start=None, end=None, data_dir=data_dir / "nothing")


def test_the_context_refuses_dates_without_bars_and_says_which(
    small_strategy_file: Path, data_dir: Path
) -> None:
    with pytest.raises(DataError, match=r"AAPL 1h has bars from 2020-01-01 to 2020-03-24"):
        build_training_context(
            small_strategy_file,
            data_dir=data_dir,
            symbols=["AAPL"],
            start_date="2030-01-01",
            end_date="2031-01-01",
        )


def test_the_strategys_own_dates_are_checked_too(small_strategy_file: Path, data_dir: Path) -> None:
    text = small_strategy_file.read_text(encoding="utf-8")
    dated = text.replace(
        "  history_required: 30\n", "  history_required: 30\n  end_date: 2001-01-01\n"
    )
    small_strategy_file.write_text(dated, encoding="utf-8")
    with pytest.raises(DataError, match=r"requested range up to 2001-01-01 has none"):
        build_training_context(small_strategy_file, data_dir=data_dir, symbols=["AAPL"])


def test_start_training_with_dates_without_bars_stores_nothing(
    small_strategy_file: Path, data_dir: Path, tmp_path: Path
) -> None:
    orch = TrainingOrchestrator(
        home=tmp_path / "home", store=OperationStore(":memory:"), data_dir=data_dir
    )
    try:
        with pytest.raises(DataError, match="has none — widen it"):
            orch.start_training(
                small_strategy_file,
                symbols=["AAPL"],
                start_date="2030-01-01",
                end_date="2031-01-01",
            )
        with pytest.raises(DataError, match="symbols with 1h data: AAPL, EURUSD"):
            orch.start_training(small_strategy_file, symbols=["MSFT"])
        assert orch.list_operations().total_count == 0
    finally:
        orch.shutdown()


# -- the cheap span of a file ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SYN_1h.csv", "SYN_1h.csv.gz", "SYN_1h.parquet"])
def test_the_span_is_the_first_and_last_bar_as_loading_reads_them(
    tmp_path: Path, name: str
) -> None:
    bars = generate_ohlcv(500, timeframe="1h", seed=5)
    path = tmp_path / name
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
        bars.to_parquet(path)
    else:
        write_ohlcv_csv(bars, path)
    span = series_span(path)
    index = read_validated(path).index
    assert (span.first, span.last) == (index[0], index[-1])


def test_the_span_follows_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "SYN_1h.csv"
    write_ohlcv_csv(generate_ohlcv(100, timeframe="1h", seed=5), path)
    before = series_span(path)
    write_ohlcv_csv(generate_ohlcv(300, timeframe="1h", seed=5), path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    after = series_span(path)
    assert after.first == before.first and after.last > before.last


def test_blank_lines_and_naive_dates_do_not_fool_the_span(tmp_path: Path) -> None:
    path = tmp_path / "SYN_1d.csv.gz"
    rows = "Date,Open,High,Low,Close\n2021-01-04,1,2,0.5,1.5\n2021-01-05,1,2,0.5,1.5\n\n\n"
    path.write_bytes(gzip.compress(rows.encode()))
    span = series_span(path)
    assert (str(span.first), str(span.last)) == (
        "2021-01-04 00:00:00+00:00",
        "2021-01-05 00:00:00+00:00",
    )


def test_a_malformed_file_is_reported_at_the_door_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "SYN_1h.csv"
    path.write_text(
        "date,open,high,low,close\n2021-01-04T00:00:00Z,1,2,0.5,1.5\nlast week,1,2,0.5,1.5\n",
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"SYN_1h.csv line 3: column date: cannot read date 'last week'"
    ):
        require_window(["SYN"], ["1h"], start="2021-01-01", data_dir=tmp_path)


# -- the CLI ---------------------------------------------------------------------------------


def test_the_cli_exits_with_the_message_before_training_starts(
    small_strategy_file: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", str(small_strategy_file), "--local", "--data-dir", str(data_dir)]
    argv += ["--symbols", "AAPL", "--start-date", "2030-01-01", "--end-date", "2031-01-01"]
    assert main(argv) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err == (
        "error: AAPL 1h has bars from 2020-01-01 to 2020-03-24T07:00:00Z; the requested range "
        "2030-01-01..2031-01-01 has none — widen it or pick dates inside\n"
    )
    assert "[load_data]" not in captured.err and captured.out == ""
    assert main(["operations", "list", "--local"]) == 0
    assert "op_training_" not in capsys.readouterr().out  # nothing was stored
