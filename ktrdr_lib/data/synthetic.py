"""Deterministic synthetic OHLCV bars, and writing bars in the data-file format.

The generator switches between three regimes — up-trend, down-trend and range — each with
its own drift and volatility, so that ZigZag labelling finds BUY, HOLD and SELL bars. Regime
lengths are random (at least ``_MIN_REGIME_BARS`` bars, about ``_MEAN_REGIME_BARS`` on
average) and consecutive regimes always differ. Drift and volatility are per bar, whatever
the timeframe.

``calendar`` gives the bars the trading hours of a market: ``continuous`` (every bar, as crypto
trades around the clock), ``fx`` (no bar lies wholly inside the weekend close from Friday 22:00
to Sunday 22:00 UTC, as FX pairs trade) or ``weekdays`` (Monday to Friday bars only).

Example:
    >>> bars = generate_ohlcv(500, timeframe="1h", seed=7)
    >>> list(bars.columns)
    ['open', 'high', 'low', 'close', 'volume']
    >>> bool((bars["high"] >= bars[["open", "close"]].max(axis=1)).all())
    True
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ktrdr_lib.data.timeframes import OHLCV_COLUMNS, floor_to_timeframe, parse_timeframe
from ktrdr_lib.errors import ConfigError, DataError

__all__ = ["CALENDARS", "Calendar", "generate_ohlcv", "write_ohlcv_csv"]

Calendar = Literal["continuous", "fx", "weekdays"]
CALENDARS: tuple[Calendar, ...] = ("continuous", "fx", "weekdays")
_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")
_WEEK = pd.Timedelta(weeks=1)
_FX_CLOSE = pd.Timedelta(days=4, hours=22)  # Friday 22:00 UTC, from Monday 00:00
_FX_OPEN = pd.Timedelta(days=6, hours=22)  # Sunday 22:00 UTC
_WEEKEND = pd.Timedelta(days=5)  # Saturday 00:00 UTC

# Regimes, in this order: up-trend, down-trend, range.
_REGIME_DRIFT = np.array([0.0012, -0.0012, 0.0])
_REGIME_VOLATILITY = np.array([0.006, 0.009, 0.004])
_MIN_REGIME_BARS = 10
_MEAN_REGIME_BARS = 80
_GAP_TO_VOLATILITY = 0.1
_WICK_TO_VOLATILITY = 0.5
_BASE_VOLUME = 1000.0
_VOLUME_NOISE_SIGMA = 0.25
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def generate_ohlcv(
    n_bars: int,
    *,
    timeframe: str = "1h",
    seed: int = 0,
    start: str = "2020-01-01",
    start_price: float = 100.0,
    calendar: Calendar = "continuous",
) -> pd.DataFrame:
    """Generate regime-switching OHLCV bars, the same for the same arguments.

    Args:
        n_bars: number of bars (>= 1).
        timeframe: bar spacing, e.g. ``"1h"`` or ``"1d"``.
        seed: random seed; equal seeds give identical frames.
        start: first bar's start (UTC unless it carries an offset); floored to the start of its
            ``timeframe`` bucket, so ``1w`` bars start on Mondays.
        start_price: the first bar's open (> 0).
        calendar: ``continuous``, ``fx`` or ``weekdays`` (see the module docstring); the
            frame still has ``n_bars`` bars, spread over more calendar time.

    Returns:
        A frame with a UTC ``DatetimeIndex`` named ``date`` and float64 columns ``open, high,
        low, close, volume``; prices are positive, ``high >= max(open, close)``,
        ``low <= min(open, close)``, and volume is a positive whole number that rises with
        volatility.

    Raises:
        ConfigError: ``n_bars < 1``, ``start_price <= 0``, or a bad ``timeframe``, ``start``
            or ``calendar``.

    Example:
        >>> generate_ohlcv(3, timeframe="1d", start="2024-01-01").index[-1]
        Timestamp('2024-01-03 00:00:00+0000', tz='UTC')
    """
    duration = parse_timeframe(timeframe)
    if n_bars < 1:
        raise ConfigError(f"generate_ohlcv: n_bars must be at least 1, got {n_bars}")
    if not start_price > 0:
        raise ConfigError(f"generate_ohlcv: start_price must be > 0, got {start_price}")
    if calendar not in CALENDARS:
        raise ConfigError(
            f"generate_ohlcv: calendar {calendar!r} is unknown; use one of {', '.join(CALENDARS)}"
        )
    rng = np.random.default_rng(seed)
    regimes = _regime_per_bar(rng, n_bars)
    volatility = _REGIME_VOLATILITY[regimes]
    shocks = rng.standard_normal(n_bars) * volatility
    log_close = np.log(start_price) + np.cumsum(_REGIME_DRIFT[regimes] + shocks)
    close = np.exp(log_close)
    gaps = np.exp(rng.standard_normal(n_bars) * volatility * _GAP_TO_VOLATILITY)
    open_ = np.concatenate(([start_price], close[:-1] * gaps[1:]))
    wick_up = np.exp(np.abs(rng.standard_normal(n_bars)) * volatility * _WICK_TO_VOLATILITY)
    wick_down = np.exp(-np.abs(rng.standard_normal(n_bars)) * volatility * _WICK_TO_VOLATILITY)
    activity = (volatility / _REGIME_VOLATILITY.min()) * (1.0 + np.abs(shocks) / volatility)
    noise = rng.lognormal(0.0, _VOLUME_NOISE_SIGMA, n_bars)
    volume = np.maximum(np.round(_BASE_VOLUME * activity * noise), 1.0)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * wick_up,
            "low": np.minimum(open_, close) * wick_down,
            "close": close,
            "volume": volume,
        },
        index=_bar_starts(start, timeframe, duration, n_bars, calendar),
    )


def write_ohlcv_csv(bars: pd.DataFrame, path: Path | str) -> None:
    """Write bars in the data-file format that ``load_ohlcv`` reads.

    The header is ``date,open,high,low,close,volume``, dates are ``YYYY-MM-DDTHH:MM:SSZ``
    (UTC), and volume is written as whole numbers when every value is whole. A path ending in
    ``.gz`` is gzip-compressed with a zero timestamp, so equal frames give identical bytes.

    Args:
        bars: OHLCV frame with a ``DatetimeIndex`` of bar starts (naive means UTC).
        path: destination file; its directory must exist.

    Raises:
        DataError: ``bars`` lacks an OHLCV column or a ``DatetimeIndex``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_ohlcv_csv(generate_ohlcv(5), Path(folder) / "SYN_1h.csv.gz")
    """
    text = _to_csv_text(bars)
    target = Path(path)
    if target.name.endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
            compressed.write(text.encode("utf-8"))
        target.write_bytes(buffer.getvalue())
    else:
        target.write_text(text, encoding="utf-8", newline="")


def _regime_per_bar(rng: np.random.Generator, n_bars: int) -> np.ndarray:
    """Regime code (0 up, 1 down, 2 range) for each bar; consecutive regimes differ."""
    n_segments = n_bars // _MIN_REGIME_BARS + 1
    extra = rng.geometric(1.0 / (_MEAN_REGIME_BARS - _MIN_REGIME_BARS + 1), n_segments) - 1
    lengths = _MIN_REGIME_BARS + extra
    steps = rng.integers(1, 3, n_segments)
    steps[0] = rng.integers(0, 3)
    segment_regimes = np.cumsum(steps) % 3
    return np.repeat(segment_regimes, lengths)[:n_bars]


def _bar_starts(
    start: str, timeframe: str, duration: pd.Timedelta, n_bars: int, calendar: Calendar
) -> pd.DatetimeIndex:
    """``n_bars`` UTC bar starts from ``start``'s timeframe bucket, ``duration`` apart, skipping
    the bars ``calendar`` has no trading in."""
    try:
        first = pd.Timestamp(start)
    except ValueError as exc:
        raise ConfigError(
            f"generate_ohlcv: start {start!r} is not a date; use ISO-8601, e.g. 2020-01-01"
        ) from exc
    first_bucket = floor_to_timeframe(pd.DatetimeIndex([first]), timeframe)[0]
    starts = pd.DatetimeIndex([], tz="UTC")
    span = n_bars
    while len(starts) < n_bars:  # a closed calendar needs more slots than bars
        offsets = pd.to_timedelta(np.arange(span) * duration.value, unit="ns")
        grid = pd.DatetimeIndex(first_bucket + offsets)
        starts = grid[_trading(grid, duration, calendar)]
        span *= 2
    return pd.DatetimeIndex(starts[:n_bars], name="date")


def _trading(starts: pd.DatetimeIndex, duration: pd.Timedelta, calendar: Calendar) -> np.ndarray:
    """Which bars of ``starts`` the calendar trades in (a bar counts when any of it does)."""
    if calendar == "continuous":
        return np.ones(len(starts), dtype=bool)
    in_week = (starts - _MONDAY) % _WEEK
    if calendar == "weekdays":
        return np.asarray(in_week < _WEEKEND)
    ends = in_week + duration
    return np.asarray(~((in_week >= _FX_CLOSE) & (ends <= _FX_OPEN)))


def _to_csv_text(bars: pd.DataFrame) -> str:
    """Render ``bars`` as data-file CSV text."""
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError(
            "write_ohlcv_csv: bars need a DatetimeIndex of bar starts, "
            f"got {type(bars.index).__name__}"
        )
    missing = [name for name in OHLCV_COLUMNS if name not in bars.columns]
    if missing:
        raise DataError(
            f"write_ohlcv_csv: bars lack columns {missing} (found {list(bars.columns)})"
        )
    index = bars.index
    utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    table = bars.loc[:, list(OHLCV_COLUMNS)].copy()
    volume = table["volume"].to_numpy(dtype="float64")
    if np.all(np.isfinite(volume)) and np.all(volume == np.round(volume)):
        table["volume"] = volume.astype("int64")
    table.insert(0, "date", utc.strftime(_DATE_FORMAT))
    return table.to_csv(index=False, lineterminator="\n")
