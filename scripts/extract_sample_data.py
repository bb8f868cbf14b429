"""Extract the bundled sample data from the ``bokeh-sampledata`` package.

Reads ``stocks.csv.gz`` shipped by ``bokeh-sampledata`` (Quandl WIKI daily prices, declared
public domain by Quandl; see ``ktrdr_lib/data/sample/PROVENANCE.md``), takes AAPL, MSFT, IBM
and GOOG, and writes ``{SYMBOL}_1d.csv.gz`` files in the data-file format:

* open/high/low/close are multiplied by ``adj_close / close`` so splits and dividends do not
  show as crashes, and volume by ``close / adj_close`` (rounded to whole shares);
* prices are rounded to 6 significant digits;
* dates become ``YYYY-MM-DDT00:00:00Z``;
* rows with a non-positive or non-finite price, negative or non-finite volume, or
  ``high < low`` are dropped and counted (the 2026.1 source has none); zero-volume rows are
  kept, since a bar with no trades is still a bar;
* gzip is written with a zero timestamp, so re-running gives identical bytes.

Each written file is then loaded back with :func:`ktrdr_lib.data.loader.load_ohlcv`, so the
sample data is checked by the same validation users get.

Run from the repository root with the package importable (``make venv`` installs it)::

    python scripts/extract_sample_data.py            # writes ktrdr_lib/data/sample/
    python scripts/extract_sample_data.py --output-dir /tmp/sample
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bokeh_sampledata
import numpy as np
import pandas as pd

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.synthetic import write_ohlcv_csv
from ktrdr_lib.paths import SAMPLE_DATA_DIR

__all__ = ["SYMBOLS", "adjusted_bars", "main", "round_significant"]

SYMBOLS: tuple[str, ...] = ("AAPL", "GOOG", "IBM", "MSFT")
"""The tickers written to the sample directory."""

_SIGNIFICANT_DIGITS = 6
_PRICE_COLUMNS = ["open", "high", "low", "close"]


def round_significant(values: np.ndarray, digits: int = _SIGNIFICANT_DIGITS) -> np.ndarray:
    """Round positive finite values to ``digits`` significant digits, vectorised.

    Dividing an exact integer by an exact power of ten gives the double nearest the decimal
    result, so the rounded values print with at most ``digits`` significant digits.

    Args:
        values: positive, finite numbers.
        digits: significant digits to keep.

    Returns:
        The rounded values.
    """
    decimals = digits - 1 - np.floor(np.log10(values)).astype("int64")
    scale = 10.0 ** np.abs(decimals)
    rounded: np.ndarray = np.where(
        decimals >= 0,
        np.round(values * scale) / scale,
        np.round(values / scale) * scale,
    )
    return rounded


def adjusted_bars(source: pd.DataFrame, symbol: str) -> tuple[pd.DataFrame, int]:
    """One ticker's split/dividend-adjusted daily bars from the bokeh stocks table.

    Args:
        source: the ``stocks.csv.gz`` table (columns ``Ticker, Date, Open, High, Low, Close,
            Volume, Adj Close``).
        symbol: the ticker to take.

    Returns:
        The OHLCV frame (UTC ``DatetimeIndex``) and the number of invalid rows dropped.
    """
    rows = source[source["Ticker"] == symbol].sort_values("Date")
    factor = (rows["Adj Close"] / rows["Close"]).to_numpy()
    adjusted = {
        name: rows[name.capitalize()].to_numpy(dtype="float64") * factor for name in _PRICE_COLUMNS
    }
    adjusted["volume"] = np.round(rows["Volume"].to_numpy(dtype="float64") / factor)
    bars = pd.DataFrame(adjusted, index=pd.DatetimeIndex(rows["Date"], tz="UTC", name="date"))
    prices = bars[_PRICE_COLUMNS].to_numpy()
    valid = (
        np.isfinite(prices).all(axis=1)
        & (prices > 0).all(axis=1)
        & np.isfinite(bars["volume"].to_numpy())
        & (bars["volume"].to_numpy() >= 0)
        & (bars["high"].to_numpy() >= bars["low"].to_numpy())
    )
    kept = bars[valid].copy()
    for name in _PRICE_COLUMNS:
        kept[name] = round_significant(kept[name].to_numpy())
    return kept, int((~valid).sum())


def main(argv: list[str] | None = None) -> int:
    """Write and verify the sample files; print one summary line per symbol.

    Args:
        argv: command-line arguments (``--output-dir``); ``None`` reads ``sys.argv``.

    Returns:
        The process exit status (0).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output-dir", type=Path, default=SAMPLE_DATA_DIR)
    arguments = parser.parse_args(argv)
    output_dir: Path = arguments.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    source = pd.read_csv(bokeh_sampledata.package_path("stocks.csv.gz"))
    print(f"source: bokeh-sampledata {bokeh_sampledata.__version__}, stocks.csv.gz")
    for symbol in SYMBOLS:
        bars, dropped = adjusted_bars(source, symbol)
        path = output_dir / f"{symbol}_1d.csv.gz"
        write_ohlcv_csv(bars, path)
        loaded = load_ohlcv(symbol, "1d", data_dir=output_dir)
        first, last = loaded.index[0].date(), loaded.index[-1].date()
        print(
            f"{path.name}: {len(loaded)} bars, {first} to {last}, "
            f"{dropped} invalid rows dropped, {path.stat().st_size} bytes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
