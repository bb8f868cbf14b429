"""Timeframes: parsing, ordering, OHLCV resampling and look-ahead-free alignment.

A timeframe is written ``Nm``, ``Nh``, ``Nd`` or ``Nw`` (minutes, hours, days, weeks), e.g.
``5m``, ``1h``, ``4h``, ``1d``, ``1w``. Every bar is labelled by its *start*; a bar starting at
``t`` on timeframe ``D`` covers ``[t, t + D)`` and is only known once it closes, at ``t + D``.

Buckets are anchored on the Unix epoch (``1970-01-01T00:00Z``), so ``4h`` buckets start at
00:00, 04:00, ... UTC and ``1d`` buckets at midnight UTC; week-based buckets are anchored on
Monday ``1970-01-05`` so that weekly bars start on Mondays.

Example:
    >>> import pandas as pd
    >>> parse_timeframe("4h")
    Timedelta('0 days 04:00:00')
    >>> sort_timeframes(["1d", "5m", "1h"])
    ['5m', '1h', '1d']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ktrdr_lib.errors import ConfigError, DataError

__all__ = [
    "OHLCV_COLUMNS",
    "PRICE_COLUMNS",
    "align_to_base",
    "aligned_positions",
    "floor_to_timeframe",
    "parse_timeframe",
    "resample_ohlcv",
    "sort_timeframes",
]

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
"""The columns every bar has; ``volume`` may be absent (FX quotes often have none)."""
"""The columns of every OHLCV frame, in order."""

_TIMEFRAME_PATTERN = re.compile(r"([1-9][0-9]*)([mhdw])")
_UNIT_DURATIONS = {
    "m": pd.Timedelta(minutes=1),
    "h": pd.Timedelta(hours=1),
    "d": pd.Timedelta(days=1),
    "w": pd.Timedelta(weeks=1),
}
_MAX_BAR = pd.Timedelta(weeks=52)  # a larger count would overflow, or leave no bars to train on
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_FIRST_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")
_WEEK = pd.Timedelta(weeks=1)
_AGGREGATIONS = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def parse_timeframe(tf: str) -> pd.Timedelta:
    """Turn a timeframe string into its duration.

    Args:
        tf: ``Nm``, ``Nh``, ``Nd`` or ``Nw`` with ``N >= 1`` (e.g. ``"15m"``, ``"1d"``).

    Returns:
        The duration of one bar.

    Raises:
        ConfigError: ``tf`` is not of that form, or its bar lasts more than 52 weeks.

    Example:
        >>> parse_timeframe("15m")
        Timedelta('0 days 00:15:00')
    """
    match = _TIMEFRAME_PATTERN.fullmatch(tf) if isinstance(tf, str) else None
    if match is None:
        raise ConfigError(
            f"invalid timeframe {tf!r}: use a positive whole number followed by m (minutes), "
            "h (hours), d (days) or w (weeks), e.g. 5m, 15m, 1h, 4h, 1d, 1w"
        )
    count, unit = int(match.group(1)), match.group(2)
    if count > _MAX_BAR // _UNIT_DURATIONS[unit]:
        raise ConfigError(
            f"invalid timeframe {tf!r}: a bar lasts at most 52 weeks (52w, 364d); use a "
            "shorter one, e.g. 1h, 1d or 1w"
        )
    return _UNIT_DURATIONS[unit] * count


def sort_timeframes(tfs: Iterable[str]) -> list[str]:
    """Order timeframes fastest first (``["1d", "1h"]`` → ``["1h", "1d"]``).

    Args:
        tfs: timeframe strings; each must parse with :func:`parse_timeframe`.

    Returns:
        The same strings, sorted by duration (stable for equal durations).

    Raises:
        ConfigError: one of them is not a valid timeframe.
    """
    return sorted(tfs, key=parse_timeframe)


def floor_to_timeframe(timestamps: pd.DatetimeIndex, timeframe: str) -> pd.DatetimeIndex:
    """Map each timestamp to the start of the ``timeframe`` bucket containing it.

    Buckets are anchored on the Unix epoch, or on Monday 1970-01-05 for week-based timeframes.

    Args:
        timestamps: UTC (or naive, taken as UTC) timestamps.
        timeframe: the bucket size, e.g. ``"4h"``.

    Returns:
        The bucket starts, UTC, same length as ``timestamps``.
    """
    duration = parse_timeframe(timeframe)
    origin = _FIRST_MONDAY if duration % _WEEK == pd.Timedelta(0) else _EPOCH
    utc = _as_utc(timestamps)
    return (origin + ((utc - origin) // duration) * duration).as_unit("ns")


def resample_ohlcv(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate OHLCV bars onto a slower timeframe.

    Open is the first open, high the max, low the min, close the last close and volume the sum
    of the bars in each bucket. Buckets are labelled by their start (see
    :func:`floor_to_timeframe`); buckets with no bars are dropped, not filled. The first and
    last buckets may be partial when the data starts or ends mid-bucket.

    Args:
        bars: OHLCV frame with a sorted ``DatetimeIndex`` of bar starts (naive means UTC).
        timeframe: the target timeframe; must not be faster than the bars' spacing.

    Returns:
        A new OHLCV frame (float64 columns, index named ``date``).

    Raises:
        ConfigError: ``timeframe`` is invalid or faster than the bars (upsampling).
        DataError: ``bars`` lacks an OHLCV column, or its index is not a sorted
            ``DatetimeIndex``.

    Example:
        >>> from ktrdr_lib.data.synthetic import generate_ohlcv
        >>> hourly = generate_ohlcv(48, timeframe="1h", start="2024-01-01")
        >>> len(resample_ohlcv(hourly, "1d"))
        2
    """
    duration = parse_timeframe(timeframe)
    index = _require_datetime_index(bars, "resample_ohlcv")
    missing = [name for name in PRICE_COLUMNS if name not in bars.columns]
    if missing:
        raise DataError(
            f"cannot resample to {timeframe}: missing columns {missing} "
            f"(found {list(bars.columns)}); pass a frame from load_ohlcv or generate_ohlcv"
        )
    if not index.is_monotonic_increasing:
        raise DataError(
            f"cannot resample to {timeframe}: the bars are not sorted by time; sort them first"
        )
    _reject_upsampling(index, duration, timeframe)
    buckets = floor_to_timeframe(index, timeframe).rename("date")
    columns = [name for name in OHLCV_COLUMNS if name in bars.columns]  # volume is optional
    grouped = bars.loc[:, columns].groupby(buckets, sort=True)
    return grouped.agg({name: _AGGREGATIONS[name] for name in columns}).astype("float64")


