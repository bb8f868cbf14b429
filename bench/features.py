"""Features benchmark: ktrdr_lib indicators + fuzzy + ZigZag, side by side with references.

Run as ``python bench/features.py [--bars N] [--reference-bars M]``. One run times, on the same
random-walk OHLCV bars:

- **ours**: every catalog indicator with default parameters (``sma``/``ema`` period 20), three
  fuzzy sets per indicator, and ZigZag labels, on all ``N`` bars;
- **(a) reference**: the same computations written the straightforward way, with pandas
  ``rolling(...).apply(...)`` and Python loops. It is slow, so it runs on the first ``M`` bars
  and rates are compared in bars per second; its results are checked against ours;
- **(b) TA-Lib**: the same indicators alone, on all ``N`` bars.

It prints bars/s for each and the ratios ours / (a) (goal >= 10x) and ours / TA-Lib on the
indicators alone (goal: within 3x, i.e. a ratio of at least 0.33).
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
from ktrdr_lib.features.indicators import compute_indicator
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.labels import BUY, HOLD, SELL, zigzag_labels
from ktrdr_lib.strategy.spec import FuzzySetSpec, IndicatorSpec

__all__ = ["main"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
ZIGZAG_THRESHOLD = 0.03
MOVING_AVERAGE_PERIOD = 20


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


def indicator_specs() -> list[IndicatorSpec]:
    """Every catalog indicator with its defaults (moving averages at period 20)."""
    specs = []
    for name, info in INDICATOR_CATALOG.items():
        params = {
            k: float(MOVING_AVERAGE_PERIOD if v is None else v) for k, v in info.params.items()
        }
        specs.append(IndicatorSpec(name=name, feature_id=name, params=params))
    return specs


def fuzzy_sets_for(values: FloatArray) -> dict[str, FuzzySetSpec]:
    """Low / mid / high sets placed on the values' quantiles (one of each shape)."""
    q05, q25, q50, q75, q95 = np.nanquantile(values, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist()
    return {
        "low": FuzzySetSpec(type="triangular", parameters=[q05, q05, q50]),
        "mid": FuzzySetSpec(type="trapezoidal", parameters=[q05, q25, q75, q95]),
        "high": FuzzySetSpec(type="gaussian", parameters=[q95, max(q95 - q50, 1e-9)]),
    }


# --- ours -------------------------------------------------------------------------------------


def ours_indicators(bars: pd.DataFrame, specs: list[IndicatorSpec]) -> dict[str, FloatArray]:
    return {spec.name: compute_indicator(spec, bars) for spec in specs}


def ours_fuzzy(
    values: dict[str, FloatArray], sets: dict[str, dict[str, FuzzySetSpec]]
) -> dict[str, FloatArray]:
    columns: dict[str, FloatArray] = {}
    for name, series in values.items():
        columns.update(fuzzify(sets[name], series, name))
    return columns


# --- (a) straightforward reference --------------------------------------------------------------


def _loop_smooth(values: FloatArray, alpha: float, seed_index: int, seed: float) -> FloatArray:
    out = np.full(len(values), np.nan)
    if seed_index >= len(values):
        return out
    out[seed_index] = seed
    for t in range(seed_index + 1, len(values)):
        out[t] = (1 - alpha) * out[t - 1] + alpha * values[t]
    return out


def _loop_ema(values: FloatArray, period: int, first: int = 0) -> FloatArray:
    seed_index = first + period - 1
    seed = float(np.mean(values[first : seed_index + 1]))
    return _loop_smooth(values, 2 / (period + 1), seed_index, seed)


def _loop_wilder(values: FloatArray, period: int, first: int) -> FloatArray:
    seed = float(np.mean(values[first : first + period]))
    return _loop_smooth(values, 1 / period, first + period - 1, seed)


def _ratio(top: float, bottom: float, fill: float) -> float:
    return top / bottom if bottom != 0 else fill


def _loop_true_range(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    tr = np.full(len(c), np.nan)
    for t in range(1, len(c)):
        tr[t] = max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))
    return tr


def _loop_rsi(c: FloatArray, period: int) -> FloatArray:
    gain, loss = np.full(len(c), np.nan), np.full(len(c), np.nan)
    for t in range(1, len(c)):
        gain[t], loss[t] = max(c[t] - c[t - 1], 0.0), max(c[t - 1] - c[t], 0.0)
    g, lo = _loop_wilder(gain, period, 1), _loop_wilder(loss, period, 1)
    return np.array([_ratio(100 * a, a + b, 50.0) for a, b in zip(g, lo, strict=True)])


