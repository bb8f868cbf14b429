"""Cancel latency: from ``op.cancel()`` to the final ``cancelled`` state, through the orchestrator.

Each round starts a real training run on a real :class:`TrainingOrchestrator` (SQLite
:class:`OperationStore` on a temp file, synthetic hourly bars written to a temp data dir, a
small strategy with far more epochs than it will ever run), waits until training is under way,
sleeps a random time so the cancel lands at a random point of an epoch (or of validation), then
calls ``op.cancel()`` (abort) and ``op.wait()``. Per cancel it records:

* **client ms**: from calling ``op.cancel()`` to ``op.wait()`` returning the final record;
* **final ms** and **observed ms**: what the orchestrator itself records in
  ``health().last_cancel_latencies`` (token request → the run acting on it → final state);
* **token ms**: from calling ``op.cancel()`` to the run's token being set
  (``CancelToken.requested_at``; ``cancel()`` reads the store before it sets the token);
* **batches**: training batches that *finished* after ``cancel()`` was called, and after the
  token was set, counted and time-stamped by a small callback that a runner wrapping
  :class:`LocalTrainingRunner` adds to the fit (the runner also hands it the run's token).

The batch time of the same fit is measured by the same callback (intervals between
consecutive batch ends within an epoch, median over all rounds), so the p95 can be stated in
batches. Goal: p95 ≤ 1 batch + 20 ms.

**Child processes** (``ProcessTrainingRunner``, what ``ktrdr serve api`` trains with): the same
cancel, by phase, through an orchestrator whose runs train in child processes:

* **starting**: the run waits for its child to come up (a runner without warm workers, so
  every run starts its own); the cancel is honoured at once;
* **prepare**: a warm worker runs the data preparation; cancelled when the parent sees the
  ``load_data`` snapshot, it stops at the next step;
* **train**: cancelled a random 0-``--max-delay`` s into training, it stops within a batch.

Goal: p95 ≤ 1 batch + 100 ms in every phase (the batch as measured in-process above).

**Start latency**: from ``start_training()`` to the first training batch starting (stamped
with the system-wide monotonic clock by a callback in the process that trains), for runs
trained in this process and in a warm child, one after the other, each on a warm runner (the
first in-process run, which pays the first calls, is left out; a warm worker paid them before
it said ready). Goal: process / in-process ≤ 1.2×. A cold child (no warm worker) is shown for
scale.

Run: ``python bench/cancel_latency.py [--cancels 40] [--max-delay 0.6] [--process-cancels 8]
[--starts 6]``
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from _shared import percentile, small_strategy_yaml
from lightning.pytorch.callbacks import Callback

from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.runners.base import RunControl, run_with_progress
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.runners.process import ProcessTrainingRunner
from ktrdr_lib.schemas.results import TrainingResult

STRATEGY = small_strategy_yaml(
    "cancel_bench",
    description="a small strategy that would train for a very long time",
    epochs=10000,
)


class BatchCounter(Callback):
    """Counts finished training batches and times them (batch end to batch end)."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token
        self.completed = 0
        self.intervals: list[float] = []
        self.ends: deque[float] = deque(maxlen=256)  # time.monotonic(), the token's clock
        self.training = threading.Event()
        self._last_end: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_end = None  # an epoch's first interval would include validation

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.monotonic()
        if self._last_end is not None:
            self.intervals.append(now - self._last_end)
        self._last_end = now
        self.ends.append(now)
        self.completed += 1
        self.training.set()


