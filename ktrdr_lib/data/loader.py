"""Load and validate OHLCV data files.

A data directory holds one file per series, named ``{SYMBOL}_{TIMEFRAME}`` with the suffix
``.csv``, ``.csv.gz`` or ``.parquet`` (parquet needs ``pyarrow``; install the ``parquet``
extra). Files have the columns ``date, open, high, low, close, volume`` (header names are
matched case-insensitively; other columns are ignored; ``volume`` may be left out, as FX
quotes often have none, and only indicators computed from volume then fail) and one row per
bar, labelled by the bar's start in ISO-8601 (``2017-04-19T09:00:00Z``; plain ``2017-04-19``
and naive times are taken as UTC).

Every problem a user can cause is reported as a :class:`~ktrdr_lib.errors.DataError` (bad
data) or :class:`~ktrdr_lib.errors.ConfigError` (bad request) naming the file, the column,
the line and value, and what to do.

Example:
    >>> bars = load_ohlcv("AAPL", "1d", start="2012-01-03", end="2012-12-31", history_bars=50)
    >>> list(bars.columns)
    ['open', 'high', 'low', 'close', 'volume']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from ktrdr_lib.data.files import SeriesSpan, read_validated, render_stamp, series_span
from ktrdr_lib.data.timeframes import parse_timeframe, resample_ohlcv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.paths import data_dir as default_data_dir

__all__ = [
    "DATA_DIR_HINT",
    "DATA_FILE_SUFFIXES",
    "WINDOW_MIN_BARS",
    "DateBound",
    "available_series",
    "load_ohlcv",
    "locate_series",
    "require_bars",
    "require_series",
    "require_window",
    "symbols_with_timeframe",
]

DATA_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
"""Data-file suffixes, in the order preferred when a series has several files."""

DateBound: TypeAlias = str | datetime | None
"""A ``start``/``end`` bound: ISO-8601 text, a ``datetime`` (naive means UTC) or ``None``."""

_SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DATE_ONLY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
WINDOW_MIN_BARS = 10
"""The door's rule for a date window: on the base timeframe it must span at least this many
bars' time of data (the exact warm-up and sample needs are checked when the bars load)."""
DATA_DIR_HINT = "Point KTRDR_DATA_DIR (or data_dir=) at the folder that holds your data files."
"""The advice every missing-data error ends with."""


def available_series(data_dir: Path | None = None) -> list[tuple[str, str, Path]]:
    """List the data files in a data directory.

    Args:
        data_dir: the directory; defaults to :func:`ktrdr_lib.paths.data_dir`
            (``KTRDR_DATA_DIR`` or the bundled sample data).

    Returns:
        ``(symbol, timeframe, path)`` for every file named ``{SYMBOL}_{TIMEFRAME}`` with a
        data-file suffix, sorted by symbol, then timeframe (fastest first), then suffix
        preference. Other files are ignored; a missing directory gives an empty list.

    Example:
        >>> ("AAPL", "1d") in [(symbol, tf) for symbol, tf, _ in available_series()]
        True
    """
    directory = default_data_dir() if data_dir is None else Path(data_dir)
    if not directory.is_dir():
        return []
    found: list[tuple[str, str, Path]] = []
    for path in directory.iterdir():
        parsed = _parse_series_name(path.name)
        if parsed is not None and path.is_file():
            found.append((*parsed, path))
    return sorted(found, key=lambda item: (item[0], parse_timeframe(item[1]), _rank(item[2])))


