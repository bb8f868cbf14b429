"""Pipeline scale: preparing a 3-timeframe strategy on a million 5-minute bars.

One run writes ``--bars`` seeded synthetic 5m bars (around the clock, as crypto trades) to a
temp data directory, then prepares a strategy on three timeframes (5m base, 1h and 4h, resampled
by the loader from the 5m file) with six indicators, three fuzzy sets each, on every timeframe,
and ``--lags`` lagged copies: load the data, compute the indicators, fuzzify, label and split,
then scale the splits as training would. It prints the time of each phase and the peak resident
memory against the size of the final float32 feature matrix (rows × columns × 4 bytes).

The preparation runs in a fresh child process (``spawn``), so its peak RSS is its own: the
interpreter, numpy/pandas/torch, the bars and everything preparation allocates. The child's RSS
before preparation (after imports) is printed too, so the growth can be told apart from the
libraries. Goal: peak RSS ≤ 3× the matrix (it used to be about 7×).

Run: ``python bench/pipeline_scale.py [--bars 1000000] [--lags 1]``
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

INDICATORS = """
  - {name: rsi, feature_id: rsi, period: 14}
  - {name: macd, feature_id: macd, fast_period: 12, slow_period: 26, signal_period: 9}
  - {name: adx, feature_id: adx, period: 14}
  - {name: atr, feature_id: atr, period: 14}
  - {name: cci, feature_id: cci, period: 20}
  - {name: stochastic, feature_id: stochastic, k_period: 14, d_period: 3, smooth_k: 3}
"""

FUZZY = """
  rsi: {low: [0, 0, 40], mid: [30, 50, 70], high: [60, 100, 100]}
  macd: {down: [-5, -5, 0], flat: [-1, 0, 1], up: [0, 5, 5]}
  adx: {weak: [0, 0, 25], some: [15, 30, 45], strong: [35, 100, 100]}
  atr: {calm: [0, 0, 0.5], normal: [0.2, 0.6, 1.0], wild: [0.8, 3, 3]}
  cci: {low: [-300, -300, 0], mid: [-100, 0, 100], high: [0, 300, 300]}
  stochastic: {low: [0, 0, 40], mid: [25, 50, 75], high: [60, 100, 100]}
"""


def strategy_yaml(lags: int) -> str:
    """The benchmark strategy (v2 layout)."""
    return f"""
name: pipeline_scale
indicators:{INDICATORS}
fuzzy_sets:{FUZZY}
model:
  type: mlp
  architecture: {{hidden_layers: [32], dropout: 0.1}}
  features: {{lookback_periods: {lags}, scale_features: true}}
  training: {{epochs: 1, batch_size: 4096}}
training:
  labels: {{source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}}
  data_split: {{train: 0.7, validation: 0.15, test: 0.15}}
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _prepare(strategy: str, data_dir: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Child: prepare the strategy's data and report phase times and memory."""
    import torch

    from ktrdr_lib.pipeline.context import build_training_context
    from ktrdr_lib.pipeline.prepare import prepare_data
    from ktrdr_lib.training.scaling import FeatureScaler

    torch.set_num_threads(1)
    before = _current_rss_mb()
    phases: list[tuple[str, float]] = []

    class Observer:
        def on_phase(self, phase: str, message: str) -> None:
            phases.append((phase, time.perf_counter(), _rss_mb()))

    context = build_training_context(
        strategy, symbols=["BENCH"], timeframes=["5m", "1h", "4h"], data_dir=data_dir
    )
    started = time.perf_counter()
    prepared = prepare_data(context, observer=Observer())
    phases.append(("scale", time.perf_counter(), _rss_mb()))
    splits = prepared.splits
    scaler = FeatureScaler.fit(splits.x_train, prepared.column_modes)
    for x in (splits.x_train, splits.x_val, splits.x_test):  # as training scales them
        scaler.transform(x, in_place=True)
    finished = time.perf_counter()
    rows = len(splits.y_train) + len(splits.y_val) + len(splits.y_test)
    columns = len(splits.feature_names)
    times = []
    marks = [*phases, ("end", finished, _rss_mb())]
    for (phase, at, _), (_, until, peak) in itertools.pairwise(marks):
        times.append((phase, until - at, peak))
    queue.put(
        {
            "before_mb": before,
            "peak_mb": _rss_mb(),
            "rows": rows,
            "columns": columns,
            "matrix_mb": rows * columns * 4 / 2**20,
            "phases": times,
            "total_s": finished - started,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="synthetic 5m bars")
    parser.add_argument("--lags", type=int, default=1, help="lookback_periods")
    args = parser.parse_args()

    from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv

    with tempfile.TemporaryDirectory(prefix="ktrdr-scale-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        bars = generate_ohlcv(args.bars, timeframe="5m", seed=1, calendar="continuous")
        write_ohlcv_csv(bars, root / "BENCH_5m.csv")
        del bars
        strategy = root / "pipeline_scale.yaml"
        strategy.write_text(strategy_yaml(args.lags), encoding="utf-8")
        print(f"{args.bars:,} 5m bars written in {time.perf_counter() - started:.1f} s")

        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_prepare, args=(str(strategy), folder, queue))
        child.start()
        report = queue.get()
        child.join()

    print(
        f"feature matrix: {report['rows']:,} rows × {report['columns']} columns float32 = "
        f"{report['matrix_mb']:,.0f} MB"
    )
    print(f"  {'phase':<12} {'time':>10}  peak RSS by its end")
    for phase, seconds, peak_mb in report["phases"]:
        print(f"  {phase:<12} {seconds:8.2f} s  {peak_mb:8,.0f} MB")
    print(f"  {'total':<12} {report['total_s']:8.2f} s")
    peak, before, matrix = report["peak_mb"], report["before_mb"], report["matrix_mb"]
    ratio = peak / matrix
    print(
        f"peak RSS {peak:,.0f} MB (the process held {before:,.0f} MB after its imports); "
        f"peak / matrix = {ratio:.2f}x, growth / matrix = {(peak - before) / matrix:.2f}x"
    )
    print(f"goal: peak ≤ 3x the matrix: {'met' if ratio <= 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
