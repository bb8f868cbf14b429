"""Reading one OHLCV file and checking every row: dates, order, numbers, price sanity; and
what span of time a file covers, read cheaply.

Every problem is a :class:`~ktrdr_lib.errors.DataError` that names the file, the column, the
line and the value, and says what to do.

:func:`series_span` answers "which bars does this file hold" without reading the whole file: a
CSV's first and last data lines (a ``.csv.gz`` is decompressed as a stream of lines, never
parsed), cached per file by its modification time and size. A file the cheap read cannot make
sense of is read in full by :func:`read_validated`, so its problem is reported as precisely as
loading it would.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr_lib.data.timeframes import OHLCV_COLUMNS, PRICE_COLUMNS
from ktrdr_lib.errors import DataError

__all__ = ["SeriesSpan", "read_validated", "render_stamp", "series_span"]

_PRICE_COLUMNS = ("open", "high", "low", "close")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def render_stamp(stamp: pd.Timestamp) -> str:
    """``stamp`` as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return stamp.tz_convert("UTC").strftime(_TIMESTAMP_FORMAT)


@dataclass(frozen=True)
class SeriesSpan:
    """The first and last bar of a data file (UTC bar starts).

    Attributes:
        first: the first bar's start.
        last: the last bar's start.
    """

    first: pd.Timestamp
    last: pd.Timestamp

    def overlap(
        self, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The part of ``start``..``end`` (either open) that lies within this span, or
        ``None`` when they do not meet."""
        low = self.first if start is None else max(start, self.first)
        high = self.last if end is None else min(end, self.last)
        return (low, high) if low <= high else None


def series_span(path: Path) -> SeriesSpan:
    """The first and last bar of a data file, read cheaply and cached.

    A CSV's header and first and last data lines are read (a ``.csv`` by seeking to its end,
    a ``.csv.gz`` as a stream of lines); parquet files are read whole (they are compact). The
    answer is cached per file by modification time and size, so a changed file is read again.

    Raises:
        DataError: the file cannot be read, or is malformed where the cheap read looked (the
            whole file is then checked, and the message names the line and the value).

    Example:
        >>> span = series_span(locate_series("AAPL", "1d")[0])  # doctest: +SKIP
        >>> span.first < span.last  # doctest: +SKIP
        True
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}); check that the file exists") from exc
    return _cached_span(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _cached_span(path: str, mtime_ns: int, size: int) -> SeriesSpan:
    """The span of ``path`` as it was at ``mtime_ns`` and ``size`` (the cache key)."""
    del mtime_ns, size  # only part of the key
    file = Path(path)
    span = None if file.name.endswith(".parquet") else _csv_span(file)
    if span is None:  # parquet, or a CSV the cheap read could not make sense of
        index = read_validated(file).index
        span = SeriesSpan(first=index[0], last=index[-1])
    return span


def _csv_span(path: Path) -> SeriesSpan | None:
    """First and last bar from a CSV's first and last data lines; ``None`` when those lines
    are not plainly readable (the caller then validates the whole file)."""
    try:
        if path.name.endswith(".gz"):
            header, first, last = _gzip_edges(path)
        else:
            header, first, last = _plain_edges(path)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
        return None
    if header is None or first is None or last is None:
        return None
    names = [name.strip().strip('"').lower() for name in header.split(",")]
    if "date" not in names:
        return None
    column = names.index("date")
    stamps = [_line_stamp(line, column) for line in (first, last)]
    if stamps[0] is None or stamps[1] is None or stamps[0] > stamps[1]:
        return None
    return SeriesSpan(first=stamps[0], last=stamps[1])


def _line_stamp(line: str, column: int) -> pd.Timestamp | None:
    fields = line.split(",")
    if column >= len(fields):
        return None
    try:
        stamp = pd.Timestamp(fields[column].strip().strip('"'))
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _gzip_edges(path: Path) -> tuple[str | None, str | None, str | None]:
    """Header, first and last non-blank lines of a gzip-compressed CSV (one pass, no parsing)."""
    header = first = last = None
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if header is None:
                header = line
            elif first is None:
                first = last = line
            else:
                last = line
    return header, first, last


_TAIL_CHUNK = 4096


def _plain_edges(path: Path) -> tuple[str | None, str | None, str | None]:
    """Header, first and last non-blank lines of a plain CSV: the head, then the tail found by
    seeking back from the end."""
    with path.open("rb") as handle:
        head: list[str] = []
        for raw in handle:
            line = raw.decode("utf-8").strip()
            if line:
                head.append(line)
                if len(head) == 2:
                    break
        if len(head) < 2:
            return (head[0] if head else None), None, None
        end = handle.seek(0, os.SEEK_END)
        position, tail = end, b""
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
            lines = [line for line in tail.splitlines() if line.strip()]
            if len(lines) >= 2 or position == 0:  # the last line is complete
                break
        last = lines[-1].decode("utf-8").strip() if lines else None
    return head[0], head[1], last


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
