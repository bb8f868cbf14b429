"""Features benchmark: the whole indicator catalog + fuzzy + ZigZag, side by side with references.

Run as ``python bench/features.py [--bars N] [--reference-bars M]``. One run times, on the same
random-walk OHLCV bars:

- **ours**: every catalog indicator (all its outputs) with its default parameters, three fuzzy
  sets over each indicator's primary output, and ZigZag labels, on all ``N`` bars;
- **(a) reference**: the indicators that have a plain pandas statement of their formula
  (rolling windows, ``ewm``) plus fuzzy sets and ZigZag written with Python loops. It is slow,
  so it runs on the first ``M`` bars and rates are compared in bars per second; its results are
  checked against ours;
- **(b) TA-Lib**: every indicator TA-Lib has a counterpart for (the same outputs, or the TA-Lib
  functions that compute the same thing), on all ``N`` bars, each timed against ours.

It prints bars/s for each stage, the ratio ours / (a) (goal >= 10x), and ours / TA-Lib per
indicator and overall on the indicators TA-Lib has (goal: within 3x, i.e. a ratio >= 0.33).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import talib

from ktrdr_lib.features.fuzzy import fuzzify
from ktrdr_lib.features.indicators import compute_outputs
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.labels import BUY, HOLD, SELL, zigzag_labels
from ktrdr_lib.strategy.spec import IndicatorSpec, MembershipSpec

__all__ = ["main"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
ZIGZAG_THRESHOLD = 0.03
Talib = Callable[[dict[str, FloatArray]], Any]

# TA-Lib's counterpart of each indicator it has (computing the same outputs, or what they are
# made of where KTRDR's definition differs in a detail that costs the same).
TALIB: dict[str, Talib] = {
    "rsi": lambda b: talib.RSI(b["close"], 14),
    "simplemovingaverage": lambda b: talib.SMA(b["close"], 20),
    "exponentialmovingaverage": lambda b: talib.EMA(b["close"], 20),
    "weightedmovingaverage": lambda b: talib.WMA(b["close"], 20),
    "macd": lambda b: talib.MACD(b["close"], 12, 26, 9),
    "bollingerbands": lambda b: talib.BBANDS(b["close"], 20, 2, 2),
    "bollingerbandwidth": lambda b: talib.BBANDS(b["close"], 20, 2, 2),
    "atr": lambda b: talib.SMA(talib.TRANGE(b["high"], b["low"], b["close"]), 14),
    "stochastic": lambda b: talib.STOCH(b["high"], b["low"], b["close"], 14, 3, 0, 3, 0),
    "williamsr": lambda b: talib.WILLR(b["high"], b["low"], b["close"], 14),
    "roc": lambda b: talib.ROC(b["close"], 10),
    "momentum": lambda b: talib.MOM(b["close"], 10),
    "cci": lambda b: talib.CCI(b["high"], b["low"], b["close"], 20),
    "mfi": lambda b: talib.MFI(b["high"], b["low"], b["close"], b["volume"], 14),
    "obv": lambda b: talib.OBV(b["close"], b["volume"]),
    "adx": lambda b: (
        talib.ADX(b["high"], b["low"], b["close"], 14),
        talib.PLUS_DI(b["high"], b["low"], b["close"], 14),
        talib.MINUS_DI(b["high"], b["low"], b["close"], 14),
    ),
    "aroon": lambda b: (
        talib.AROON(b["high"], b["low"], 14),
        talib.AROONOSC(b["high"], b["low"], 14),
    ),
    "parabolicsar": lambda b: talib.SAR(b["high"], b["low"], 0.02, 0.2),
    "adline": lambda b: talib.AD(b["high"], b["low"], b["close"], b["volume"]),
    "cmf": lambda b: talib.ADOSC(b["high"], b["low"], b["close"], b["volume"], 3, 10),
    "keltnerchannels": lambda b: (
        talib.EMA(b["close"], 20),
        talib.SMA(talib.TRANGE(b["high"], b["low"], b["close"]), 10),
    ),
    "donchianchannels": lambda b: (talib.MAX(b["high"], 20), talib.MIN(b["low"], 20)),
    "ichimoku": lambda b: (
        talib.MIDPRICE(b["high"], b["low"], 9),
        talib.MIDPRICE(b["high"], b["low"], 26),
        talib.MIDPRICE(b["high"], b["low"], 52),
    ),
    "volumeratio": lambda b: talib.SMA(b["volume"], 20),
}


def make_bars(n: int, seed: int = 1) -> pd.DataFrame:
    """Random-walk OHLCV bars with hourly UTC timestamps."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.002, n)))
    volume = rng.lognormal(10.0, 0.5, n)
    index = pd.date_range("2000-01-01", periods=n, freq="1h", tz="UTC")
    frame = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(frame, index=index)


