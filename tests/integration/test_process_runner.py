"""ProcessTrainingRunner: real trainings in real spawned child processes.

Each child pays Lightning's imports (a few seconds), so the tests share runs where they can.
Batches after a cancel are counted from the snapshots' batch numbers, never from the clock.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import msgspec
import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import (
    ConfigError,
    DataError,
    OperationCancelled,
    StrategyError,
    StrategyNotFoundError,
    StrategyProblem,
    TrainingError,
)
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.progress.cancel_callback import CancelCallback
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.runners.process import ProcessTrainingRunner, _rebuild_error
from ktrdr_lib.runners.worker import ChildMessage, ErrorMessage, _error_message
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from tests.conftest import REGRESSION_STRATEGY

pytestmark = pytest.mark.slow  # every test here trains a real model in a child process or server

BATCHES_PER_EPOCH = 28  # the small strategy on the synthetic data


class HoldUntilCancelled(pl.Callback):
    """In the child: after training batch ``at`` (counted across epochs), wait until the run's
    cancel token is set, so the test cancels at a known batch without racing the clock."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.count += 1
        if self.count == self.at:
            token = next(cb.token for cb in trainer.callbacks if isinstance(cb, CancelCallback))
            token.wait(60)


@pytest.fixture
def orch_factory(synthetic_data_dir: Path) -> Iterator[Any]:
    made: list[TrainingOrchestrator] = []

    def make(runner: ProcessTrainingRunner, **kwargs: Any) -> TrainingOrchestrator:
        orch = TrainingOrchestrator(
            store=OperationStore(":memory:"),
            runner=runner,
            data_dir=synthetic_data_dir,
            progress_interval=0.0,
            **kwargs,
        )
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True, timeout=60)


def _follow_until(op: Any, items: int) -> list[ProgressSnapshot]:
    """Snapshots until one has ``items_processed >= items`` (or the run ends)."""
    seen = []
    for snap in op.follow(timeout=60):
        seen.append(snap)
        if snap.phase == "train" and snap.items_processed >= items:
            break
    return seen


