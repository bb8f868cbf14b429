"""Ray sweep: a learning-rate sweep on a local Ray vs the same trainings one after another.

One run of this script writes seeded synthetic hourly bars to a temp data directory, starts a
local Ray on this machine's cores (``RayTrainingRunner("local")``, as
``KTRDR_RAY_ADDRESS=local`` does) and trains through :class:`TrainingOrchestrator` objects
(SQLite stores under temp homes; checkpoints off, since ray-mode runs keep none, so both sides
do the same work). It measures, side by side:

* **(a) sweep vs one by one**: wall time of an ``--trials``-trial grid sweep over
  ``model.training.learning_rate`` (``orch.sweep(...)`` until the sweep's ``wait()`` returns
  ``completed``; each trial reserves ``num_cpus=1``, so as many train at once as the machine
  has cores) against the same trainings run one after another in this process
  (``mode="local"``, each ``start_training`` → ``wait()``), once with torch on as many threads
  as the cores (``--threads``) and once on one thread. Printed: the walls, the ratios
  one-by-one / sweep (the sweep's speed-up) and the cores used, and for the sweep's trials the
  median time from a trial's start to its end next to its training time in the worker (the
  rest is the worker's start-up, the data and the model's way back). A trial trains
  ``--trial-epochs`` epochs (40: about 10 s on one thread on this project's 2-core machine).
* **(b) data preparations**: the trials differ only in the learning rate, so the sweep
  prepares their data once and ships it through Ray's object store: ``SweepResult.preparations``
  and the runner's own count (``RayTrainingRunner.preparations``) against the one-by-one runs,
  each of which prepares its own (their median preparation time is printed too).
* **(c) one ray-mode run's overhead**: the same run in ``mode="local"`` and ``mode="ray"``, one
  torch thread on each side (a ray run's default ``num_cpus=1`` gives its worker one), of
  ``--epochs`` epochs (220: about a minute locally on that machine). Printed: the walls,
  ray / local − 1 as a percentage (goal < 10 %), and the time outside training, ray minus
  local (actor and worker start-up, shipping the data, polling, the model archive back and its
  import), which other load on the CPUs disturbs much less than the walls. ``--pairs``
  local/ray pairs run in alternating order.

Warm-up runs on each side come first; starting the local Ray is timed on its own and left out
of every row: an orchestrator pays it once. Torch's OpenMP threads spin while they wait by
default; on cores that other processes also use, two spinning threads fight and a
multi-threaded run slows down many times (10-30x was seen here for this small MLP), so the
script sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it (single-thread runs are
unaffected). The library, and with it torch, is imported after that.

Run: ``python bench/ray_sweep.py [--trials 8] [--trial-epochs 40] [--epochs 220] [--pairs 2]``
(about 10 minutes with the defaults on 2 cores. The run sizes are fixed rather than timed in a
warm-up, so both sides of a row always do the same work whatever the load; the walls printed
say how long the runs took this time. Other work sharing the CPUs makes the walls noisy; the
run prints the load average.)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _shared import small_strategy_yaml

if TYPE_CHECKING:
    from ktrdr_lib import TrainingOrchestrator
    from ktrdr_lib.runners.ray import RayTrainingRunner
    from ktrdr_lib.schemas.sweeps import SweepSnapshot

RATES = [3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 1e-1, 2e-1]
PREPARE_PHASES = ("load_data", "indicators", "fuzzy", "labels")
LR = "model.training.learning_rate"


@dataclass
class TimedRun:
    """One completed run."""

    mode: str
    wall_s: float
    training_time_s: float
    prepare_s: float
    threads: int | None
    epoch_durations: list[float]


def timed_run(orch: TrainingOrchestrator, strategy: Path, mode: str, **fields: Any) -> TimedRun:
    """Train to completion; wall time from start_training to wait() returning."""
    started = time.perf_counter()
    op = orch.start_training(strategy, mode=mode, **fields)
    record = op.wait(timeout=1800)
    wall = time.perf_counter() - started
    if record.status != "completed":
        raise RuntimeError(f"the {mode} run ended {record.status}: {record.error_message}")
    result = op.result()
    phases = result.resource_usage.phase_seconds
    return TimedRun(
        mode=mode,
        wall_s=wall,
        training_time_s=result.training_metrics.training_time_s or 0.0,
        prepare_s=sum(phases.get(phase, 0.0) for phase in PREPARE_PHASES),
        threads=result.resource_usage.cpu_threads,
        epoch_durations=[
            row.duration_s for row in op.metrics().epochs if row.duration_s is not None
        ],
    )


class Orchestrators:
    """One orchestrator per torch thread count for local runs, one for Ray, all under ``root``.

    A local run trains in its orchestrator's worker thread, which keeps the thread count torch
    had when the thread began: an orchestrator made (and first used) right after
    ``torch.set_num_threads(n)`` trains on ``n`` threads.
    """

    def __init__(self, root: Path, data_dir: Path, runner: RayTrainingRunner) -> None:
        self.root = root
        self.data_dir = data_dir
        self.runner = runner
        self._local: dict[int, TrainingOrchestrator] = {}
        self.ray = self._make("ray", ray_runner=runner)

    def _make(self, name: str, **options: Any) -> TrainingOrchestrator:
        from ktrdr_lib import TrainingOrchestrator

        home = self.root / f"home-{name}"
        return TrainingOrchestrator(
            home=home, data_dir=self.data_dir, checkpoint_every=0, **options
        )

    def local(self, threads: int) -> TrainingOrchestrator:
        """The orchestrator whose local runs train on ``threads`` torch threads."""
        import torch

        torch.set_num_threads(threads)
        if threads not in self._local:
            self._local[threads] = self._make(f"local-{threads}")
        return self._local[threads]

    def shutdown(self) -> None:
        for orch in [*self._local.values(), self.ray]:
            orch.shutdown(cancel_running=True, timeout=60)


def trial_times(
    orch: TrainingOrchestrator, sweep: SweepSnapshot
) -> tuple[list[float], list[float]]:
    """Each trial's seconds from its start to its end (its record) and in training (its result)."""
    walls: list[float] = []
    training: list[float] = []
    for trial in sweep.trials:
        record = orch.get_operation(trial.operation_id)
        if record.started_at and record.finished_at:
            walls.append(
                (
                    datetime.fromisoformat(record.finished_at)
                    - datetime.fromisoformat(record.started_at)
                ).total_seconds()
            )
        training.append(orch.result(trial.operation_id).training_metrics.training_time_s or 0.0)
    return walls, training