class CountingRunner(LocalTrainingRunner):
    """The local runner with a :class:`BatchCounter` added to each fit."""

    def __init__(self) -> None:
        super().__init__(save_model=False)
        self.counters: list[BatchCounter] = []
        self.started = threading.Condition()

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Run the pipeline as :class:`LocalTrainingRunner` does, plus the counter."""
        counter = BatchCounter(control.token)
        with self.started:
            self.counters.append(counter)
            self.started.notify_all()
        return run_with_progress(
            context,
            token=control.token,
            tracker=control.tracker,
            trainer_options=self.trainer_options,
            save_model=self.save_model,
            callbacks=[counter],
        )

    def counter_for(self, index: int, timeout: float) -> BatchCounter:
        """The counter of the ``index``-th run (0-based), once that run has started."""
        with self.started:
            if not self.started.wait_for(lambda: len(self.counters) > index, timeout):
                raise RuntimeError(f"run {index} did not start within {timeout} s")
            return self.counters[index]


@dataclass
class Cancel:
    """One measured cancel."""

    client_ms: float
    token_ms: float
    final_ms: float
    observed_ms: float | None
    batches_after_call: int
    batches_after_token: int
    status: str


def measure(
    orch: TrainingOrchestrator,
    runner: CountingRunner,
    strategy: Path,
    index: int,
    delay: float,
) -> Cancel:
    """Start a run, cancel it ``delay`` seconds into training, and time the stop."""
    op = orch.start_training(strategy, seed=index)
    counter = runner.counter_for(index, timeout=60)
    if not counter.training.wait(60):
        raise RuntimeError(f"run {index} trained no batch within 60 s: {op.info()}")
    time.sleep(delay)
    before = counter.completed
    asked = time.monotonic()
    op.cancel()
    final = op.wait(timeout=60)
    client_ms = (time.monotonic() - asked) * 1e3
    if not final.is_final:
        raise RuntimeError(f"run {index} did not stop within 60 s after cancel()")
    requested = counter.token.requested_at
    if requested is None:
        raise RuntimeError(f"run {index}: cancel() did not set the run's token")
    recorded = [
        latency
        for latency in orch.health().last_cancel_latencies
        if latency.operation_id == op.operation_id
    ]
    if not recorded:
        raise RuntimeError(f"the orchestrator recorded no cancel latency for run {index}")
    return Cancel(
        client_ms=client_ms,
        token_ms=(requested - asked) * 1e3,
        final_ms=recorded[-1].final_ms,
        observed_ms=recorded[-1].observed_ms,
        batches_after_call=counter.completed - before,
        batches_after_token=sum(end > requested for end in counter.ends),
        status=final.status,
    )


def summary(name: str, values: list[float], unit: str, digits: int = 1) -> str:
    """``name: p50 …, p95 …, max …`` for ``values``."""
    return (
        f"  {name:<40} p50 {percentile(values, 50):7.{digits}f}  p95 "
        f"{percentile(values, 95):7.{digits}f}  max {max(values):7.{digits}f} {unit}"
    )


class FirstBatchStamp(Callback):
    """Appends ``time.monotonic()`` to ``path`` when a fit's first training batch starts (works
    in a child process too: the clock is system-wide, the file is the way back)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamped = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stamped = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self._stamped:
            self._stamped = True
            with self.path.open("a", encoding="utf-8") as out:
                out.write(f"{time.monotonic()!r}\n")


def _stamps(path: Path) -> list[float]:
    return (
        [float(line) for line in path.read_text(encoding="utf-8").split()] if path.exists() else []
    )


def start_latencies(
    orch: TrainingOrchestrator,
    strategy: Path,
    stamps: Path,
    runs: int,
    *,
    before_each: Any = None,
) -> list[float]:
    """ms from ``start_training()`` to the first batch of each of ``runs`` one-epoch runs."""
    latencies = []
    for index in range(runs):
        if before_each is not None:
            before_each()
        seen = len(_stamps(stamps))
        asked = time.monotonic()
        op = orch.start_training(strategy, seed=index, epochs=1)
        final = op.wait(timeout=300)
        if final.status != "completed":
            raise RuntimeError(f"start-latency run {index} ended {final.status}: {final}")
        new = _stamps(stamps)[seen:]
        if len(new) != 1:
            raise RuntimeError(f"start-latency run {index} stamped {len(new)} first batches")
        latencies.append((new[0] - asked) * 1e3)
    return latencies


@dataclass
class PhaseCancel:
    """One cancel of a run in a child process."""

    phase: str
    client_ms: float
    observed_ms: float | None
    status: str


def measure_process_cancel(
    orch: TrainingOrchestrator,
    runner: ProcessTrainingRunner,
    strategy: Path,
    phase: str,
    delay: float,
    index: int,
) -> PhaseCancel:
    """Start a run in a child, cancel it in ``phase``, and time the stop."""
    if phase != "starting" and not runner.pool.wait_ready(300):
        raise RuntimeError("the warm worker did not get ready within 300 s")
    op = orch.start_training(strategy, seed=index)
    for snap in op.follow(timeout=120):
        if phase == "starting" and snap.message == "Starting a training process":
            break
        if phase == "prepare" and snap.phase == "load_data":
            break
        if phase == "train" and snap.phase == "train" and snap.items_processed > 0:
            time.sleep(delay)
            break
    asked = time.monotonic()
    op.cancel()
    final = op.wait(timeout=120)
    client_ms = (time.monotonic() - asked) * 1e3
    recorded = [
        latency
        for latency in orch.health().last_cancel_latencies
        if latency.operation_id == op.operation_id
    ]
    return PhaseCancel(
        phase=phase,
        client_ms=client_ms,
        observed_ms=recorded[-1].observed_ms if recorded else None,
        status=final.status,
    )