def load_ohlcv(
    symbol: str,
    timeframe: str,
    *,
    data_dir: Path | None = None,
    start: DateBound = None,
    end: DateBound = None,
    history_bars: int = 0,
) -> pd.DataFrame:
    """Load one symbol's bars on one timeframe, validated.

    When the directory has no file for ``timeframe``, the bars are resampled from the slowest
    faster timeframe of the same symbol that divides it (e.g. ``1h`` → ``4h``, ``4h`` →
    ``1d``, ``1d`` → ``1w``), and ``bars.attrs["resampled_from"]`` names that timeframe.

    Args:
        symbol: the symbol, e.g. ``"AAPL"`` (letters, digits, ``.``, ``_``, ``-``; matched
            case-insensitively against file names).
        timeframe: e.g. ``"1h"`` or ``"1d"``.
        data_dir: the data directory; defaults to :func:`ktrdr_lib.paths.data_dir`.
        start: first bar start to include (UTC when no offset is given); ``None`` for the
            beginning of the file.
        end: last bar start to include (inclusive; a plain date like ``2017-04-19`` includes
            the whole day); ``None`` for the end of the file.
        history_bars: bars to keep before ``start`` as indicator warm-up (as many as exist,
            up to this number).

    Returns:
        A frame indexed by bar start (UTC ``DatetimeIndex`` named ``date``, ascending, unique)
        with float64 columns ``open, high, low, close`` and ``volume`` when the file has it.
        ``attrs`` holds ``symbol``,
        ``timeframe``, ``source`` (the file read) and, when resampled, ``resampled_from``.

    Raises:
        ConfigError: invalid symbol, timeframe, date bound or ``history_bars``.
        DataError: no usable file, a malformed file, ``start`` after ``end``, or no bars
            between ``start`` and ``end``.

    Example:
        >>> weekly = load_ohlcv("MSFT", "1w")
        >>> weekly.attrs["resampled_from"]
        '1d'
    """
    _check_symbol(symbol)
    duration = parse_timeframe(timeframe)
    if history_bars < 0:
        raise ConfigError(
            f"history_bars must be 0 or more, got {history_bars}; it is the number of "
            "warm-up bars to keep before start"
        )
    start_at = _parse_bound(start, "start", is_end=False)
    end_at = _parse_bound(end, "end", is_end=True)
    if start_at is not None and end_at is not None and start_at > end_at:
        raise DataError(
            f"start {render_stamp(start_at)} is after end {render_stamp(end_at)} for {symbol} "
            f"{timeframe}; swap them or pick an end after the start"
        )
    path, source_timeframe = locate_series(symbol, timeframe, data_dir=data_dir)
    bars = read_validated(path)
    if parse_timeframe(source_timeframe) != duration:
        bars = resample_ohlcv(bars, timeframe)
        bars.attrs["resampled_from"] = source_timeframe
    selected = _select_range(bars, start_at, end_at, history_bars, f"{symbol} {timeframe}", path)
    selected.attrs.update(symbol=symbol, timeframe=timeframe, source=str(path))
    return selected


def locate_series(symbol: str, timeframe: str, *, data_dir: Path | None = None) -> tuple[Path, str]:
    """The file ``load_ohlcv`` would read for one series, and the timeframe it holds.

    The file of ``timeframe`` itself, else of the slowest faster timeframe that divides it (to
    resample from).

    Raises:
        ConfigError: invalid symbol or timeframe.
        DataError: no such file; the message names the files looked for and what there is.
    """
    _check_symbol(symbol)
    duration = parse_timeframe(timeframe)
    directory = default_data_dir() if data_dir is None else Path(data_dir)
    series = [item for item in available_series(directory) if item[0].upper() == symbol.upper()]
    exact = [item for item in series if parse_timeframe(item[1]) == duration]
    if exact:
        return exact[0][2], exact[0][1]
    source = _resample_source(series, duration)
    if source is None:
        raise _missing_file_error(symbol, timeframe, directory, series)
    return source[2], source[1]