def indicator_specs() -> dict[str, IndicatorSpec]:
    """Every catalog indicator with its defaults."""
    return {
        name: IndicatorSpec(
            type=name, params={k: v for k, v in entry.params.items() if v is not None}
        )
        for name, entry in INDICATOR_CATALOG.items()
    }


def fuzzy_sets_for(values: FloatArray) -> dict[str, MembershipSpec]:
    """Low / mid / high sets placed on the values' quantiles (one of each shape)."""
    q05, q25, q50, q75, q95 = np.nanquantile(values, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist()
    return {
        "low": MembershipSpec(type="triangular", parameters=[q05, q05, q50]),
        "mid": MembershipSpec(type="trapezoidal", parameters=[q05, q25, q75, q95]),
        "high": MembershipSpec(type="gaussian", parameters=[q95, max(q95 - q50, 1e-9)]),
    }


# --- ours -------------------------------------------------------------------------------------


def ours_indicator(bars: pd.DataFrame, spec: IndicatorSpec) -> dict[str, FloatArray]:
    return compute_outputs(spec, bars)


def ours_fuzzy(
    values: dict[str, FloatArray], sets: dict[str, dict[str, MembershipSpec]]
) -> dict[str, FloatArray]:
    columns: dict[str, FloatArray] = {}
    for name, series in values.items():
        columns.update(fuzzify(sets[name], series, name))
    return columns


# --- (a) straightforward reference --------------------------------------------------------------


def _ratio(top: float, bottom: float, fill: float) -> float:
    return top / bottom if bottom != 0 else fill


def reference_indicators(bars: pd.DataFrame) -> dict[str, FloatArray]:
    """The primary output of the indicators with a plain pandas formula (KTRDR's definitions)."""
    h, lo, c, v = (bars[k] for k in ("high", "low", "close", "volume"))
    previous = c.shift(1)
    true_range = pd.concat([h - lo, (h - previous).abs(), (lo - previous).abs()], axis=1).max(
        axis=1
    )
    true_range.iloc[0] = h.iloc[0] - lo.iloc[0]
    highest, lowest = h.rolling(14).max(), lo.rolling(14).min()
    raw_k = (100 * (c - lowest) / (highest - lowest)).fillna(50.0)
    typical = (h + lo + c) / 3
    deviation = typical.rolling(20).apply(lambda w: np.abs(w - w.mean()).mean(), raw=True)
    return {
        "simplemovingaverage": c.rolling(20).mean().to_numpy(),
        "exponentialmovingaverage": c.ewm(span=20, adjust=True).mean().to_numpy(),
        "weightedmovingaverage": c.rolling(20)
        .apply(lambda w: np.dot(w, np.arange(1, 21)) / 210, raw=True)
        .to_numpy(),
        "macd": (
            c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
        ).to_numpy(),
        "bollingerbands": (c.rolling(20).mean() + 2 * c.rolling(20).std()).to_numpy(),
        "atr": true_range.rolling(14).mean().to_numpy(),
        "stochastic": raw_k.rolling(3, min_periods=1).mean().to_numpy(),
        "williamsr": (-100 * (highest - c) / (highest - lowest)).fillna(-50.0).to_numpy(),
        "roc": (100 * (c - c.shift(10)) / c.shift(10)).to_numpy(),
        "momentum": (c - c.shift(10)).to_numpy(),
        "cci": ((typical - typical.rolling(20).mean()) / (0.015 * deviation)).to_numpy(),
        "obv": (np.sign(c.diff()).fillna(0.0) * v).cumsum().to_numpy(),
        "donchianchannels": h.rolling(20).max().to_numpy(),
    }


def _loop_membership(fuzzy_set: MembershipSpec, x: float) -> float:
    p = fuzzy_set.parameters
    if math.isnan(x):
        return math.nan
    if fuzzy_set.type == "gaussian":
        return math.exp(-0.5 * ((x - p[0]) / p[1]) ** 2)
    a, b, c, d = (p[0], p[1], p[1], p[2]) if fuzzy_set.type == "triangular" else p
    rise = 1.0 if a == b else min(max((x - a) / (b - a), 0.0), 1.0)
    fall = 1.0 if c == d else min(max((d - x) / (d - c), 0.0), 1.0)
    return min(rise, fall)


def reference_fuzzy(
    values: dict[str, FloatArray], sets: dict[str, dict[str, MembershipSpec]]
) -> dict[str, FloatArray]:
    columns = {}
    for name, series in values.items():
        for set_name, fuzzy_set in sets[name].items():
            column = pd.Series(series).apply(lambda x, fs=fuzzy_set: _loop_membership(fs, x))
            columns[f"{name}_{set_name}"] = column.to_numpy()
    return columns


def reference_zigzag(close: FloatArray, threshold: float) -> FloatArray:
    """ZigZag labels with index-by-index Python loops."""
    extremes: list[int] = []
    high_at = low_at = 0
    trend = 0
    for t in range(len(close)):
        if trend >= 0 and close[t] > close[high_at]:
            high_at = t
        if trend <= 0 and close[t] < close[low_at]:
            low_at = t
        if trend <= 0 and close[t] >= close[low_at] * (1 + threshold):
            extremes.append(low_at)
            trend, high_at = 1, t
        elif trend >= 0 and close[t] <= close[high_at] * (1 - threshold):
            extremes.append(high_at)
            trend, low_at = -1, t
    labels = np.full(len(close), HOLD)
    for start, end in pairwise(extremes):
        for t in range(start + 1, end):
            labels[t] = BUY if close[end] > close[start] else SELL
    return labels


# --- timing and report -------------------------------------------------------------------------


def timed(func: Callable[[], Any], repeats: int = 1) -> tuple[Any, float]:
    """The result and the best wall time of ``repeats`` calls."""
    best = math.inf
    result: Any = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return result, best


def max_difference(ours: dict[str, FloatArray], other: dict[str, FloatArray], skip: int) -> float:
    """Largest relative difference over shared keys, after ``skip`` warm-up bars."""
    worst = 0.0
    for key, values in other.items():
        a, b = ours[key][skip : len(values)], values[skip:]
        scale = np.nanmax(np.abs(b)) or 1.0
        worst = max(worst, float(np.nanmax(np.abs(a - b))) / scale)
    return worst


def main() -> None:
    """Parse arguments, run the three contestants and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--reference-bars", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    bars = make_bars(args.bars)
    columns = {k: bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
    prefix = bars.iloc[: min(args.reference_bars, args.bars)]
    specs = indicator_specs()
    for spec in specs.values():  # compile the numba kernels before anything is timed
        ours_indicator(bars.iloc[:1000], spec)
    ours_time: dict[str, float] = {}
    talib_time: dict[str, float] = {}
    primary: dict[str, FloatArray] = {}
    for name, spec in specs.items():
        outputs, ours_time[name] = timed(lambda s=spec: ours_indicator(bars, s), args.repeats)
        primary[name] = outputs[INDICATOR_CATALOG[name].primary_output]
        if name in TALIB:
            _, talib_time[name] = timed(lambda f=TALIB[name]: f(columns), args.repeats)
    t_ind = sum(ours_time.values())
    sets = {name: fuzzy_sets_for(series) for name, series in primary.items()}
    close = bars["close"].to_numpy()
    _, t_fuzzy = timed(lambda: ours_fuzzy(primary, sets), args.repeats)
    zigzag, t_zigzag = timed(lambda: zigzag_labels(close, ZIGZAG_THRESHOLD), args.repeats)
    t_ours = t_ind + t_fuzzy + t_zigzag

    prefix_close = prefix["close"].to_numpy()
    ref_values, r_ind = timed(lambda: reference_indicators(prefix))
    ref_prefix = {k: v[: len(prefix)] for k, v in primary.items() if k in ref_values}
    ref_sets = {k: sets[k] for k in ref_prefix}
    ref_fuzzy, r_fuzzy = timed(lambda: reference_fuzzy(ref_prefix, ref_sets))
    ref_labels, r_zigzag = timed(lambda: reference_zigzag(prefix_close, ZIGZAG_THRESHOLD))
    # (a) covers fewer indicators: compare it with ours on the same ones.
    ours_same = sum(ours_time[k] for k in ref_values) + t_fuzzy * len(ref_values) / len(specs)
    ours_same += t_zigzag
    r_total = r_ind + r_fuzzy + r_zigzag

    n, m = len(bars), len(prefix)
    sets_count = sum(len(s) for s in sets.values())
    print(f"features benchmark: {n:,} bars, {len(specs)} indicators, best of {args.repeats}")
    for label, bars_per_s in {
        "ours: indicators (every output)": n / t_ind,
        f"ours: fuzzy ({sets_count} sets)": n / t_fuzzy,
        "ours: zigzag labels": n / t_zigzag,
        "ours: all": n / t_ours,
        f"(a) reference on {m:,} bars ({len(ref_values)} indicators, their sets, zigzag)": m
        / r_total,
    }.items():
        print(f"  {label:<66} {bars_per_s:>13,.0f} bars/s")
    ours_fuzzy_prefix = ours_fuzzy(ref_prefix, ref_sets)
    zigzag_match = bool((zigzag_labels(prefix_close, ZIGZAG_THRESHOLD).labels == ref_labels).all())
    print("checks (relative to the value scale, after 300 warm-up bars):")
    print(f"  ours vs (a) indicators: {max_difference(primary, ref_values, 300):.1e}")
    print(f"  ours vs (a) fuzzy:      {max_difference(ours_fuzzy_prefix, ref_fuzzy, 300):.1e}")
    print(f"  ours vs (a) zigzag labels identical: {zigzag_match}")
    print(f"ours / (b) TA-Lib per indicator, {n:,} bars (ms; ratio = TA-Lib time / ours):")
    for name in sorted(talib_time):
        ratio = talib_time[name] / ours_time[name]
        print(
            f"  {name:<26} ours {ours_time[name] * 1e3:8.1f}  TA-Lib {talib_time[name] * 1e3:7.1f}"
            f"  {ratio:6.2f}x"
        )
    alone = sorted(set(ours_time) - set(talib_time))
    print(f"  no TA-Lib counterpart: {', '.join(f'{k} {ours_time[k] * 1e3:.1f}' for k in alone)}")
    print("ratios (bars/s):")
    speedup = (m / r_total) and (ours_same and (r_total / m) / (ours_same / n))
    print(f"  ours / (a) same stages:        {speedup:8.1f}x   goal >= 10x")
    overall = sum(talib_time.values()) / sum(ours_time[k] for k in talib_time)
    print(f"  ours / (b) TA-Lib's indicators: {overall:7.2f}x   goal >= 0.33x (within 3x)")
    print(f"  zigzag: {zigzag.extremes.size:,} extremes")


if __name__ == "__main__":
    main()