def process_section(
    root: Path, data_dir: Path, strategy: Path, args: argparse.Namespace, batch_ms: float
) -> None:
    """Cancels by phase in child processes, then start latencies; prints both."""
    rng = random.Random(args.seed + 1)
    results: list[PhaseCancel] = []
    for phase in ("starting", "prepare", "train"):
        runner = ProcessTrainingRunner(
            save_model=False, torch_threads=1, warm_workers=0 if phase == "starting" else 1
        )
        orch = TrainingOrchestrator(home=root / f"home-{phase}", runner=runner, data_dir=data_dir)
        try:
            for index in range(args.process_cancels):
                delay = rng.uniform(0.0, args.max_delay)
                results.append(measure_process_cancel(orch, runner, strategy, phase, delay, index))
        finally:
            orch.shutdown(cancel_running=True)
    print(
        f"{len(results)} cancels of runs in child processes (ProcessTrainingRunner), "
        f"{args.process_cancels} per phase; final statuses: {sorted({r.status for r in results})}"
    )
    goal = batch_ms + 100.0
    for phase in ("starting", "prepare", "train"):
        client = [r.client_ms for r in results if r.phase == phase]
        observed = [
            r.observed_ms for r in results if r.phase == phase and r.observed_ms is not None
        ]
        p95 = percentile(client, 95)
        print(summary(f"{phase}: cancel() → wait() returns", client, "ms"))
        if observed:
            print(summary(f"{phase}: token set → the run acted on it", observed, "ms"))
        print(
            f"    p95 {p95:.1f} ms vs goal ≤ 1 batch + 100 ms = {goal:.1f} ms: "
            f"{'met' if p95 <= goal else 'MISSED'}"
        )

    stamps = root / "first_batches.txt"
    local = TrainingOrchestrator(
        home=root / "home-start-local",
        runner=LocalTrainingRunner(save_model=False, callbacks=[FirstBatchStamp(stamps)]),
        data_dir=data_dir,
    )
    try:
        in_process = start_latencies(local, strategy, stamps, args.starts + 1)[1:]
    finally:
        local.shutdown()
    warm_runner = ProcessTrainingRunner(
        save_model=False, torch_threads=1, callbacks=[FirstBatchStamp(stamps)]
    )
    warm = TrainingOrchestrator(
        home=root / "home-start-warm", runner=warm_runner, data_dir=data_dir
    )
    try:
        in_child = start_latencies(
            warm,
            strategy,
            stamps,
            args.starts,
            before_each=lambda: warm_runner.pool.wait_ready(300),
        )
    finally:
        warm.shutdown()
    cold_runner = ProcessTrainingRunner(
        save_model=False, torch_threads=1, warm_workers=0, callbacks=[FirstBatchStamp(stamps)]
    )
    cold = TrainingOrchestrator(
        home=root / "home-start-cold", runner=cold_runner, data_dir=data_dir
    )
    try:
        in_cold_child = start_latencies(cold, strategy, stamps, 2)
    finally:
        cold.shutdown()
    ratio = statistics.median(in_child) / statistics.median(in_process)
    print(f"start latency, start_training() → first training batch ({args.starts} runs each):")
    print(summary("in this process", in_process, "ms"))
    print(summary("in a warm child process", in_child, "ms"))
    print(summary("in a cold child process (no warm worker)", in_cold_child, "ms"))
    print(
        f"warm child / in-process (medians) = {ratio:.2f}×; goal ≤ 1.2×: "
        f"{'met' if ratio <= 1.2 else 'MISSED'}"
    )