def verdict(met: bool) -> str:
    """``met`` / ``MISSED``."""
    return "met" if met else "MISSED"


def main() -> None:
    """Run the three rows and print the figures and whether the overhead goal is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000, help="synthetic hourly bars")
    parser.add_argument("--trials", type=int, default=8, help="trials of the sweep (1-12)")
    parser.add_argument("--trial-epochs", type=int, default=40, help="epochs of each trial")
    parser.add_argument("--epochs", type=int, default=220, help="epochs of row (c)'s run")
    parser.add_argument("--pairs", type=int, default=2, help="row (c)'s local/ray pairs")
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="CPUs the local Ray offers"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads of row (a)'s multi-threaded one-by-one runs (0: --cores)",
    )
    args = parser.parse_args()
    if (
        not 1 <= args.trials <= len(RATES)
        or min(args.pairs, args.cores, args.trial_epochs, args.epochs) < 1
    ):
        parser.error(f"--trials must be 1-{len(RATES)}; the other numbers >= 1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see above)
    from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
    from ktrdr_lib.runners.ray import RayTrainingRunner

    threads = args.threads or args.cores
    for name in ("lightning.pytorch", "lightning.fabric", "ktrdr_lib", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rates = RATES[: args.trials]
    bench_started = time.perf_counter()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="ktrdr-ray-bench-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        data_dir.mkdir()
        write_ohlcv_csv(
            generate_ohlcv(args.bars, timeframe="1h", seed=7), data_dir / "SYNTH_1h.csv"
        )
        strategy = root / "ray_bench.yaml"
        strategy.write_text(
            small_strategy_yaml("ray_bench", description="Ray sweep benchmark", epochs=10),
            encoding="utf-8",
        )
        runner = RayTrainingRunner("local", local_cpus=args.cores)
        orchs = Orchestrators(root, data_dir, runner)
        try:
            # warm-ups: first-fit costs in this process, then the first actor
            trial_epochs, long_epochs = args.trial_epochs, args.epochs
            warm = timed_run(orchs.local(1), strategy, "local", epochs=3)
            connect_started = time.perf_counter()
            runner.connect()
            ray_start_s = time.perf_counter() - connect_started
            timed_run(orchs.ray, strategy, "ray", epochs=1)  # warm-up: the first actor

            # (a) and (b): one by one here (cores threads, then one), then the sweep
            one_by_one = {
                n: [
                    timed_run(
                        orchs.local(n), strategy, "local", epochs=trial_epochs, overrides={LR: r}
                    )
                    for r in rates
                ]
                for n in dict.fromkeys((threads, 1))
            }
            prepared_before = runner.preparations
            sweep_started = time.perf_counter()
            handle = orchs.ray.sweep(strategy, {LR: rates}, epochs=trial_epochs)
            record = handle.wait(timeout=3600)
            sweep_wall = time.perf_counter() - sweep_started
            if record.status != "completed":
                raise RuntimeError(f"the sweep ended {record.status}: {record.error_message}")
            sweep = orchs.ray.get_sweep(handle.operation_id)
            runner_preparations = runner.preparations - prepared_before
            trial_walls, trial_training = trial_times(orchs.ray, sweep)

            # (c): the same ~1-minute run local and in ray mode, order alternated
            locals_: list[TimedRun] = []
            rays: list[TimedRun] = []
            for pair in range(args.pairs):
                for mode in ("local", "ray") if pair % 2 == 0 else ("ray", "local"):
                    if mode == "local":
                        locals_.append(
                            timed_run(orchs.local(1), strategy, mode, epochs=long_epochs)
                        )
                    else:
                        rays.append(timed_run(orchs.ray, strategy, mode, epochs=long_epochs))
        finally:
            orchs.shutdown()
    total = time.perf_counter() - bench_started

    result = sweep.result
    if result is None:
        raise RuntimeError("the completed sweep has no result")
    print(
        f"ray sweep: strategy ray_bench (MLP 50-25, batch 64) on {args.bars} synthetic 1h bars; "
        f"a warm-up epoch took {min(warm.epoch_durations):.2f} s on one thread; a local Ray on "
        f"{args.cores} core(s) (starting it took {ray_start_s:.1f} s, left out); checkpoints "
        f"off on both sides; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; {total:.0f} s in all"
    )
    print(
        f"\n(a) {len(rates)} trainings of {trial_epochs} epochs, learning rate "
        f"{rates[0]:g}-{rates[-1]:g}"
    )
    print(
        f"  sweep on a local Ray ({args.cores} cores, num_cpus=1 per trial, "
        f"{sweep.max_concurrent} at once): {sweep_wall:6.1f} s; a trial took "
        f"{statistics.median(trial_walls):.1f} s from start to end (median), of which "
        f"{statistics.median(trial_training):.1f} s training in the worker"
    )
    for n, runs in one_by_one.items():
        wall = sum(run.wall_s for run in runs)
        speedup = wall / sweep_wall
        seen = sorted({run.threads for run in runs if run.threads is not None})
        print(
            f"  one by one here, mode local, {n} torch thread(s) (runs reported {seen}): "
            f"{wall:6.1f} s (a run {statistics.median(r.wall_s for r in runs):.1f} s median)"
            f" → one by one / sweep = {speedup:.2f}x on {args.cores} cores "
            f"({speedup / args.cores * 100:.0f} % of {args.cores}x)"
        )
    singles = one_by_one[1]
    local_preparations = sum(run.prepare_s > 0 for run in singles)
    prepare_median = statistics.median(run.prepare_s for run in singles)
    print(f"\n(b) data preparations for {len(rates)} trainings")
    print(
        f"  sweep: SweepResult.preparations {result.preparations}, the runner's count "
        f"{runner_preparations}; one by one: {local_preparations} (median {prepare_median:.2f} s "
        "each)"
    )
    best = result.trials[0]
    print(
        f"  best trial {result.best_trial}: {LR} {best.config[LR]:g}, {result.metric} "
        f"{best.metric or float('nan'):.4f}; saved again as {result.best_model_name} "
        f"v{result.best_model_version}"
    )
    local_wall = sum(run.wall_s for run in locals_)
    ray_wall = sum(run.wall_s for run in rays)
    overhead = ray_wall / local_wall - 1.0
    outside = statistics.median(
        (r.wall_s - r.training_time_s) - (lo.wall_s - lo.training_time_s)
        for r, lo in zip(rays, locals_, strict=True)
    )
    print(
        f"\n(c) one run of {long_epochs} epochs, one torch thread on each side, {args.pairs} "
        "local/ray pair(s), order alternated"
    )
    for index, (lo, r) in enumerate(zip(locals_, rays, strict=True), start=1):
        print(
            f"  pair {index}: local {lo.wall_s:5.1f} s (training {lo.training_time_s:5.1f} s)  "
            f"ray {r.wall_s:5.1f} s (training in the worker {r.training_time_s:5.1f} s)  "
            f"ratio {r.wall_s / lo.wall_s:.3f}"
        )
    print(
        f"  ray / local (summed wall time) = {ray_wall / local_wall:.3f} → overhead "
        f"{overhead * 100:+.1f} %; goal < 10 %: {verdict(overhead < 0.10)}"
    )
    print(
        f"  time outside training, ray minus local: median {outside:.2f} s = "
        f"{outside / statistics.median(r.wall_s for r in locals_) * 100:+.1f} % of a local run "
        f"(on a 1-minute run {outside / 60 * 100:+.1f} %; goal < 10 %: "
        f"{verdict(outside / 60 < 0.10)})"
    )
    print(f"  load average (1 min) at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
