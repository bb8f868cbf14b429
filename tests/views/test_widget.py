"""The widget view over real runs: widget values, buttons, final styles.

No kernel is needed: widgets work without a frontend (their comm is a no-op), and the view
follows real runs of a TrainingOrchestrator on the small synthetic strategy.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.errors import StateConflictError
from ktrdr_lib.operations.handle import OperationHandle
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot
from ktrdr_lib.views.progress import TrainingProgress

pytest.importorskip("ipywidgets")


def _wait_for_training(op: OperationHandle, batches: int = 1) -> None:
    """Block until the run has trained ``batches`` batches (or ended)."""
    for _ in range(6000):
        snap = op.snapshot()
        if snap.status not in ("pending", "running") or (
            snap.phase == "train" and (snap.epoch - 1) * snap.total_batches + snap.batch >= batches
        ):
            return
        time.sleep(0.01)
    raise AssertionError("the run never reached training")


def test_widget_view_follows_a_run_to_completion(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=2)
    view = op.display("widget")

    assert op.wait(timeout=120).status == "completed"
    assert view.wait(timeout=30)
    assert view.mode == "widget"
    assert view.bar.value == pytest.approx(100.0)
    assert view.bar.description == "100%"
    assert view.bar.bar_style == "success"
    assert view.cancel_button.disabled and view.stop_button.disabled
    assert view.parts.headline.value.startswith("<b>Completed: 2 epochs, test accuracy 0.")
    assert "val loss" in view.parts.metrics.value
    assert [row.epoch for row in view.state.curve] == [1, 2]
    assert all(row.train_loss is not None and row.val_loss is not None for row in view.state.curve)
    assert view.parts.curve.value.count("<polyline") == 4  # train/val loss and accuracy
    summary = view.parts.summary.value
    assert "completed" in summary and "test" in summary and "model" in summary
    assert view.parts.device.layout.display == "none"  # CPU run: no GPU line
    assert view.renders <= view.state.snapshots_seen


def test_cancel_button_aborts_the_run(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=200)
    view = op.display("widget")
    _wait_for_training(op, batches=3)

    view.cancel_button.click()
    assert view.cancel_button.disabled and view.stop_button.disabled  # at once
    # "Cancelling…" until the end is shown (a run that stops very fast may skip straight to it)
    assert "Cancelling…" in view.parts.message.value or view.state.is_final
    assert op.wait(timeout=60).status == "cancelled"
    assert view.wait(timeout=30)
    assert view.bar.bar_style == "warning"
    assert "cancelled from the notebook" in view.parts.summary.value
    # The end replaces "Cancelling…": the headline says what happened, not the last phase.
    assert view.parts.message.value == ""
    headline = view.parts.headline.value
    assert headline.startswith("<b>Cancelled ") and "cancelled from the notebook" in headline
    assert "%" not in headline
    assert op.info().progress.epoch < 200


def test_stop_button_stops_gracefully_and_saves(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=200)
    view = op.display("widget")
    _wait_for_training(op, batches=3)

    view.stop_button.click()
    assert view.stop_button.disabled and not view.cancel_button.disabled  # abort still possible
    assert "Stopping after this epoch" in view.parts.message.value
    assert op.wait(timeout=60).status == "completed"
    assert view.wait(timeout=30)
    result = op.result()
    assert result.training_metrics.early_stopped
    assert result.artifacts.model_id is not None
    assert view.bar.bar_style == "success"
    assert view.cancel_button.disabled and view.stop_button.disabled
    epochs = result.training_metrics.epochs_completed
    assert view.parts.headline.value.startswith(
        f"<b>Stopped after epoch {epochs} (graceful): model saved"
    )
    assert view.parts.message.value == ""  # no stale "Stopping…"


def test_resume_button_continues_a_cancelled_run_below_it(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=40, seed=3)  # far from done at epoch 3
    view = op.display("widget")
    assert view.parts.resume_button.layout.display == "none"  # not while it runs
    for snap in op.follow(timeout=120):
        if snap.phase == "train" and snap.epoch >= 3:
            break
    view.cancel_button.click()
    assert op.wait(timeout=60).status == "cancelled"
    assert view.wait(timeout=30)
    assert view.parts.resume_button.layout.display is None and not view.parts.resume_button.disabled

    view.parts.resume_button.click()
    resumed = view.resumed
    assert resumed is not None and resumed.op.operation_id != op.operation_id
    assert view.parts.resume_button.disabled
    assert view.parts.continuation.children == (resumed.widget,)
    assert resumed.op.wait(timeout=120).status == "completed"
    assert resumed.wait(timeout=30)
    assert [row.epoch for row in resumed.state.curve] == list(range(1, 41))
    assert resumed.parts.headline.value.startswith("<b>Completed: 40 epochs")
    assert resumed.parts.resume_button.layout.display == "none"  # completed: nothing to resume


def test_a_run_without_a_checkpoint_says_why_it_cannot_resume(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    busy = orch.start_training(small_strategy_file, epochs=200)  # it occupies the one worker
    queued = orch.start_training(small_strategy_file, epochs=200)
    view = queued.display("widget")
    view.cancel_button.click()  # still queued: it never trains, so it has no checkpoint
    with contextlib.suppress(StateConflictError):
        busy.cancel()  # the worker then takes the queued one and finds it cancelled
    assert queued.wait(timeout=60).status == "cancelled" and view.wait(timeout=30)
    assert view.parts.resume_button.layout.display is None
    view.parts.resume_button.click()
    assert view.resumed is None
    assert "left no checkpoint" in view.parts.message.value


def test_failed_run_turns_the_bar_red_and_says_why(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, symbols=["TINY"])
    view = op.display("widget")

    assert op.wait(timeout=60).status == "failed"
    assert view.wait(timeout=30)
    assert view.bar.bar_style == "danger"
    assert view.cancel_button.disabled and view.stop_button.disabled
    assert "error" in view.parts.summary.value
    assert view.parts.headline.value.startswith("<b>Failed during load_data: ")

    view.cancel()  # too late: a note, not an exception
    assert "already failed" in view.parts.message.value


def test_fed_snapshots_set_the_widget_values(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=1)
    view = TrainingProgress(op, "widget", start=False, interval=0.0)
    base: dict[str, Any] = {"operation_id": op.operation_id, "status": "running"}

    view.update(ProgressSnapshot(**base, sequence=1, phase="load_data", message="Loading"))
    assert view.bar.bar_style == "info"
    assert "load_data" in view.parts.headline.value

    view.update(
        ProgressSnapshot(
            **base,
            sequence=2,
            phase="train",
            percentage=42.4,
            epoch=2,
            total_epochs=5,
            batch=10,
            total_batches=20,
            elapsed_s=75.0,
            eta_s=42.0,
            metrics={"train_loss": 0.8123, "val_loss": 0.9, "val_accuracy": 0.61},
            metrics_epoch=1,
            resources=DeviceResources(
                device="cuda:0",
                gpu_used=True,
                gpu_name="NVIDIA H200",
                gpu_memory_allocated_mb=512.0,
                gpu_memory_total_mb=143771.0,
            ),
        )
    )
    assert view.bar.value == pytest.approx(42.4)
    assert view.bar.description == "42%"
    assert "Epoch 2/5 · Batch 10/20" in view.parts.headline.value
    assert "elapsed 1:15" in view.parts.times.value and "ETA 0:42" in view.parts.times.value
    assert "0.8123" in view.parts.metrics.value and "0.610" in view.parts.metrics.value
    assert view.parts.device.layout.display is None
    assert (
        "NVIDIA H200" in view.parts.device.value
        and "512.0 / 143771.0 MB" in view.parts.device.value
    )
    assert [row.epoch for row in view.state.curve] == [1]

    view.update(ProgressSnapshot(**base, sequence=2, phase="save"))  # stale: ignored
    assert "train" in view.parts.headline.value
    view.close()
    op.wait(timeout=60)