def main() -> None:
    """Cancel ``--cancels`` runs at random points and print p50/p95 in ms and batches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancels", type=int, default=40, help="runs to start and cancel")
    parser.add_argument(
        "--max-delay", type=float, default=0.6, help="longest wait after training starts (s)"
    )
    parser.add_argument("--bars", type=int, default=8000, help="synthetic hourly bars")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random delays")
    parser.add_argument(
        "--process-cancels", type=int, default=8, help="child-process cancels per phase"
    )
    parser.add_argument("--starts", type=int, default=6, help="runs per start-latency figure")
    args = parser.parse_args()
    if args.cancels < 1:
        parser.error("--cancels must be >= 1")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    rng = random.Random(args.seed)
    import torch

    torch.set_num_threads(1)  # the same threads in this process and in the children

    with tempfile.TemporaryDirectory(prefix="ktrdr-cancel-bench-") as tmp:
        root = Path(tmp)
        os.environ["KTRDR_HOME"] = str(root / "home")
        data_dir = root / "data"
        data_dir.mkdir()
        write_ohlcv_csv(
            generate_ohlcv(args.bars, timeframe="1h", seed=7), data_dir / "SYNTH_1h.csv"
        )
        strategy = root / "cancel_bench.yaml"
        strategy.write_text(STRATEGY, encoding="utf-8")
        runner = CountingRunner()
        orch = TrainingOrchestrator(home=root / "home", runner=runner, data_dir=data_dir)
        cancels: list[Cancel] = []
        started = time.perf_counter()
        try:
            for index in range(args.cancels):
                delay = rng.uniform(0.0, args.max_delay)
                cancels.append(measure(orch, runner, strategy, index, delay))
            batches_per_epoch = orch.get_operation(
                orch.list_operations(limit=1).items[0].operation_id
            ).progress.total_batches
        finally:
            orch.shutdown(cancel_running=True)
        wall = time.perf_counter() - started
        report_in_process(args, runner, cancels, batches_per_epoch, wall)
        intervals = [s for counter in runner.counters for s in counter.intervals]
        process_section(root, data_dir, strategy, args, statistics.median(intervals) * 1e3)


def report_in_process(
    args: argparse.Namespace,
    runner: CountingRunner,
    cancels: list[Cancel],
    batches_per_epoch: int,
    wall: float,
) -> None:
    """Print the in-process figures."""
    intervals = [s for counter in runner.counters for s in counter.intervals]
    batch_ms = statistics.median(intervals) * 1e3
    statuses = {c.status for c in cancels}
    client = [c.client_ms for c in cancels]
    final = [c.final_ms for c in cancels]
    observed = [c.observed_ms for c in cancels if c.observed_ms is not None]
    token = [c.token_ms for c in cancels]
    after_call = [float(c.batches_after_call) for c in cancels]
    after_token = [float(c.batches_after_token) for c in cancels]
    print(
        f"{len(cancels)} cancels through TrainingOrchestrator (SQLite store, {args.bars} "
        f"synthetic 1h bars, {batches_per_epoch} batches/epoch of 64), each at a random "
        f"0-{args.max_delay:g} s into training; {wall:.0f} s in all"
    )
    print(f"  final statuses: {sorted(statuses)}")
    print(
        f"  batch time of this fit: median {batch_ms:.2f} ms "
        f"(p95 {percentile(intervals, 95) * 1e3:.2f} ms, {len(intervals)} batches)"
    )
    print(summary("cancel() → wait() returns (client)", client, "ms"))
    print(summary("  cancel() called → token set", token, "ms"))
    print(summary("token set → final state (orchestrator)", final, "ms"))
    if observed:
        print(summary("token set → run observed it", observed, "ms"))
    print(summary("batches finished after cancel() call", after_call, "batches", 0))
    print(summary("batches finished after token set", after_token, "batches", 0))
    p95 = percentile(client, 95)
    goal = batch_ms + 20.0
    print(
        f"p95 = {p95:.1f} ms = {p95 / batch_ms:.1f} batches; goal ≤ 1 batch + 20 ms = "
        f"{goal:.1f} ms: {'met' if p95 <= goal else 'MISSED'}"
    )
    print(
        f"batches run on after the request: p95 {percentile(after_token, 95):.0f} after the "
        f"token was set (goal ≤ 1: {'met' if percentile(after_token, 95) <= 1 else 'MISSED'}), "
        f"p95 {percentile(after_call, 95):.0f} after cancel() was called"
    )
    if statuses != {"cancelled"}:
        print("WARNING: not every run ended cancelled")


if __name__ == "__main__":
    main()
