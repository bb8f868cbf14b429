"""Reading one OHLCV file and checking every row: dates, order, numbers, price sanity; and
what span of time a file covers, read cheaply.

Every problem in a file is reported at once: one :class:`~ktrdr_lib.errors.DataError` lists
each (the file, the line, the column and the value, and what to do), the first
:data:`~ktrdr_lib.errors.MAX_PROBLEMS` of them, then how many more there are.

:func:`series_span` answers "which bars does this file hold" without reading the whole file: a
CSV's first and last data lines (a ``.csv.gz`` is decompressed as a stream of lines, never
parsed), cached per file by its modification time and size. A file the cheap read cannot make
sense of is read in full by :func:`read_validated`, so its problem is reported as precisely as
loading it would.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr_lib.data.timeframes import OHLCV_COLUMNS, PRICE_COLUMNS
from ktrdr_lib.errors import MAX_PROBLEMS, DataError

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
    """Read a data file and return it as a validated OHLCV frame.

    Every row is checked and every problem found is reported at once: one
    :class:`~ktrdr_lib.errors.DataError` lists each (file, line, column, value and what to do),
    the first :data:`~ktrdr_lib.errors.MAX_PROBLEMS` in line order, then how many more there
    are. A missing column, an empty file or one that is not a table stops the read at once
    (there are no rows to check).

    Raises:
        DataError: the file cannot be read, lacks a column, has no rows, or has bad rows.
    """
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
    problems = _Problems()
    dates = _parse_dates(raw["date"], problems)
    rows.dates = dates
    present = [name for name in OHLCV_COLUMNS if name in raw.columns]  # volume is optional
    columns = {name: _parse_numbers(raw[name], name, problems) for name in present}
    _check_order(dates, rows, problems)
    _check_values(columns, problems)
    problems.raise_if_any(rows)
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
        """``'path line 7 (2017-04-19T09:00:00Z)'`` for the row at 0-based ``position`` (no
        date when the row's date is unreadable)."""
        where = f"{self.path} {self.unit} {position + self.line_offset}"
        if self.dates is not None and not pd.isna(self.dates.iloc[position]):
            where += f" ({render_stamp(self.dates.iloc[position])})"
        return where


class _Problems:
    """Every problem the checks find, kept cheaply: per check, how many rows it flags and the
    first :data:`MAX_PROBLEMS` of them (the first ``MAX_PROBLEMS`` of the file, in line order,
    are among those)."""

    def __init__(self) -> None:
        self.total = 0
        self.found: list[tuple[int, int, Callable[[int], str]]] = []

    def add(self, positions: np.ndarray, describe: Callable[[int], str]) -> None:
        """Record the rows at ``positions`` (0-based, ascending); ``describe(position)`` says
        what is wrong there (column, value, what to do)."""
        self.total += int(positions.size)
        order = len(self.found)
        self.found.extend((int(at), order, describe) for at in positions[:MAX_PROBLEMS])

    def raise_if_any(self, rows: _RowNames) -> None:
        """One DataError listing the problems found, in line order; nothing when none was."""
        if not self.total:
            return
        shown = sorted(self.found, key=lambda item: item[:2])[:MAX_PROBLEMS]
        lines = [f"{rows.name(at)}: {describe(at)}" for at, _, describe in shown]
        if self.total == 1:
            raise DataError(lines[0])
        hidden = self.total - len(shown)
        if hidden > 0:
            lines.append(
                f"and {hidden} more problem{'s' if hidden != 1 else ''} not listed (the first "
                f"{MAX_PROBLEMS} are); fix these and load again"
            )
        listed = "\n  ".join(lines)
        raise DataError(f"{rows.path}: {self.total} problems in the file:\n  {listed}")


def _parse_dates(raw: pd.Series[str], problems: _Problems) -> pd.Series[pd.Timestamp]:
    """Parse the date column as UTC; each unreadable value is a problem (and ``NaT``)."""
    dates = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    problems.add(
        np.flatnonzero(dates.isna().to_numpy()),
        lambda at: (
            f"column date: cannot read date {raw.iloc[at]!r}; dates must be ISO-8601 "
            "UTC such as 2017-04-19T09:00:00Z or 2017-04-19"
        ),
    )
    return dates.dt.as_unit("ns")


def _parse_numbers(raw: pd.Series[float], column: str, problems: _Problems) -> np.ndarray:
    """One numeric column as float64; text, missing or infinite values are problems."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    given = raw.notna().to_numpy()
    problems.add(
        np.flatnonzero(np.isnan(values) & given),
        lambda at: (
            f"column {column} has {raw.iloc[at]!r}, which is not a number; fix or remove the row"
        ),
    )
    problems.add(
        np.flatnonzero((np.isnan(values) & ~given) | np.isinf(values)),
        lambda at: (
            f"column {column} is "
            + ("empty (NaN)" if np.isnan(values[at]) else f"{values[at]} (not finite)")
            + "; fill or remove the row"
        ),
    )
    return values


def _check_order(dates: pd.Series[pd.Timestamp], rows: _RowNames, problems: _Problems) -> None:
    """Each row whose timestamp does not come after the previous readable row's is a
    problem (a duplicate, or out of order)."""
    readable = np.flatnonzero(~dates.isna().to_numpy())
    stamps = dates.to_numpy(dtype="datetime64[ns]")[readable].astype("int64")
    steps = np.diff(stamps)
    duplicates = readable[1:][steps == 0]
    backwards = readable[1:][steps < 0]

    def before(at: int) -> int:  # the readable row before row ``at`` (asked for flagged ones)
        return int(readable[int(np.searchsorted(readable, at)) - 1])

    problems.add(
        duplicates,
        lambda at: (
            f"column date: duplicate timestamp, the same as {rows.unit} "
            f"{before(at) + rows.line_offset}; each bar must appear once — remove the duplicate row"
        ),
    )
    problems.add(
        backwards,
        lambda at: (
            "column date: timestamps are not in ascending order (this row comes before "
            f"{render_stamp(dates.iloc[before(at)])} on {rows.unit} "
            f"{before(at) + rows.line_offset}); sort the file by date"
        ),
    )


def _check_values(columns: Mapping[str, np.ndarray], problems: _Problems) -> None:
    """Non-positive prices, negative volume and high below low are problems."""
    for name in _PRICE_COLUMNS:
        _flag_rows(columns[name] <= 0, problems, f"{name} must be > 0", columns[name])
    if "volume" in columns:
        _flag_rows(columns["volume"] < 0, problems, "volume must be >= 0", columns["volume"])
    high, low = columns["high"], columns["low"]
    problems.add(
        np.flatnonzero(high < low),
        lambda at: f"high {high[at]} is below low {low[at]}; fix or remove the row",
    )


def _flag_rows(bad: np.ndarray, problems: _Problems, rule: str, values: np.ndarray) -> None:
    """Each row flagged in ``bad`` is a problem: ``rule`` and the value found."""
    problems.add(np.flatnonzero(bad), lambda at: f"{rule}, got {values[at]}; fix or remove the row")