def require_series(
    symbols: Sequence[str], timeframes: Sequence[str], *, data_dir: Path | None = None
) -> None:
    """Check that every symbol has data for every timeframe, before anything runs.

    Raises:
        DataError: one or more series are missing; the message lists, for each, the files
            looked for and what the directory has instead.
    """
    missing: list[str] = []
    for symbol in symbols:
        for timeframe in timeframes:
            try:
                locate_series(symbol, timeframe, data_dir=data_dir)
            except DataError as error:
                missing.append(error.detail.removesuffix(f" {DATA_DIR_HINT}"))
    if len(missing) == 1:
        raise DataError(f"{missing[0]} {DATA_DIR_HINT}")
    if missing:
        listed = "\n  ".join(missing)
        raise DataError(f"{len(missing)} series have no data:\n  {listed}\n{DATA_DIR_HINT}")


def require_window(
    symbols: Sequence[str],
    timeframes: Sequence[str],
    *,
    start: DateBound = None,
    end: DateBound = None,
    base_timeframe: str | None = None,
    extra_series: Sequence[tuple[str, str]] = (),
    data_dir: Path | None = None,
) -> None:
    """Check, before anything runs, that the dates ``start``..``end`` hold bars of every series.

    The rule, kept simple: every symbol × timeframe (and every ``extra_series``, e.g. the
    context_data series indicators read) must have bars inside the window, and on
    ``base_timeframe`` the window must span at least :data:`WINDOW_MIN_BARS` bars' time of
    them. Only each file's first and last bar are read (:func:`series_span`, cached), so the
    check is cheap; a window that falls in a gap inside a file, and the exact warm-up and
    sample needs, are reported when the bars load. Without ``start`` and ``end`` there is
    nothing to check. Call :func:`require_series` first: every series must exist.

    Raises:
        ConfigError: an invalid date bound.
        DataError: one or more series have no bars in the window, or too few bars' time on the
            base timeframe; the message names each with the span its file holds.

    Example:
        >>> try:
        ...     require_window(["AAPL"], ["1d"], start="2030-01-01", end="2031-01-01")
        ... except DataError as error:
        ...     print(error)
        AAPL 1d has bars from 2000-03-01 to 2013-03-01; the requested range 2030-01-01..\
2031-01-01 has none — widen it or pick dates inside
    """
    start_at = _parse_bound(start, "start", is_end=False)
    end_at = _parse_bound(end, "end", is_end=True)
    if start_at is None and end_at is None:
        return
    if start_at is not None and end_at is not None:
        asked = f"{_render_day(start_at)}..{_render_day(end_at)}"
    else:
        asked = f"from {_render_day(start_at)} on" if end_at is None else ""
        asked = asked or f"up to {_render_day(end_at)}"
    wanted = [(symbol, tf, "") for symbol in symbols for tf in timeframes]
    wanted += [(source, tf, "context_data series ") for source, tf in extra_series]
    problems: list[str] = []
    for symbol, timeframe, kind in wanted:
        path, source_timeframe = locate_series(symbol, timeframe, data_dir=data_dir)
        span = series_span(path)
        what = f"{kind}{symbol} {timeframe}"
        if parse_timeframe(source_timeframe) != parse_timeframe(timeframe):
            what += f" (resampled from {path.name})"
        held = f"{what} has bars from {_render_span(span)}"
        overlap = span.overlap(start_at, end_at)
        if overlap is None:
            problems.append(
                f"{held}; the requested range {asked} has none — widen it or pick dates inside"
            )
        elif not kind and timeframe == base_timeframe:
            room = overlap[1] - overlap[0]
            duration = parse_timeframe(timeframe)
            if room < duration * (WINDOW_MIN_BARS - 1):
                fits = int(room // duration) + 1
                problems.append(
                    f"{held}; the requested range {asked} holds at most {fits} of them, and "
                    f"training needs at least {WINDOW_MIN_BARS} {timeframe} bars — widen it"
                )
    if len(problems) == 1:
        raise DataError(problems[0])
    if problems:
        listed = "\n  ".join(problems)
        raise DataError(
            f"{len(problems)} series have no or too few bars in the requested range "
            f"{asked}:\n  {listed}"
        )


def _render_day(stamp: pd.Timestamp | None) -> str:
    """``2019-01-02`` for a midnight (or the last instant of a day: a date-only end bound),
    else ``2019-01-02T09:00:00Z``."""
    if stamp is None:
        return "-"
    for day in (stamp, stamp + pd.Timedelta(1, unit="ns")):
        if day == day.normalize():
            return str(stamp.tz_convert("UTC").strftime("%Y-%m-%d"))
    return render_stamp(stamp)


def _render_span(span: SeriesSpan) -> str:
    return f"{_render_day(span.first)} to {_render_day(span.last)}"


def require_bars(
    bars: pd.DataFrame,
    needed: int,
    *,
    what: str,
    breakdown: Mapping[str, int] | None = None,
) -> None:
    """Raise a DataError when ``bars`` has fewer than ``needed`` rows.

    Args:
        bars: the loaded bars.
        needed: the minimum number of bars.
        what: the series, e.g. ``"AAPL 1h"``.
        breakdown: how ``needed`` is made up, e.g. ``{"warm-up": 200, "samples": 100}``,
            shown in the message as ``warm-up 200 + samples 100``.

    Raises:
        DataError: "too few bars for AAPL 1h: have N, need M (warm-up W + ...)" with the
            range the bars cover and what to do.

    Example:
        >>> require_bars(load_ohlcv("IBM", "1d"), 250, what="IBM 1d", breakdown={"warm-up": 250})
    """
    have = len(bars)
    if have >= needed:
        return
    parts = " + ".join(f"{name} {count}" for name, count in (breakdown or {}).items())
    detail = f" ({parts})" if parts else ""
    covered = "no bars at all"
    if have and isinstance(bars.index, pd.DatetimeIndex):
        covered = (
            f"the bars run from {render_stamp(bars.index[0])} to {render_stamp(bars.index[-1])}"
        )
    raise DataError(
        f"too few bars for {what}: have {have}, need {needed}{detail}; {covered}. "
        "Start earlier or end later, or lower the warm-up (history_required) or sample needs."
    )


def _parse_series_name(name: str) -> tuple[str, str] | None:
    """``(symbol, timeframe)`` from a file name like ``AAPL_1h.csv.gz``, else ``None``."""
    suffix = next((s for s in DATA_FILE_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        return None
    symbol, separator, timeframe = name[: -len(suffix)].rpartition("_")
    if not separator or _SYMBOL_PATTERN.fullmatch(symbol) is None or ".." in symbol:
        return None
    try:
        parse_timeframe(timeframe)
    except ConfigError:
        return None
    return symbol, timeframe


def _rank(path: Path) -> int:
    """Position of ``path``'s suffix in :data:`DATA_FILE_SUFFIXES`."""
    return next(i for i, s in enumerate(DATA_FILE_SUFFIXES) if path.name.endswith(s))


def _check_symbol(symbol: str) -> None:
    """Reject symbols that are not plain identifiers (no paths, no ``..``)."""
    if not isinstance(symbol, str) or _SYMBOL_PATTERN.fullmatch(symbol) is None or ".." in symbol:
        raise ConfigError(
            f"invalid symbol {symbol!r}: use letters, digits, '.', '_' or '-' starting with a "
            "letter or digit, with no path separators or '..' (e.g. AAPL, BRK.B, EURUSD)"
        )


def _parse_bound(value: DateBound, name: str, *, is_end: bool) -> pd.Timestamp | None:
    """A UTC timestamp for a ``start``/``end`` argument; a date-only ``end`` covers its day."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{name} {value!r} is not a date; use ISO-8601 such as 2017-04-19 or "
            "2017-04-19T09:00:00Z"
        ) from exc
    if pd.isna(stamp):
        raise ConfigError(f"{name} {value!r} is not a date; use ISO-8601 such as 2017-04-19")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if is_end and isinstance(value, str) and _DATE_ONLY_PATTERN.fullmatch(value.strip()):
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(1, unit="ns")
    return stamp


def _resample_source(
    series: list[tuple[str, str, Path]], duration: pd.Timedelta
) -> tuple[str, str, Path] | None:
    """The slowest series faster than ``duration`` that divides it, else ``None``."""
    candidates = [
        item
        for item in series
        if parse_timeframe(item[1]) < duration
        and duration % parse_timeframe(item[1]) == pd.Timedelta(0)
    ]
    if not candidates:
        return None
    slowest = max(parse_timeframe(item[1]) for item in candidates)
    return next(item for item in candidates if parse_timeframe(item[1]) == slowest)


def _missing_file_error(
    symbol: str, timeframe: str, directory: Path, series: list[tuple[str, str, Path]]
) -> DataError:
    """The DataError for a series with no file and nothing to resample from: what is missing,
    and what the directory has instead (the symbol's timeframes, the symbols with this
    timeframe)."""
    wanted = f"{symbol}_{timeframe}" + "{" + ",".join(DATA_FILE_SUFFIXES) + "}"
    head = f"no {timeframe} data for {symbol} in {directory} (looked for {wanted})"
    if not directory.is_dir():
        return DataError(f"{head}; that directory does not exist. {DATA_DIR_HINT}")
    everything = available_series(directory)
    if not everything:
        return DataError(f"{head}; the directory holds no data files. {DATA_DIR_HINT}")
    found: list[str] = []
    if series:
        timeframes = ", ".join(dict.fromkeys(tf for _, tf, _ in series))
        names = ", ".join(path.name for _, _, path in series)
        found.append(
            f"timeframes for {symbol}: {timeframes} (files {names}; none is a faster timeframe "
            f"that divides {timeframe}, so none can be resampled to it)"
        )
    else:
        symbols = ", ".join(sorted({item[0] for item in everything}))
        found.append(f"no file for {symbol} at all; available symbols: {symbols}")
    with_timeframe = symbols_with_timeframe(timeframe, everything)
    found.append(
        f"symbols with {timeframe} data: {', '.join(with_timeframe)}"
        if with_timeframe
        else f"no symbol has {timeframe} data (or a faster timeframe that divides it)"
    )
    return DataError(f"{head}; {'; '.join(found)}. {DATA_DIR_HINT}")


def symbols_with_timeframe(
    timeframe: str, series: list[tuple[str, str, Path]] | None = None
) -> list[str]:
    """The symbols that have ``timeframe`` data, in a file of their own or resampled from a
    faster one (as :func:`locate_series` finds it), sorted.

    Args:
        timeframe: e.g. ``"1h"``.
        series: :func:`available_series` of the data directory (default: the default one).
    """
    duration = parse_timeframe(timeframe)
    listed = available_series() if series is None else series
    by_symbol: dict[str, list[tuple[str, str, Path]]] = {}
    for item in listed:
        by_symbol.setdefault(item[0], []).append(item)
    return sorted(
        symbol
        for symbol, items in by_symbol.items()
        if any(parse_timeframe(tf) == duration for _, tf, _ in items)
        or _resample_source(items, duration) is not None
    )


def _select_range(
    bars: pd.DataFrame,
    start_at: pd.Timestamp | None,
    end_at: pd.Timestamp | None,
    history_bars: int,
    what: str,
    path: Path,
) -> pd.DataFrame:
    """Rows from ``start_at`` to ``end_at`` inclusive, plus ``history_bars`` before."""
    index = bars.index
    first = 0 if start_at is None else int(index.searchsorted(start_at, side="left"))
    stop = len(index) if end_at is None else int(index.searchsorted(end_at, side="right"))
    if first >= stop:
        asked = (
            f"{render_stamp(start_at) if start_at is not None else 'the beginning'} to "
            f"{render_stamp(end_at) if end_at is not None else 'the end'}"
        )
        raise DataError(
            f"no {what} bars from {asked}: {path} covers {render_stamp(index[0])} to "
            f"{render_stamp(index[-1])} ({len(index)} bars); choose dates inside that range"
        )
    return bars.iloc[max(0, first - history_bars) : stop].copy()