def _loop_adx(h: FloatArray, lo: FloatArray, c: FloatArray, period: int) -> FloatArray:
    n = len(c)
    plus, minus = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(1, n):
        up, down = h[t] - h[t - 1], lo[t - 1] - lo[t]
        plus[t] = up if up > down and up > 0 else 0.0
        minus[t] = down if down > up and down > 0 else 0.0
    tr = _loop_true_range(h, lo, c)

    def running(x: FloatArray) -> FloatArray:
        return _loop_smooth(x, 1 / period, period - 1, float(np.sum(x[1:period])) / period)

    str_, sp, sm = running(tr), running(plus), running(minus)
    dx = np.full(n, np.nan)
    for t in range(period, n):
        pdi, mdi = _ratio(sp[t], str_[t], 0.0), _ratio(sm[t], str_[t], 0.0)
        dx[t] = _ratio(100 * abs(pdi - mdi), pdi + mdi, 0.0)
    return _loop_wilder(dx, period, period)


def _loop_obv(c: FloatArray, v: FloatArray) -> FloatArray:
    out = np.empty(len(c))
    out[0] = v[0]
    for t in range(1, len(c)):
        out[t] = out[t - 1] + math.copysign(v[t], c[t] - c[t - 1]) * (c[t] != c[t - 1])
    return out


def _loop_mfi(h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray, p: int) -> FloatArray:
    tp = (h + lo + c) / 3
    out = np.full(len(c), np.nan)
    for t in range(p, len(c)):
        pos = sum(tp[i] * v[i] for i in range(t - p + 1, t + 1) if tp[i] > tp[i - 1])
        neg = sum(tp[i] * v[i] for i in range(t - p + 1, t + 1) if tp[i] < tp[i - 1])
        out[t] = _ratio(100 * pos, pos + neg, 50.0)
    return out


def _rolling_apply(values: FloatArray, window: int, func: Callable[[FloatArray], float]) -> Any:
    return pd.Series(values).rolling(window).apply(func, raw=True).to_numpy()


def _bands_position(w: FloatArray) -> float:
    mean, sd = w.mean(), w.std()
    return _ratio(w[-1] - (mean - 2 * sd), 4 * sd, 0.5)


def _cci_window(w: FloatArray) -> float:
    mean = w.mean()
    return _ratio(w[-1] - mean, 0.015 * np.abs(w - mean).mean(), 0.0)


def reference_indicators(bars: pd.DataFrame) -> dict[str, FloatArray]:
    """Every catalog indicator, the straightforward way."""
    h, lo, c, v = (bars[k].to_numpy() for k in ("high", "low", "close", "volume"))
    hh = _rolling_apply(h, 14, np.max)
    ll = _rolling_apply(lo, 14, np.min)
    fast_k = np.array(
        [_ratio(100 * (x - b), a - b, 50.0) for x, a, b in zip(c, hh, ll, strict=True)]
    )
    tp = (h + lo + c) / 3
    ma = MOVING_AVERAGE_PERIOD
    return {
        "rsi": _loop_rsi(c, 14),
        "macd": _loop_ema(c, 12) - _loop_ema(c, 26),
        "sma": c / _rolling_apply(c, ma, np.mean),
        "ema": c / _loop_ema(c, ma),
        "bbands": _rolling_apply(c, 20, _bands_position),
        "atr": _loop_wilder(_loop_true_range(h, lo, c), 14, 1),
        "stoch": _rolling_apply(fast_k, 3, np.mean),
        "roc": _rolling_apply(c, 11, lambda w: 100 * (w[-1] / w[0] - 1)),
        "momentum": _rolling_apply(c, 11, lambda w: w[-1] - w[0]),
        "obv": _loop_obv(c, v),
        "adx": _loop_adx(h, lo, c, 14),
        "cci": _rolling_apply(tp, 14, _cci_window),
        "williams_r": np.array(
            [_ratio(-100 * (a - x), a - b, -50.0) for x, a, b in zip(c, hh, ll, strict=True)]
        ),
        "mfi": _loop_mfi(h, lo, c, v, 14),
    }


def _loop_membership(fuzzy_set: FuzzySetSpec, x: float) -> float:
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
    values: dict[str, FloatArray], sets: dict[str, dict[str, FuzzySetSpec]]
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


# --- (b) TA-Lib -------------------------------------------------------------------------------


