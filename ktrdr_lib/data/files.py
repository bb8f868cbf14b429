"""Reading one OHLCV file and checking every row: dates, order, numbers, price sanity.

Every problem is a :class:`~ktrdr_lib.errors.DataError` that names the file, the column, the
line and the value, and says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr_lib.data.timeframes import OHLCV_COLUMNS, PRICE_COLUMNS
from ktrdr_lib.errors import DataError

__all__ = ["read_validated", "render_stamp"]

_PRICE_COLUMNS = ("open", "high", "low", "close")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def render_stamp(stamp: pd.Timestamp) -> str:
    """``stamp`` as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return stamp.tz_convert("UTC").strftime(_TIMESTAMP_FORMAT)


def read_validated(path: Path) -> pd.DataFrame:
    """Read a data file and return it as a validated OHLCV frame."""
    raw = _read_table(path)
    raw.columns = pd.Index([str(column).strip().lower() for column in raw.columns])
    missing = [name for name in ("date", *PRICE_COLUMNS) if name not in raw.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found columns "
            f"{', '.join(map(str, raw.columns)) or '(none)'}. The first line must be the "
            "header date,open,high,low,close,volume (volume may be left out)"
        )
    if raw.empty:
        raise DataError(f"{path}: the file has a header but no rows; add bars or remove it")
    rows = _RowNames(path)
    dates = _parse_dates(raw["date"], rows)
    rows.dates = dates
    present = [name for name in OHLCV_COLUMNS if name in raw.columns]  # volume is optional
    columns = {name: _parse_numbers(raw[name], name, rows) for name in present}
    _check_order(dates, rows)
    _check_values(columns, rows)
    return pd.DataFrame(columns, index=pd.DatetimeIndex(dates, name="date"))


def _read_table(path: Path) -> pd.DataFrame:
    """The file's table as read, with the date index (parquet) turned into a column."""
    if path.name.endswith(".parquet"):
        return _read_parquet(path)
    try:
        return pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{path}: the file is empty; it needs the header date,open,high,low,close,volume "
            "and one row per bar"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot be read as CSV ({exc}); check that it is a comma-separated text "
            "file (gzip-compressed when it ends in .gz)"
        ) from exc


def _read_parquet(path: Path) -> pd.DataFrame:
    """A parquet file's table; a ``DatetimeIndex`` becomes the ``date`` column."""
    try:
        table = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(
            f"{path}: reading parquet files needs pyarrow; install it "
            "(pip install 'ktrdr_lib[parquet]') or convert the file to CSV"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as parquet ({exc})") from exc
    if isinstance(table.index, pd.DatetimeIndex):
        table = table.reset_index(names="date")
    return table


class _RowNames:
    """Names rows the way the user sees them: CSV line numbers or parquet row numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.line_offset = 1 if path.name.endswith(".parquet") else 2
        self.unit = "row" if path.name.endswith(".parquet") else "line"
        self.dates: pd.Series[pd.Timestamp] | None = None

    def name(self, position: int) -> str:
        """``'path line 7 (2017-04-19T09:00:00Z)'`` for the row at 0-based ``position``."""
        where = f"{self.path} {self.unit} {position + self.line_offset}"
        if self.dates is not None:
            where += f" ({render_stamp(self.dates.iloc[position])})"
        return where


def _parse_dates(raw: pd.Series[str], rows: _RowNames) -> pd.Series[pd.Timestamp]:
    """Parse the date column as UTC; DataError naming the first unreadable value."""
    dates = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    unreadable = np.flatnonzero(dates.isna().to_numpy())
    if unreadable.size:
        first = int(unreadable[0])
        raise DataError(
            f"{rows.name(first)}: cannot read date {raw.iloc[first]!r} "
            f"({unreadable.size} unreadable date(s) in all); dates must be ISO-8601 UTC such as "
            "2017-04-19T09:00:00Z or 2017-04-19"
        )
    return dates.dt.as_unit("ns")


def _parse_numbers(raw: pd.Series[float], column: str, rows: _RowNames) -> np.ndarray:
    """One numeric column as float64; DataError for text, missing or infinite values."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    not_numbers = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
    if not_numbers.size:
        first = int(not_numbers[0])
        raise DataError(
            f"{rows.name(first)}: column {column} has {raw.iloc[first]!r}, which is not a "
            f"number ({not_numbers.size} such value(s) in the column); fix or remove those rows"
        )
    missing = np.flatnonzero(~np.isfinite(values))
    if missing.size:
        first = int(missing[0])
        raise DataError(
            f"{rows.name(first)}: column {column} has {missing.size} missing, NaN or infinite "
            f"value(s), the first here ({values[first]}); fill or remove those rows"
        )
    return values


def _check_order(dates: pd.Series[pd.Timestamp], rows: _RowNames) -> None:
    """DataError at the first row whose timestamp does not come after the previous row's."""
    steps = np.diff(dates.to_numpy(dtype="datetime64[ns]").astype("int64"))
    offending = np.flatnonzero(steps <= 0)
    if not offending.size:
        return
    position = int(offending[0]) + 1
    if steps[offending[0]] == 0:
        raise DataError(
            f"{rows.name(position)}: duplicate timestamp, the same as "
            f"{rows.unit} {position - 1 + rows.line_offset}; each bar must appear once — "
            "remove the duplicate rows"
        )
    raise DataError(
        f"{rows.name(position)}: timestamps are not in ascending order (this row comes before "
        f"{render_stamp(dates.iloc[position - 1])} on the previous {rows.unit}; "
        f"{int((steps < 0).sum())} such step(s) in all); sort the file by date"
    )


def _check_values(columns: Mapping[str, np.ndarray], rows: _RowNames) -> None:
    """DataError for non-positive prices, negative volume, or high below low."""
    for name in _PRICE_COLUMNS:
        _reject_rows(columns[name] <= 0, rows, f"{name} must be > 0", columns[name])
    if "volume" in columns:
        _reject_rows(columns["volume"] < 0, rows, "volume must be >= 0", columns["volume"])
    high, low = columns["high"], columns["low"]
    inverted = np.flatnonzero(high < low)
    if inverted.size:
        first = int(inverted[0])
        raise DataError(
            f"{rows.name(first)}: high {high[first]} is below low {low[first]} "
            f"({inverted.size} row(s) with high < low); fix or remove those rows"
        )


def _reject_rows(bad: np.ndarray, rows: _RowNames, rule: str, values: np.ndarray) -> None:
    """DataError naming the first row flagged in ``bad`` and how many there are."""
    flagged = np.flatnonzero(bad)
    if flagged.size:
        first = int(flagged[0])
        raise DataError(
            f"{rows.name(first)}: {rule}, got {values[first]} ({flagged.size} such row(s)); "
            "fix or remove those rows"
        )