def test_a_run_in_a_child_matches_the_in_process_run(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    context = build_training_context(small_strategy_file, epochs=2, data_dir=synthetic_data_dir)
    local = LocalTrainingRunner(save_model=False).run(
        context,
        RunControl(
            token=CancelToken(),
            tracker=ProgressTracker(context.operation_id, total_epochs=2, publish=lambda s: None),
        ),
    )
    snaps: list[ProgressSnapshot] = []
    rows: list[EpochHistoryRow] = []
    tracker = ProgressTracker(
        context.operation_id,
        total_epochs=2,
        publish=snaps.append,
        on_epoch=rows.append,
        min_interval=0.0,
        start_sequence=5,
    )
    runner = ProcessTrainingRunner()
    child = runner.run(context, RunControl(token=CancelToken(), tracker=tracker))

    as_dict = msgspec.to_builtins
    assert as_dict(child).keys() == as_dict(local).keys()
    drop = {"training_time_s", "samples_per_second"}
    child_fit = {k: v for k, v in as_dict(child.training_metrics).items() if k not in drop}
    local_fit = {k: v for k, v in as_dict(local.training_metrics).items() if k not in drop}
    assert child_fit == local_fit  # same seed, same CPU arithmetic
    assert child.validation_metrics == local.validation_metrics
    assert child.test_metrics == local.test_metrics
    assert child.data_summary == local.data_summary
    assert child.artifacts.model_id is not None  # the child saved the model
    assert Path(child.artifacts.model_path or "").is_dir()
    assert runner.child_pid(context.operation_id) is None  # the child is gone

    # every batch's snapshot reached the parent, renumbered in the parent's sequence
    sequences = [s.sequence for s in snaps]
    assert sequences == list(range(6, 6 + len(snaps)))
    percentages = [s.percentage for s in snaps]
    assert percentages == sorted(percentages)
    assert {s.operation_id for s in snaps} == {context.operation_id}
    train = [s for s in snaps if s.phase == "train"]
    assert max(s.items_processed for s in train) == 2 * BATCHES_PER_EPOCH
    assert [s.phase for s in snaps][-1] == "save"
    assert [r.epoch for r in rows] == [1, 2]
    assert rows[-1].val_loss == child.training_metrics.final_val_loss


def test_a_gru_regression_in_a_child_matches_the_in_process_run(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = tmp_path / "gru_returns.yaml"
    strategy.write_text(
        REGRESSION_STRATEGY.replace(
            "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}",
            "  type: gru\n  architecture: {sequence_length: 6, hidden_size: 8, num_layers: 1}",
        ),
        encoding="utf-8",
    )
    context = build_training_context(strategy, epochs=2, data_dir=synthetic_data_dir)
    assert context.strategy.model.type == "gru"

    def control() -> RunControl:
        tracker = ProgressTracker(context.operation_id, total_epochs=2, publish=lambda s: None)
        return RunControl(token=CancelToken(), tracker=tracker)

    local = LocalTrainingRunner(save_model=False).run(context, control())
    child = ProcessTrainingRunner().run(context, control())
    assert child.test_metrics is None and child.test_regression is not None
    assert child.test_regression == local.test_regression  # same seed, same CPU arithmetic
    assert child.validation_regression == local.validation_regression


def test_abort_and_graceful_stop_in_children(orch_factory: Any, small_strategy_file: Path) -> None:
    at = BATCHES_PER_EPOCH + 5  # both runs hold inside their second epoch
    orch = orch_factory(ProcessTrainingRunner(callbacks=[HoldUntilCancelled(at)]), max_concurrent=2)
    aborted = orch.start_training(small_strategy_file, epochs=50)
    stopped = orch.start_training(small_strategy_file, epochs=50)
    assert _follow_until(aborted, at)[-1].items_processed == at
    assert _follow_until(stopped, at)[-1].items_processed == at
    record = aborted.cancel(reason="enough")
    assert record.status == "cancelling"
    stopped.cancel(graceful=True, reason="good enough")

    final = aborted.wait(timeout=60)
    assert final.status == "cancelled"
    assert final.cancellation_reason == "enough"
    assert final.progress.status == "cancelled"
    assert final.progress.items_processed - at <= 1  # stopped within one batch of the hold
    assert final.progress.epoch == 2
    assert final.error_message is None
    assert [row.epoch for row in orch.metrics(aborted.operation_id).epochs] == [1]
    partial = orch.partial_result(aborted.operation_id)
    assert partial is not None and partial.test_metrics is None
    assert partial.training_metrics.epochs_completed == 1
    reached = partial.training_metrics.interrupted_epoch
    assert reached is not None and reached.epoch == 2
    assert reached.batches_total == BATCHES_PER_EPOCH
    assert 5 <= reached.batches_completed <= 6
    # the child's moment of acting on the cancel reaches the health report
    latency = next(
        item
        for item in orch.health().last_cancel_latencies
        if item.operation_id == aborted.operation_id
    )
    assert latency.observed_ms is not None and 0 <= latency.observed_ms <= latency.final_ms

    final = stopped.wait(timeout=120)
    assert final.status == "completed"
    assert final.progress.percentage == 100.0
    result = stopped.result()
    # graceful: the second epoch, running at the request, ran to its end and nothing after it
    assert result.training_metrics.early_stopped
    assert result.training_metrics.epochs_completed == 2
    assert result.training_metrics.interrupted_epoch is None
    assert [row.epoch for row in orch.metrics(stopped.operation_id).epochs] == [1, 2]
    assert result.session_info.cancellation_reason == "good enough"
    assert result.test_metrics is not None
    assert result.artifacts.model_id is not None


def test_an_abort_before_the_child_is_up_is_honoured_at_once(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    runner = ProcessTrainingRunner(warm_workers=0)  # every run starts its own child
    orch = orch_factory(runner)
    op = orch.start_training(small_strategy_file, epochs=50)
    for snap in op.follow(timeout=60):
        if snap.message == "Starting a training process":
            break
    record = op.cancel(reason="changed my mind")
    final = op.wait(timeout=60)
    assert record.status in ("cancelling", "cancelled")
    assert final.status == "cancelled" and final.cancellation_reason == "changed my mind"
    # it ended before the child it waited for said ready: nothing was prepared or trained
    assert final.progress.phase == "queued" and final.progress.items_processed == 0
    latency = orch.health().last_cancel_latencies[-1]
    assert latency.operation_id == op.operation_id and latency.observed_ms is not None
    assert runner.pool.idle == 0


def test_an_abort_during_data_preparation_stops_before_training(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    runner = ProcessTrainingRunner()
    assert runner.pool.size == 1
    orch = orch_factory(runner)  # the orchestrator starts the warm worker
    assert runner.pool.wait_ready(120)
    op = orch.start_training(small_strategy_file, epochs=50, symbols=["SYNTH", "SYNTH2"])
    for snap in op.follow(timeout=60):
        if snap.phase == "load_data":
            break
    op.cancel(reason="wrong symbols")
    final = op.wait(timeout=60)
    assert final.status == "cancelled"
    assert final.progress.phase in ("load_data", "indicators", "fuzzy", "labels")
    assert final.progress.items_processed == 0 and orch.metrics(op.operation_id).epochs == []
    partial = orch.partial_result(op.operation_id)
    assert partial is not None and partial.training_metrics.interrupted_epoch is None


def test_a_warm_worker_trains_the_next_run_and_is_replaced(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    runner = ProcessTrainingRunner(torch_threads=1)
    orch = orch_factory(runner)
    assert runner.pool.wait_ready(120)
    warm_pid = runner.pool._idle[0].pid
    op = orch.start_training(small_strategy_file, epochs=1)
    seen_pid = None
    for _snap in op.follow(timeout=60):
        seen_pid = seen_pid or runner.child_pid(op.operation_id)
    assert op.wait(timeout=60).status == "completed"
    assert seen_pid == warm_pid  # the run went to the worker that was already up
    # one run per worker by default: a fresh replacement gets ready for the next run
    assert runner.pool.wait_ready(120)
    assert runner.pool._idle[0].pid not in (warm_pid, None)
    again = orch.start_training(small_strategy_file, epochs=1)
    assert again.wait(timeout=60).status == "completed"
    runner.close()
    assert runner.pool.idle == 0


def test_a_failing_child_and_a_killed_child_end_failed(
    orch_factory: Any, small_strategy_file: Path
) -> None:
    runner = ProcessTrainingRunner(callbacks=[HoldUntilCancelled(3)])
    orch = orch_factory(runner, max_concurrent=2)
    too_short = orch.start_training(small_strategy_file, symbols=["TINY"])
    doomed = orch.start_training(small_strategy_file, epochs=50)
    _follow_until(doomed, 3)
    pid = runner.child_pid(doomed.operation_id)
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # this test's own grandchild

    killed = doomed.wait(timeout=60)
    assert killed.status == "failed"
    assert f"training process (pid {pid}) was killed by SIGKILL" in (killed.error_message or "")
    assert killed.progress.status == "failed"

    record = too_short.wait(timeout=60)
    assert record.status == "failed"
    assert "too few bars for TINY 1h" in (record.error_message or "")
    assert record.progress.phase == "load_data"


def test_errors_cross_the_pipe_as_the_same_class() -> None:
    decoder = msgspec.msgpack.Decoder(ChildMessage)
    problem = StrategyProblem(path="model.training.epochs", message="must be >= 1", value="0")
    for raised, kind in [
        (DataError("no bars for NOPE 1h in /data"), DataError),
        (OperationCancelled("enough"), OperationCancelled),
        (StrategyError([problem]), StrategyError),
        (StrategyNotFoundError("gone", ["/a"]), StrategyNotFoundError),
        (ZeroDivisionError("division by zero"), TrainingError),
    ]:
        wire = decoder.decode(msgspec.msgpack.encode(_error_message(raised)))
        assert isinstance(wire, ErrorMessage)
        rebuilt = _rebuild_error(wire)
        assert type(rebuilt) is kind
        assert str(rebuilt) == (
            str(raised) if kind is not TrainingError else "ZeroDivisionError: division by zero"
        )
    assert _rebuild_error(
        decoder.decode(msgspec.msgpack.encode(_error_message(StrategyError([problem]))))
    ).problems == [problem]  # type: ignore[attr-defined]


def test_a_run_cancelled_before_it_starts_spawns_nothing(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    context = build_training_context(small_strategy_file, epochs=1, data_dir=synthetic_data_dir)
    tracker = ProgressTracker(context.operation_id, total_epochs=1, publish=lambda s: None)
    token = CancelToken()
    token.cancel(reason="before it began")
    with pytest.raises(OperationCancelled, match="before it began"):
        ProcessTrainingRunner().run(context, RunControl(token=token, tracker=tracker))
    assert tracker.emitted == 0


def test_start_methods_that_fork_are_refused() -> None:
    with pytest.raises(ValueError, match="forking a threaded process"):
        ProcessTrainingRunner(start_method="fork")
    with pytest.raises(ValueError, match="torch_threads"):
        ProcessTrainingRunner(torch_threads=0)


def test_the_api_can_train_in_child_processes(synthetic_data_dir: Path) -> None:
    from litestar.testing import TestClient

    from api import create_app

    options = {"store": OperationStore(":memory:"), "data_dir": synthetic_data_dir}
    app = create_app(local_runner="process", orchestrator_options=options)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # open: loopback only
        orchestrator = client.app.state.orchestrator
        assert isinstance(orchestrator.runners["local"], ProcessTrainingRunner)
        assert client.get("/api/v1/health").json()["mode"] == "local"
    with TestClient(create_app(orchestrator_options=dict(options))) as client:
        assert isinstance(client.app.state.orchestrator.runners["local"], LocalTrainingRunner)
    with pytest.raises(ConfigError, match="'fork' is not a local runner"):
        create_app(local_runner="fork")  # type: ignore[arg-type]
