"""TrainingOrchestrator end to end: real training in worker threads, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import msgspec
import pytest
import torch

from ktrdr_lib import (
    ConfigError,
    HostUnavailableError,
    LocalTrainingRunner,
    NotFoundError,
    OperationStore,
    StateConflictError,
    StrategyNotFoundError,
    TrainingOrchestrator,
)
from ktrdr_lib.models.store import ModelStore, load_model
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.run import run_training_pipeline
from ktrdr_lib.progress.bridge import ProgressBridge
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.schemas.results import TrainingResult


class BatchCounter(pl.Callback):
    """Counts training batches; at batch ``pause_at`` it signals and waits for the test."""

    def __init__(self, pause_at: int | None = None) -> None:
        self.count = 0
        self.pause_at = pause_at
        self.reached = threading.Event()
        self.resume = threading.Event()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.count += 1
        if self.pause_at is not None and self.count == self.pause_at:
            self.reached.set()
            self.resume.wait(30)


@pytest.fixture
def orch_factory(synthetic_data_dir: Path, isolated_home: Path):
    made: list[TrainingOrchestrator] = []

    def make(**kwargs: Any) -> TrainingOrchestrator:
        kwargs.setdefault("data_dir", synthetic_data_dir)
        kwargs.setdefault("progress_interval", 0.0)
        orch = TrainingOrchestrator(**kwargs)
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True, timeout=60)


def test_real_training_reports_monotonic_progress_and_a_result(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    orch = orch_factory()
    op = orch.start_training(small_strategy_file, epochs=3)
    snaps = list(op.follow())
    final = op.wait(timeout=120)

    assert final.status == "completed"
    sequences = [s.sequence for s in snaps]
    assert sequences == sorted(set(sequences))  # strictly increasing
    percentages = [s.percentage for s in snaps]
    assert percentages == sorted(percentages)  # never decreasing
    assert snaps[-1].status == "completed" and snaps[-1].percentage == 100.0
    phases = [s.phase for s in snaps]
    for phase in ("load_data", "indicators", "fuzzy", "labels", "train", "evaluate", "save"):
        assert phase in phases
    train = [s for s in snaps if s.phase == "train" and s.batch]
    assert any(s.epoch == 2 for s in train)
    assert "Epoch 3/3 · Batch" in " ".join(s.message for s in train)
    # progress counted across epochs: epoch 2 starts above where epoch 1 ended... monotonic
    assert all(s.total_batches > 0 and s.total_epochs == 3 for s in train)

    result = op.result()
    assert isinstance(result, TrainingResult)
    assert result.session_info.operation_id == op.operation_id
    assert result.artifacts.model_id == "small_test/v1"
    metrics = op.metrics()
    assert [row.epoch for row in metrics.epochs] == [1, 2, 3]
    assert all(row.val_loss is not None and row.duration_s for row in metrics.epochs)
    stored = OperationStore(orch.store.path).get(op.operation_id)
    assert stored.status == "completed" and stored.progress.percentage == 100.0
    assert stored.metadata["parameters"]["epochs"] == 3


def test_bad_request_raises_and_stores_nothing(orch_factory: Any, tmp_path: Path) -> None:
    orch = orch_factory()
    with pytest.raises(StrategyNotFoundError):
        orch.start_training("no_such_strategy")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        orch.start_training(bad)
    with pytest.raises(HostUnavailableError, match="no training host is configured"):
        orch.start_training("rsi_mean_reversion", mode="host")
    assert orch.list_operations().total_count == 0


def test_abort_mid_epoch_stops_within_two_batches(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    counter = BatchCounter(pause_at=40)  # the small strategy has 28 batches an epoch
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=100)
    assert counter.reached.wait(60)
    at_cancel = counter.count
    record = op.cancel(reason="enough")
    assert record.status == "cancelling"
    counter.resume.set()
    final = op.wait(timeout=60)
    assert final.status == "cancelled"
    assert final.cancellation_reason == "enough"
    assert counter.count - at_cancel <= 2
    assert final.progress.status == "cancelled"
    assert final.progress.epoch == 2 and 0 < final.progress.batch < 28
    with pytest.raises(StateConflictError, match="is cancelled"):
        op.result()
    partial = orch.partial_result(op.operation_id)
    assert partial is not None and partial.test_metrics is None
    assert partial.training_metrics.epochs_completed == 1
    latencies = orch.health().last_cancel_latencies
    assert latencies[-1].operation_id == op.operation_id
    assert latencies[-1].final_status == "cancelled"
    assert latencies[-1].observed_ms is not None


def test_cancel_is_idempotent_and_final_runs_refuse(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    counter = BatchCounter(pause_at=5)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=50)
    assert counter.reached.wait(60)
    op.cancel()
    op.cancel()
    counter.resume.set()
    assert op.wait(timeout=60).status == "cancelled"
    with pytest.raises(StateConflictError, match="cannot be cancelled: it is already cancelled"):
        op.cancel()
    with pytest.raises(NotFoundError, match="Operation not found: op_nope"):
        orch.cancel("op_nope")


class PausingRunner(LocalTrainingRunner):
    """The real pipeline, pausing when a preparation phase starts."""

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase
        self.reached = threading.Event()
        self.resume = threading.Event()

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        runner = self
        token, tracker = control.token, control.tracker

        class Observer:
            def on_phase(self, phase: Any, message: str) -> None:
                tracker.on_phase(phase, message)
                if phase == runner.phase:
                    runner.reached.set()
                    runner.resume.wait(30)

        return run_training_pipeline(
            context, observer=Observer(), token=token, callbacks=[ProgressBridge(tracker)]
        )


def test_cancel_during_data_preparation(orch_factory: Any, small_strategy_file: Path) -> None:
    runner = PausingRunner("indicators")
    orch = orch_factory(runner=runner)
    op = orch.start_training(small_strategy_file)
    assert runner.reached.wait(60)
    op.cancel()
    runner.resume.set()
    final = op.wait(timeout=60)
    assert final.status == "cancelled"
    assert final.progress.phase in ("indicators", "fuzzy")
    assert orch.metrics(op.operation_id).epochs == []


def test_cancel_before_start_is_honoured(orch_factory: Any, small_strategy_file: Path) -> None:
    counter = BatchCounter(pause_at=3)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]), max_concurrent=1)
    first = orch.start_training(small_strategy_file, epochs=50)
    queued = orch.start_training(small_strategy_file, epochs=2)
    assert counter.reached.wait(60)
    assert queued.status == "pending"
    assert orch.health().queue_depth == 1
    record = queued.cancel(reason="not needed")
    assert record.status == "cancelled"
    # its latency is in health at once, not when the queue reaches it
    queued_latencies = [
        item
        for item in orch.health().last_cancel_latencies
        if item.operation_id == queued.operation_id
    ]
    assert len(queued_latencies) == 1 and queued_latencies[0].final_status == "cancelled"
    counter.resume.set()
    first.cancel()
    assert first.wait(timeout=60).status == "cancelled"
    ids = [item.operation_id for item in orch.health().last_cancel_latencies]
    assert ids.count(queued.operation_id) == 1 and ids.count(first.operation_id) == 1
    final = queued.wait(timeout=60)
    assert final.status == "cancelled" and final.cancellation_reason == "not needed"
    assert orch.metrics(queued.operation_id).epochs == []
    assert final.started_at is None


def test_graceful_stop_finishes_the_epoch_then_evaluates_and_saves(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    counter = BatchCounter(pause_at=35)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=100)
    assert counter.reached.wait(60)
    paused = op.snapshot()
    op.cancel(graceful=True, reason="good enough")
    assert orch.get_operation(op.operation_id).cancel_kind == "graceful"
    counter.resume.set()
    final = op.wait(timeout=120)
    assert final.status == "completed"
    assert final.cancel_kind == "graceful" and final.cancellation_reason == "good enough"
    result = op.result()
    tm = result.training_metrics
    # The epoch running at the request ran to its end (every batch), and no further one.
    per_epoch = paused.total_batches
    epochs = -(-35 // per_epoch)
    assert counter.count == epochs * per_epoch
    assert tm.epochs_completed == epochs and tm.early_stopped
    assert tm.interrupted_epoch is None
    assert [row.epoch for row in orch.metrics(op.operation_id).epochs] == list(range(1, epochs + 1))
    assert result.session_info.cancellation_reason == "good enough"
    assert result.artifacts.model_id is not None
    assert result.test_metrics is not None


def test_an_abort_escalates_a_graceful_stop_and_its_reason_wins(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    counter = BatchCounter(pause_at=5)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=100)
    assert counter.reached.wait(60)
    op.cancel(graceful=True, reason="good enough")
    record = op.cancel(reason="no, stop now")
    assert record.status == "cancelling" and record.cancel_kind == "abort"
    assert record.cancellation_reason == "no, stop now"
    counter.resume.set()
    final = op.wait(timeout=60)
    assert final.status == "cancelled"
    assert final.cancellation_reason == "no, stop now" and final.cancel_kind == "abort"
    assert counter.count == 5  # the abort stopped at the next batch
    partial = orch.partial_result(op.operation_id)
    assert partial is not None
    assert partial.session_info.cancellation_reason == "no, stop now"
    assert partial.training_metrics.epochs_completed == 0
    phases = partial.resource_usage.phase_seconds
    assert list(phases) == ["load_data", "indicators", "fuzzy", "labels", "train"]
    assert all(seconds >= 0 for seconds in phases.values())
    reached = partial.training_metrics.interrupted_epoch
    assert reached is not None
    assert (reached.epoch, reached.batches_completed) == (1, 5)
    assert reached.batches_total > 5
    assert orch.metrics(op.operation_id).epochs == []
    assert partial.artifacts.model_id is None
    assert partial.artifacts.no_model_reason == (
        "no model was saved: the run was cancelled before completing its first epoch (a model "
        "is saved when a run completes, a graceful stop after a completed epoch included)"
    )
    assert ModelStore(orch.models_dir).names() == []


class StopMidEpoch(BatchCounter):
    """At batch ``pause_at`` it waits for the test, then stops the fit there, mid-epoch."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_batch_end(trainer, *args)
        if self.count == self.pause_at:
            trainer.should_stop = True