def align_to_base(
    frame: pd.DataFrame,
    timeframe: str,
    base_index: pd.Index,
    base_timeframe: str,
) -> pd.DataFrame:
    """Put values computed on ``timeframe`` onto the base timeframe's rows, without look-ahead.

    A ``timeframe`` bar starting at ``t`` with duration ``D`` is known only at ``t + D``; a
    base bar starting at ``s`` with duration ``d`` closes at ``s + d``. Base row ``s`` therefore
    gets the latest ``frame`` row with ``t + D <= s + d``. Base rows before the first such bar
    get NaN. (A plain ``reindex(...).ffill()`` would hand base rows the values of the slower
    bar they sit inside, i.e. values computed from prices that are still in the future.)

    Args:
        frame: values indexed by the slower timeframe's bar starts (sorted, unique).
        timeframe: the timeframe ``frame`` was computed on.
        base_index: the base timeframe's bar starts (a ``DatetimeIndex``; naive means UTC).
        base_timeframe: the base timeframe.

    Returns:
        A frame with ``frame``'s columns and ``base_index`` as its index. Columns that get NaN
        rows are upcast (integers to float).

    Raises:
        ConfigError: a timeframe is invalid.
        DataError: ``frame``'s index is not a sorted, unique ``DatetimeIndex``, or
            ``base_index`` is not a ``DatetimeIndex``.

    Example:
        >>> import pandas as pd
        >>> daily = pd.DataFrame(
        ...     {"rsi": [40.0, 60.0]},
        ...     index=pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC"),
        ... )
        >>> hours = pd.date_range("2024-01-02 22:00", periods=2, freq="h", tz="UTC")
        >>> align_to_base(daily, "1d", hours, "1h")["rsi"].tolist()
        [40.0, 60.0]
    """
    parse_timeframe(timeframe)  # a bad timeframe is a ConfigError before any data check
    parse_timeframe(base_timeframe)
    index = _require_datetime_index(frame, "align_to_base")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataError(
            f"align_to_base: the {timeframe} frame's index must be sorted and unique; "
            "sort it and drop duplicate timestamps first"
        )
    if not isinstance(base_index, pd.DatetimeIndex):
        raise DataError(
            f"align_to_base: base_index must be a DatetimeIndex of {base_timeframe} bar starts, "
            f"got {type(base_index).__name__}"
        )
    positions = aligned_positions(index, timeframe, base_index, base_timeframe)
    aligned = frame.reset_index(drop=True).reindex(positions)
    aligned.index = base_index
    return aligned


def aligned_positions(
    slow_index: pd.DatetimeIndex,
    timeframe: str,
    base_index: pd.DatetimeIndex,
    base_timeframe: str,
) -> np.ndarray:
    """For each base bar, the position of the latest ``timeframe`` bar known when it closes.

    The rule of :func:`align_to_base`, as positions into ``slow_index`` (``-1`` where no slower
    bar has closed yet), so callers can copy columns of any array without building frames.

    Args:
        slow_index: the slower timeframe's bar starts, sorted and unique.
        timeframe: the slower timeframe.
        base_index: the base timeframe's bar starts.
        base_timeframe: the base timeframe.

    Returns:
        ``int64`` positions, one per base bar.
    """
    known_at = (_as_utc(slow_index) + parse_timeframe(timeframe)).asi8
    base_close = (_as_utc(base_index) + parse_timeframe(base_timeframe)).asi8
    positions: np.ndarray = np.searchsorted(known_at, base_close, side="right") - 1
    return positions


def _require_datetime_index(frame: pd.DataFrame, caller: str) -> pd.DatetimeIndex:
    """``frame``'s index as a UTC, nanosecond ``DatetimeIndex``, or a DataError."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"{caller}: the frame needs a DatetimeIndex of bar starts, "
            f"got {type(frame.index).__name__}; pass a frame from load_ohlcv or generate_ohlcv"
        )
    return _as_utc(frame.index)


def _as_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` in UTC at nanosecond resolution; naive timestamps are taken as UTC."""
    utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return utc.as_unit("ns")


def _reject_upsampling(index: pd.DatetimeIndex, duration: pd.Timedelta, timeframe: str) -> None:
    """Raise ConfigError when the bars are spaced wider than ``duration`` everywhere."""
    if len(index) < 2:
        return
    spacing = pd.Timedelta(np.diff(index.asi8).min())
    if spacing > duration:
        raise ConfigError(
            f"cannot resample to {timeframe}: the bars are at least {spacing} apart, so "
            f"{timeframe} would be an upsample; choose a timeframe at least as slow as the data"
        )
