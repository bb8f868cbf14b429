"""Placebo market data: seeded random walks matched to a run's real series.

A placebo run trains the same strategy, with the same settings and seeds, on data that has no
structure by construction. Each series the run reads is replaced by one with:

- the same bars (timestamps: calendar, gaps and length) as the real file;
- closes from a zero-drift random walk of the real series' per-bar log-return volatility,
  starting at the real first close;
- opens at the previous synthetic close; wicks above and below the bar's body drawn from the
  real bars' own wicks (as fractions of price);
- volumes resampled from the real volumes.

A timeframe the real run resamples from a faster file (no file of its own) is resampled from
the faster placebo file the same way, so the timeframes stay consistent. Series the strategy
reads as ``context_data`` (exogenous inputs) are copied unchanged. Equal seeds give equal
files.

Example:
    >>> directory = write_placebo_data(context, index=0, directory=tmp)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ktrdr_lib.data.loader import load_ohlcv, locate_series
from ktrdr_lib.data.synthetic import write_ohlcv_csv

if TYPE_CHECKING:
    from ktrdr_lib.pipeline.context import TrainingOperationContext

__all__ = ["placebo_bars", "placebo_seed", "write_placebo_data"]


def placebo_seed(seed: int, index: int, symbol: str, timeframe: str) -> int:
    """The seed of placebo ``index`` for one series (stable across processes)."""
    sequence = np.random.SeedSequence(
        [seed, index, zlib.crc32(symbol.upper().encode()), zlib.crc32(timeframe.encode())]
    )
    return int(sequence.generate_state(1)[0])


def placebo_bars(real: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A random walk with ``real``'s bars, volatility, wicks and volumes (see the module).

    Raises:
        ValueError: ``real`` has fewer than two bars.
    """
    n = len(real)
    if n < 2:
        raise ValueError("a placebo series needs at least two real bars")
    rng = np.random.default_rng(seed)
    close = real["close"].to_numpy(dtype=np.float64)
    opens = real["open"].to_numpy(dtype=np.float64)
    highs = real["high"].to_numpy(dtype=np.float64)
    lows = real["low"].to_numpy(dtype=np.float64)
    sigma = float(np.std(np.diff(np.log(close)), ddof=1))
    steps = rng.normal(0.0, sigma, n - 1)
    synthetic = close[0] * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    open_ = np.concatenate([[opens[0]], synthetic[:-1]])
    body_top = np.maximum(np.maximum(opens, close), 1e-12)
    body_bottom = np.maximum(np.minimum(opens, close), 1e-12)
    upper = np.log(np.maximum(highs, body_top) / body_top)
    lower = np.log(body_bottom / np.maximum(np.minimum(lows, body_bottom), 1e-12))
    top = np.maximum(open_, synthetic) * np.exp(rng.choice(upper, n))
    bottom = np.minimum(open_, synthetic) * np.exp(-rng.choice(lower, n))
    volume = rng.choice(real["volume"].to_numpy(dtype=np.float64), n)
    return pd.DataFrame(
        {"open": open_, "high": top, "low": bottom, "close": synthetic, "volume": volume},
        index=real.index,
    )


def write_placebo_data(context: TrainingOperationContext, *, index: int, directory: Path) -> Path:
    """Write placebo ``index`` of every series ``context`` reads into ``directory``.

    Returns:
        ``directory``, a data directory the run's context can point at.

    Raises:
        DataError: a real series cannot be read (as the real run would have said).
    """
    from ktrdr_lib.features.context_series import context_series_needed
    from ktrdr_lib.features.inputs import plan_inputs

    data_dir = Path(context.data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: set[tuple[str, str]] = set()
    for symbol in context.symbols:
        for timeframe in context.timeframes:
            _, held = locate_series(symbol, timeframe, data_dir=data_dir)
            if (symbol.upper(), held) in written:
                continue
            real = load_ohlcv(symbol, held, data_dir=data_dir)
            bars = placebo_bars(real, placebo_seed(context.seed, index, symbol, held))
            write_ohlcv_csv(bars, directory / f"{symbol}_{held}.csv")
            written.add((symbol.upper(), held))
    plan = plan_inputs(context.strategy, context.timeframes)
    for source, timeframe in context_series_needed(context.strategy, plan):
        path, _ = locate_series(source, timeframe, data_dir=data_dir)
        target = directory / path.name
        if not target.exists():
            shutil.copyfile(path, target)
    return directory
