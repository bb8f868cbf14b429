"""Series from a strategy's ``context_data`` that indicators are computed on (``data_source``).

An indicator with ``data_source: <id>`` reads the bars of another series instead of the
instrument's: a second pair, a rate, an index. The series are not fetched from their provider;
they are read from the data directory like any symbol, as ``{SOURCE_ID}_{TIMEFRAME}.csv`` (or
``.csv.gz`` / ``.parquet``, or a faster timeframe's file to resample). An indicator computed on
a series is aligned onto the instrument's bars of the same timeframe by forward fill: each bar
sees the latest series bar that had closed when it closed (no look-ahead).

The series' timeframe is the ``context_data`` entry's ``timeframe`` when it gives one (a daily
rate read by an hourly strategy), else the timeframe the indicator is computed on.

Example:
    >>> needed = context_series_needed(spec, plan)                 # doctest: +SKIP
    >>> needed                                                      # doctest: +SKIP
    {('fred_DGS10', '1d'): ['carry_rsi']}
"""

from __future__ import annotations

from pathlib import Path

from ktrdr_lib.data.loader import DATA_DIR_HINT, locate_series
from ktrdr_lib.errors import DataError
from ktrdr_lib.features.inputs import InputPlan
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = [
    "SeriesKey",
    "context_series_needed",
    "require_context_series",
    "series_key",
]

SeriesKey = tuple[str, str]
"""``(source id, timeframe of the series)``: one series file."""


def series_key(spec: StrategySpec, indicator_id: str, timeframe: str) -> SeriesKey | None:
    """The series ``indicator_id`` reads when computed on ``timeframe``; ``None`` when it reads
    the instrument's own bars."""
    source = spec.indicators[indicator_id].data_source
    if source is None:
        return None
    for entry in spec.context_data:
        ids = entry.source_ids()
        if entry.timeframe and (ids is None or source in ids):
            return source, entry.timeframe
    return source, timeframe


def context_series_needed(spec: StrategySpec, plan: InputPlan) -> dict[SeriesKey, list[str]]:
    """Every series the plan's indicators read, with the indicators that read it."""
    needed: dict[SeriesKey, list[str]] = {}
    for timeframe in plan.outputs_by_timeframe:
        for indicator_id in plan.indicator_ids(timeframe):
            key = series_key(spec, indicator_id, timeframe)
            if key is not None and indicator_id not in needed.setdefault(key, []):
                needed[key].append(indicator_id)
    return needed


def require_context_series(
    spec: StrategySpec, plan: InputPlan, *, data_dir: Path | None = None
) -> None:
    """Check, before anything runs, that every series the strategy's indicators read is there.

    Raises:
        DataError: one or more series files are missing; the message names each series, the
            indicators that read it, the files looked for, and where to put them.
    """
    missing: list[str] = []
    for (source, timeframe), readers in context_series_needed(spec, plan).items():
        try:
            locate_series(source, timeframe, data_dir=data_dir)
        except DataError as error:
            names = ", ".join(repr(reader) for reader in readers)
            detail = error.detail.removesuffix(f" {DATA_DIR_HINT}")
            missing.append(f"series {source!r} ({timeframe}), read by {names}: {detail}")
    if missing:
        listed = "\n  ".join(missing)
        raise DataError(
            f"{len(missing)} context_data series have no data:\n  {listed}\n"
            "context_data series are not downloaded from their provider: put each one's bars "
            "in the data directory as {SOURCE_ID}_{TIMEFRAME}.csv (columns date, open, high, "
            f"low, close, volume), as for any symbol. {DATA_DIR_HINT}"
        )
