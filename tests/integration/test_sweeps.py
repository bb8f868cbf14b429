"""Sweeps on a real local Ray (2 CPUs): trials as operations, ASHA's early stops, one data
preparation, the ranked result with the best model saved, and cancelling a sweep."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ktrdr_lib import TrainingOrchestrator, load_model
from ktrdr_lib.runners.ray import RayTrainingRunner
from tests.integration.ray_support import local_ray, ray_orch

__all__ = ["local_ray", "ray_orch"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_an_asha_sweep_stops_bad_trials_early_and_ranks_every_trial(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    runner = ray_orch.runners["ray"]
    assert isinstance(runner, RayTrainingRunner)
    prepared_before = runner.preparations
    # A learning rate of 1e-6 barely moves: it trails every rung and ASHA stops it.
    rates = [0.05, 0.01, 1e-6, 3e-6]
    handle = ray_orch.sweep(
        small_strategy_file,
        {"model.training.learning_rate": rates},
        epochs=8,
        # ~220 batches an epoch: ASHA's graceful stop lands well before a trial's last epoch
        overrides={"model.training.batch_size": 8},
        early_stop="asha",
        grace_period=1,
        reduction_factor=2,
        max_concurrent=2,
        best_model_name="small_best",
    )
    seen = list(ray_orch.follow_sweep(handle.operation_id, interval=0.2, timeout=240))
    final = seen[-1]
    assert final.operation.status == "completed", final.operation.error_message
    assert final.operation.operation_type == "sweep"
    assert any(s.operation.status == "running" for s in seen)
    result = final.result
    assert result is not None
    assert len(result.trials) == 4
    assert sorted(t.config["model.training.learning_rate"] for t in result.trials) == sorted(rates)
    assert result.early_stopped >= 1
    stopped = [t for t in result.trials if t.stopped_early]
    for trial in stopped:  # stopped gracefully: the trial still evaluated and saved
        assert trial.status == "completed"
        assert trial.epoch < 8
        assert trial.model_name is not None and trial.test_accuracy is not None
        record = ray_orch.get_operation(trial.operation_id)
        assert record.cancel_kind == "graceful"
        assert (record.cancellation_reason or "").startswith("stopped early by ASHA after epoch")
    metrics = [t.metric for t in result.trials]
    assert all(m is not None for m in metrics)
    assert metrics == sorted(metrics)  # val_loss, best (lowest) first
    assert result.best_trial == result.trials[0].trial
    assert result.best_operation_id == result.trials[0].operation_id
    # The trials share one data preparation, put in the object store once.
    assert result.preparations == 1
    assert runner.preparations == prepared_before + 1
    # The best trial's model, saved again under the sweep's name for it, loads.
    assert result.best_model_name == "small_best"
    best = load_model("small_best", root=ray_orch.models_dir)
    assert best.metadata["sweep_id"] == handle.operation_id
    # Every trial is an operation of its own with its history.
    for trial in result.trials:
        record = ray_orch.get_operation(trial.operation_id)
        assert record.metadata["sweep_id"] == handle.operation_id
        assert record.mode == "ray"
        assert len(ray_orch.store.epoch_history(trial.operation_id)) == trial.epoch


def test_cancelling_a_sweep_cancels_its_trials_and_the_ones_not_started(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    handle = ray_orch.sweep(
        small_strategy_file,
        {"model.training.learning_rate": [0.01, 0.001, 0.0001]},
        epochs=400,
        overrides={"model.training.batch_size": 8},
        max_concurrent=1,
    )
    sweep_id = handle.operation_id
    deadline = time.monotonic() + 120
    while True:
        first = ray_orch.get_sweep(sweep_id).trials[0]
        if first.epoch >= 1:
            break
        assert time.monotonic() < deadline, "the first trial did not train"
        time.sleep(0.1)
    ray_orch.cancel(sweep_id, reason="wrong space")
    record = handle.wait(60)
    assert record.status == "cancelled"
    assert record.cancellation_reason == "wrong space"
    sweep = ray_orch.get_sweep(sweep_id)
    assert sweep.result is not None
    statuses = {t.trial: t.status for t in sweep.result.trials}
    assert statuses == {0: "cancelled", 1: "cancelled", 2: "cancelled"}
    running_one = ray_orch.get_operation(sweep.trials[0].operation_id)
    assert "wrong space" in (running_one.cancellation_reason or "")
    never_started = [t for t in sweep.result.trials if t.trial != 0]
    assert all(t.epoch == 0 for t in never_started)
    for trial in never_started:
        assert ray_orch.get_operation(trial.operation_id).started_at is None
        # A trial that never ran is final to every reader: waits and follows end.
        assert ray_orch.wait(trial.operation_id, timeout=5).status == "cancelled"
        snapshots = list(ray_orch.follow(trial.operation_id, timeout=5))
        assert snapshots and snapshots[-1].status == "cancelled"