def talib_indicators(bars: pd.DataFrame) -> dict[str, FloatArray]:
    """The same indicators through TA-Lib (ratios and positions formed the same way)."""
    h, lo, c, v = (bars[k].to_numpy() for k in ("high", "low", "close", "volume"))
    upper, _, lower = talib.BBANDS(c, 20, 2, 2)
    slow_k, _ = talib.STOCH(h, lo, c, fastk_period=14, slowk_period=3, slowd_period=3)
    return {
        "rsi": talib.RSI(c, 14),
        "macd": talib.MACD(c, 12, 26, 9)[0],
        "sma": c / talib.SMA(c, MOVING_AVERAGE_PERIOD),
        "ema": c / talib.EMA(c, MOVING_AVERAGE_PERIOD),
        "bbands": (c - lower) / (upper - lower),
        "atr": talib.ATR(h, lo, c, 14),
        "stoch": slow_k,
        "roc": talib.ROC(c, 10),
        "momentum": talib.MOM(c, 10),
        "obv": talib.OBV(c, v),
        "adx": talib.ADX(h, lo, c, 14),
        "cci": talib.CCI(h, lo, c, 14),
        "williams_r": talib.WILLR(h, lo, c, 14),
        "mfi": talib.MFI(h, lo, c, v, 14),
    }


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
    prefix = bars.iloc[: min(args.reference_bars, args.bars)]
    specs = indicator_specs()
    values = ours_indicators(bars, specs)
    sets = {name: fuzzy_sets_for(series) for name, series in values.items()}
    close = bars["close"].to_numpy()

    _, t_ind = timed(lambda: ours_indicators(bars, specs), args.repeats)
    _, t_fuzzy = timed(lambda: ours_fuzzy(values, sets), args.repeats)
    zigzag, t_zigzag = timed(lambda: zigzag_labels(close, ZIGZAG_THRESHOLD), args.repeats)
    talib_values, t_talib = timed(lambda: talib_indicators(bars), args.repeats)
    t_ours = t_ind + t_fuzzy + t_zigzag

    prefix_close = prefix["close"].to_numpy()
    ref_values, r_ind = timed(lambda: reference_indicators(prefix))
    ref_prefix_values = {k: v[: len(prefix)] for k, v in values.items()}
    ref_fuzzy, r_fuzzy = timed(lambda: reference_fuzzy(ref_prefix_values, sets))
    ref_labels, r_zigzag = timed(lambda: reference_zigzag(prefix_close, ZIGZAG_THRESHOLD))
    r_total = r_ind + r_fuzzy + r_zigzag

    n, m = len(bars), len(prefix)
    rate = {
        "ours: indicators": n / t_ind,
        "ours: fuzzy (42 sets)": n / t_fuzzy,
        "ours: zigzag labels": n / t_zigzag,
        "ours: all": n / t_ours,
        f"(a) reference on {m:,} bars: indicators": m / r_ind,
        f"(a) reference on {m:,} bars: fuzzy": m / r_fuzzy,
        f"(a) reference on {m:,} bars: zigzag": m / r_zigzag,
        f"(a) reference on {m:,} bars: all": m / r_total,
        "(b) TA-Lib: indicators": n / t_talib,
    }
    print(f"features benchmark: {n:,} bars, {len(specs)} indicators, best of {args.repeats}")
    for label, bars_per_s in rate.items():
        print(f"  {label:<48} {bars_per_s:>14,.0f} bars/s")
    ours_fuzzy_prefix = ours_fuzzy(ref_prefix_values, sets)
    zigzag_match = bool((zigzag_labels(prefix_close, ZIGZAG_THRESHOLD).labels == ref_labels).all())
    print("checks (relative to the value scale, after 300 warm-up bars):")
    print(f"  ours vs (a) indicators: {max_difference(values, ref_values, 300):.1e}")
    print(f"  ours vs (a) fuzzy:      {max_difference(ours_fuzzy_prefix, ref_fuzzy, 300):.1e}")
    print(f"  ours vs (a) zigzag labels identical: {zigzag_match}")
    print(f"  ours vs (b) indicators: {max_difference(values, talib_values, 300):.1e}")
    print("ratios (bars/s):")
    speedup = (n / t_ours) / (m / r_total)
    print(f"  ours / (a) all stages:       {speedup:8.1f}x   goal >= 10x")
    versus_talib = (n / t_ind) / (n / t_talib)
    print(f"  ours / (b) indicators alone: {versus_talib:8.2f}x   goal >= 0.33x (within 3x)")
    print(f"  zigzag: {zigzag.extremes.size:,} extremes")


if __name__ == "__main__":
    main()
