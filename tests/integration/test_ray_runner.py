"""mode="ray": real trainings in the actors of a real local Ray (2 CPUs, no dashboard).

Progress, abort and graceful cancel, the result and the model, a worker killed mid-run, and an
orchestrator that dies while its run trains on and is re-attached by a new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import TrainingOrchestrator, load_model
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.runners.ray import RayTrainingRunner
from tests.integration.ray_support import local_ray, ray_orch

__all__ = ["local_ray", "ray_orch"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# ~220 batches of 8 rows per epoch on SYNTH: long enough to cancel mid-epoch, short per epoch.
LONG = {"epochs": 400, "overrides": {"model.training.batch_size": 8}}


def _wait_for_epochs(
    orch: TrainingOrchestrator, op_id: str, epochs: int, limit: float = 120
) -> None:
    deadline = time.monotonic() + limit
    while len(orch.store.epoch_history(op_id)) < epochs:
        record = orch.store.get(op_id)
        assert not record.is_final, f"ended {record.status} early: {record.error_message}"
        assert time.monotonic() < deadline, f"no epoch {epochs} within {limit} s"
        time.sleep(0.05)


def test_a_ray_run_reports_progress_and_returns_a_local_runs_result(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    op = ray_orch.start_training(small_strategy_file, mode="ray", epochs=3, seed=5)
    phases, epochs = set(), set()
    for snapshot in op.follow():
        phases.add(snapshot.phase)
        epochs.add(snapshot.epoch)
        assert snapshot.operation_id == op.operation_id
    record = op.wait(60)
    assert record.status == "completed", record.error_message
    assert record.mode == "ray"
    assert {"load_data", "labels", "train"} <= phases  # prepared here, trained there
    assert max(epochs) == 3
    assert record.host_session_id is not None and record.host_session_id.startswith("ktrdr-")

    result = op.result()
    placement = result.session_info.ray
    assert placement is not None
    assert placement.actor_name == record.host_session_id
    assert placement.node_id and placement.job_id and placement.node_address
    assert (placement.num_cpus, placement.num_gpus) == (1.0, 0.0)
    assert result.session_info.mode == "ray"
    assert [row.epoch for row in ray_orch.store.epoch_history(op.operation_id)] == [1, 2, 3]

    # The model came back through the archive into this orchestrator's store, and loads.
    assert result.artifacts.model_path is not None
    assert Path(result.artifacts.model_path).is_relative_to(ray_orch.models_dir)
    loaded = load_model(result.artifacts.model_name or "", root=ray_orch.models_dir)
    assert loaded.metadata["ray_actor"] == placement.actor_name
    assert loaded.metadata["operation_id"] == op.operation_id

    # The same keys and the same prepared data as a local run of the same request.
    local = ray_orch.start_training(small_strategy_file, epochs=3, seed=5).wait(120)
    local_result = ray_orch.result(local.operation_id)
    assert result.data_summary == local_result.data_summary
    assert result.training_metrics.epochs_completed == 3
    assert result.test_metrics is not None and local_result.test_metrics is not None
    assert set(result.test_metrics.__struct_fields__) == set(
        local_result.test_metrics.__struct_fields__
    )
    assert result.session_info.ray is not None and local_result.session_info.ray is None


def test_an_abort_stops_the_worker_within_the_epoch(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = ray_orch.start_training(small_strategy_file, mode="ray", **LONG)
    _wait_for_epochs(ray_orch, op.operation_id, 1)
    ray_orch.cancel(op.operation_id, reason="enough")
    record = op.wait(60)
    assert record.status == "cancelled"
    assert record.cancellation_reason == "enough"
    assert record.cancel_kind == "abort"
    result = ray_orch.partial_result(op.operation_id)
    assert result is not None
    done = result.training_metrics.epochs_completed
    assert 1 <= done < 10
    interrupted = result.training_metrics.interrupted_epoch
    # Stopped inside an epoch, or right after one when the abort landed during validation.
    assert interrupted is None or interrupted.batches_completed < interrupted.batches_total
    assert result.artifacts.model_path is None  # an abort saves nothing
    assert f"cancelled after {done} completed epoch" in (result.artifacts.no_model_reason or "")
    latency = ray_orch.health().last_cancel_latencies[-1]
    assert latency.operation_id == op.operation_id and latency.observed_ms is not None


def test_a_graceful_stop_finishes_the_epoch_then_evaluates_and_saves(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = ray_orch.start_training(small_strategy_file, mode="ray", **LONG)
    _wait_for_epochs(ray_orch, op.operation_id, 1)
    ray_orch.cancel(op.operation_id, graceful=True, reason="good enough")
    record = op.wait(60)
    assert record.status == "completed", record.error_message
    assert record.cancel_kind == "graceful"
    result = op.result()
    done = result.training_metrics.epochs_completed
    assert 1 <= done < 10
    assert result.training_metrics.interrupted_epoch is None
    assert result.session_info.cancellation_reason == "good enough"
    assert result.test_metrics is not None and result.artifacts.model_path is not None
    assert len(ray_orch.store.epoch_history(op.operation_id)) == done


def test_a_killed_worker_fails_the_operation_with_the_reason(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    import ray

    op = ray_orch.start_training(small_strategy_file, mode="ray", **LONG)
    _wait_for_epochs(ray_orch, op.operation_id, 1)
    name = ray_orch.get_operation(op.operation_id).host_session_id
    assert name is not None
    actor = ray.get_actor(name, namespace="ktrdr")
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
    record = op.wait(60)
    assert record.status == "failed"
    assert record.error_message is not None
    assert "Ray worker running this operation" in record.error_message
    assert "died" in record.error_message
    assert name in record.error_message


def test_requests_the_cluster_cannot_meet_are_refused_before_anything_is_stored(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    with pytest.raises(ConfigError, match=r"num_cpus: the run asks for 8 .* has 2 in all"):
        ray_orch.start_training(small_strategy_file, mode="ray", num_cpus=8)
    with pytest.raises(ConfigError, match=r"num_gpus: the run asks for 1 .* has 0 in all"):
        ray_orch.start_training(small_strategy_file, mode="ray", num_gpus=1)
    with pytest.raises(ConfigError, match="apply to mode 'ray' only"):
        ray_orch.start_training(small_strategy_file, num_cpus=1)
    assert ray_orch.list_operations().total_count == 0


def test_a_run_asking_for_two_cpus_reserves_them(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = ray_orch.start_training(small_strategy_file, mode="ray", epochs=1, num_cpus=2)
    assert op.wait(120).status == "completed"
    placement = op.result().session_info.ray
    assert placement is not None and placement.num_cpus == 2.0


_FIRST_ORCHESTRATOR = """
import sys, time
import ray
ray.init(address=sys.argv[1], namespace="ktrdr", log_to_driver=False, configure_logging=False)
from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.runners.ray import RayTrainingRunner
orch = TrainingOrchestrator(
    home=sys.argv[2], data_dir=sys.argv[3], ray_runner=RayTrainingRunner(sys.argv[1])
)
op = orch.start_training(
    sys.argv[4], mode="ray", epochs=60, overrides={"model.training.batch_size": 8}
)
print(op.operation_id, flush=True)
time.sleep(600)
"""


def test_a_new_orchestrator_re_attaches_to_a_ray_run_whose_process_died(
    local_ray: str,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
) -> None:
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _FIRST_ORCHESTRATOR,
            local_ray,
            str(isolated_home),
            str(synthetic_data_dir),
            str(small_strategy_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        op_id = first.stdout.readline().strip()
        assert op_id.startswith("op_training_"), op_id
        from ktrdr_lib import OperationStore

        store = OperationStore(isolated_home / "operations.db")
        deadline = time.monotonic() + 120
        while len(store.epoch_history(op_id)) < 2:
            assert time.monotonic() < deadline, "the first orchestrator's run did not train"
            time.sleep(0.1)
    finally:
        first.kill()  # the process that followed the run dies; its actor trains on
        first.wait(30)
        if first.stdout is not None:
            first.stdout.close()
    before = store.get(op_id)
    assert before.status == "running" and (before.host_session_id or "").startswith("ktrdr-")

    orch: Any = TrainingOrchestrator(
        home=isolated_home,
        data_dir=synthetic_data_dir,
        ray_runner=RayTrainingRunner(poll_interval=0.05),
    )
    try:
        record = orch.wait(op_id, timeout=180)
        assert record.status == "completed", record.error_message
        result = orch.result(op_id)
        assert result.training_metrics.epochs_completed == 60
        assert result.session_info.ray is not None
        assert result.artifacts.model_path is not None
        assert [row.epoch for row in orch.store.epoch_history(op_id)] == list(range(1, 61))
    finally:
        orch.shutdown(cancel_running=True, timeout=60)


def test_placebo_runs_train_on_ray_like_the_run(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = ray_orch.start_training(small_strategy_file, mode="ray", epochs=1, placebo_runs=1)
    assert op.wait(180).status == "completed"
    evaluation = op.result().evaluation
    assert evaluation is not None and evaluation.placebo is not None
    child = ray_orch.get_operation(evaluation.placebo.operation_ids[0])
    assert child.status == "completed" and child.mode == "ray"
    assert child.metadata["placebo_of"] == op.operation_id
    assert len(evaluation.placebo.scores) == 1


def test_the_next_run_trains_in_a_warm_actor_and_the_pool_refills(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    """The first run's worker starts cold and a warm actor starts beside it; the next run of
    the same shape claims that one (no new process, no imports to wait for), and once a run
    ends the pool holds a warm actor again."""
    orch = ray_orch
    runner = _pool(orch)
    first = orch.start_training(small_strategy_file, mode="ray", epochs=1)
    assert first.wait(180).status == "completed"
    assert (first.info().host_session_id or "").startswith("ktrdr-op_training_")
    deadline = time.monotonic() + 120
    while not runner._warm:  # warming beside the first run, or refilled after it
        assert time.monotonic() < deadline, "no warm actor after the first run"
        time.sleep(0.1)
    warm_name = runner._warm[0][1]
    second = orch.start_training(small_strategy_file, mode="ray", epochs=1)
    assert second.wait(180).status == "completed"
    assert second.info().host_session_id == warm_name
    deadline = time.monotonic() + 120
    while not runner._warm:  # a replacement, or the run's own actor made warm again
        assert time.monotonic() < deadline, "the pool was not refilled"
        time.sleep(0.1)


def test_a_finished_runs_actor_trains_the_next_run_with_nothing_of_the_last_one(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    """With a pool of two warm actors on 2 CPUs (a sweep's two slots), a run's actor goes back
    to the pool when the run ends, and a later run trains in it from a clean state: its own
    epochs only, its own result."""
    orch = ray_orch
    runner = _pool(orch)
    deadline = time.monotonic() + 180
    while len(runner._warm) < 2 or not all(ray_ready(warming) for _, _, warming in runner._warm):
        runner.prestart(2)  # warms on free room only: the last test's actors may still hold it
        assert time.monotonic() < deadline, "two warm actors never got ready"
        time.sleep(0.2)
    sessions = []
    for epochs in (2, 1, 3):
        op = orch.start_training(small_strategy_file, mode="ray", epochs=epochs)
        record = op.wait(180)
        assert record.status == "completed", record.error_message
        sessions.append(record.host_session_id)
        assert [row.epoch for row in op.metrics().epochs] == list(range(1, epochs + 1))
        assert op.result().training_metrics.epochs_completed == epochs
        if len(sessions) == 1:  # back in the pool, beside the other warm one
            assert sessions[0] in [name for _, name, _ in runner._warm]
    assert sessions[0] in sessions[1:], sessions  # the first run's actor trained again


def test_a_cold_runs_actor_is_reused_when_no_warm_one_fits(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    """One CPU of two is taken by other work: the first run starts its own actor (no room
    for a warm one beside it), that actor joins the pool when the run ends, and the next run
    trains in it (a reused actor counts as warmed up: it trained)."""
    import ray

    hog = ray.remote(num_cpus=1)(_Hog).remote()
    ray.get(hog.ping.remote())
    orch = ray_orch
    runner = _pool(orch)
    try:
        first = orch.start_training(small_strategy_file, mode="ray", epochs=1)
        assert first.wait(180).status == "completed"
        name = first.info().host_session_id
        assert [n for _, n, _ in runner._warm] == [name]
        second = orch.start_training(small_strategy_file, mode="ray", epochs=2)
        record = second.wait(180)
        assert record.status == "completed", record.error_message
        assert record.host_session_id == name
        assert [row.epoch for row in second.metrics().epochs] == [1, 2]
    finally:
        ray.kill(hog)  # the fixture shuts the orchestrator down, and with it the pool


class _Hog:
    """Other work holding a CPU of the local Ray."""

    def ping(self) -> int:
        return 1


def _pool(orch: TrainingOrchestrator) -> RayTrainingRunner:
    """The orchestrator's Ray runner (one warm actor by default), whose pool the tests read."""
    runner = orch.runners["ray"]
    assert isinstance(runner, RayTrainingRunner) and runner.warm_workers == 1
    return runner


def ray_ready(ref: Any) -> bool:
    import ray

    ready, _ = ray.wait([ref], timeout=0)
    return bool(ready)