def test_a_run_stopped_before_its_first_epoch_completed_saves_no_model(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    """A stop that ends training inside the first epoch leaves an untrained network: it is
    not evaluated or saved (load_model never returns it), and the result says why."""
    stopper = StopMidEpoch(pause_at=3)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[stopper]))
    op = orch.start_training(small_strategy_file, epochs=5)
    assert stopper.reached.wait(60)
    op.cancel(graceful=True, reason="enough")
    stopper.resume.set()
    final = op.wait(timeout=120)
    assert final.status == "cancelled"
    assert final.cancellation_reason == "enough"
    partial = orch.partial_result(op.operation_id)
    assert partial is not None
    assert partial.training_metrics.epochs_completed == 0
    assert partial.test_metrics is None
    assert partial.artifacts.model_id is None and partial.artifacts.model_path is None
    assert "before completing its first epoch" in (partial.artifacts.no_model_reason or "")
    assert ModelStore(orch.models_dir).names() == []
    with pytest.raises(NotFoundError, match="no stored model named 'small_test'"):
        load_model("small_test", root=orch.models_dir)


def test_a_run_told_not_to_save_says_so_in_its_result(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    orch = orch_factory(runner=LocalTrainingRunner(save_model=False))
    op = orch.start_training(small_strategy_file, epochs=1)
    assert op.wait(timeout=120).status == "completed"
    artifacts = op.result().artifacts
    assert artifacts.model_id is None
    assert artifacts.no_model_reason is not None and "saving was turned off" in (
        artifacts.no_model_reason
    )


def test_failures_end_failed_with_a_message(orch_factory: Any, small_strategy_file: Path) -> None:
    orch = orch_factory()
    diverging = orch.start_training(
        small_strategy_file, overrides={"learning_rate": 1e12, "optimizer": "sgd"}
    )
    too_short = orch.start_training(small_strategy_file, symbols=["TINY"])
    record = diverging.wait(timeout=120)
    assert record.status == "failed"
    assert "diverged" in (record.error_message or "")
    record = too_short.wait(timeout=120)
    assert record.status == "failed"
    assert "too few bars for TINY 1h" in (record.error_message or "")
    assert record.progress.status == "failed"


def test_ten_queued_runs_all_complete(orch_factory: Any, small_strategy_file: Path) -> None:
    orch = orch_factory(max_concurrent=1)
    ops = [orch.start_training(small_strategy_file, epochs=1, seed=i) for i in range(10)]
    assert orch.list_operations(active_only=True).total_count >= 9
    finals = [op.wait(timeout=300) for op in ops]
    assert [f.status for f in finals] == ["completed"] * 10
    listing = orch.list_operations(limit=5)
    assert listing.total_count == 10 and len(listing.items) == 5
    assert listing.active_count == 0
    versions = sorted(op.result().artifacts.model_version or 0 for op in ops)
    assert versions == list(range(1, 11))


@pytest.mark.slow
def test_concurrent_readers_while_training(orch_factory: Any, small_strategy_file: Path) -> None:
    orch = orch_factory(progress_interval=0.01)
    op = orch.start_training(small_strategy_file, epochs=20)
    errors: list[BaseException] = []
    reads = [0]

    def read() -> None:
        try:
            while op.status not in ("completed", "failed", "cancelled"):
                orch.get_operation(op.operation_id)
                orch.list_operations()
                orch.metrics(op.operation_id)
                OperationStore(orch.store.path).get(op.operation_id)
                reads[0] += 1
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    assert op.wait(timeout=300).status == "completed"
    for t in threads:
        t.join(30)
    assert errors == []
    assert reads[0] > 0


def test_follow_from_another_orchestrator_polls_the_store(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    counter = BatchCounter(pause_at=3)
    runner_side = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = runner_side.start_training(small_strategy_file, epochs=2)
    assert counter.reached.wait(60)
    reader = orch_factory()  # same KTRDR_HOME, another orchestrator (as another process would)
    assert reader.get_operation(op.operation_id).status == "running"
    # Cancelled through the shared store; the runner's side honours it at its next batch.
    assert reader.cancel(op.operation_id, reason="from elsewhere").status == "cancelling"
    token = runner_side._live[op.operation_id].token
    assert token.wait(30)  # the runner's watcher read it from the store and set the run's token
    assert not token.graceful and token.reason == "from elsewhere"
    counter.resume.set()
    snaps = list(reader.follow(op.operation_id))
    assert snaps[-1].status == "cancelled"
    assert reader.get_operation(op.operation_id).cancellation_reason == "from elsewhere"
    assert [s.sequence for s in snaps] == sorted({s.sequence for s in snaps})


def test_health_reports_the_essentials(orch_factory: Any) -> None:
    health = orch_factory(max_concurrent=2).health()
    assert health.mode == "local" and health.max_concurrent == 2
    assert health.store_path.endswith("operations.db")
    assert health.versions["torch"] and health.versions["lightning"]
    assert health.device["cuda_available"] is torch.cuda.is_available()
    assert health.device["cpu_threads"] == torch.get_num_threads()
    assert msgspec.json.decode(msgspec.json.encode(health))["queue_depth"] == 0


RESTART_SCRIPT = """
import sys, time
from ktrdr_lib import TrainingOrchestrator, LocalTrainingRunner
import lightning.pytorch as pl

class Slow(pl.Callback):
    def on_train_batch_end(self, *args):
        time.sleep(0.05)

orch = TrainingOrchestrator(data_dir=sys.argv[2], runner=LocalTrainingRunner(callbacks=[Slow()]))
op = orch.start_training(sys.argv[1], epochs=200)
while op.status != "running" or op.snapshot().phase != "train":
    time.sleep(0.05)
print(op.operation_id, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_restart_marks_interrupted(
    small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    env = {**os.environ, "KTRDR_HOME": str(isolated_home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTART_SCRIPT, str(small_strategy_file), str(synthetic_data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        op_id = proc.stdout.readline().strip()
        assert op_id.startswith("op_training_")
        assert OperationStore(isolated_home / "operations.db").get(op_id).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    orch = TrainingOrchestrator()
    try:
        record = orch.get_operation(op_id)
        assert record.status == "interrupted"
        assert "stopped before it finished" in (record.error_message or "")
        assert json.loads(msgspec.json.encode(record))["finished_at"]
    finally:
        orch.shutdown()


def test_a_second_cancel_in_the_moment_a_cancelled_run_ends_is_a_conflict(
    orch_factory: Any, small_strategy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the final status being stored and the worker letting go of the run, a repeated
    cancel must not be taken for the one that ended it."""
    ended, release = threading.Event(), threading.Event()
    original = ProgressTracker.finish

    def held(self: ProgressTracker, status: Any, message: str) -> Any:
        ended.set()  # the final status is stored; the run is still in the worker's hands
        release.wait(60)
        return original(self, status, message)

    monkeypatch.setattr(ProgressTracker, "finish", held)
    counter = BatchCounter(pause_at=3)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=50)
    assert counter.reached.wait(60)
    first = op.cancel(reason="first")
    assert first.status in ("cancelling", "cancelled")
    counter.resume.set()
    assert ended.wait(60)
    try:
        with pytest.raises(StateConflictError, match="already cancelled"):
            op.cancel(reason="second")
    finally:
        release.set()
    final = op.wait(60)
    assert final.status == "cancelled" and final.cancellation_reason == "first"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_recurrent_run_is_aborted_mid_epoch_like_an_mlp(
    orch_factory: Any, small_strategy_file: Path, kind: str
) -> None:
    recurrent = small_strategy_file.read_text(encoding="utf-8").replace(
        "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}",
        f"  type: {kind}\n  architecture: {{sequence_length: 8, hidden_size: 8, num_layers: 1}}",
    )
    assert f"type: {kind}" in recurrent
    small_strategy_file.write_text(recurrent, encoding="utf-8")
    counter = BatchCounter(pause_at=35)
    orch = orch_factory(runner=LocalTrainingRunner(callbacks=[counter]))
    op = orch.start_training(small_strategy_file, epochs=100)
    assert counter.reached.wait(60)
    at_cancel = counter.count
    op.cancel(reason="enough")
    counter.resume.set()
    final = op.wait(timeout=60)
    assert final.status == "cancelled"
    assert counter.count - at_cancel <= 2
    assert final.progress.epoch == 2 and final.progress.batch > 0
    partial = orch.partial_result(op.operation_id)
    assert partial is not None and partial.training_metrics.epochs_completed == 1
