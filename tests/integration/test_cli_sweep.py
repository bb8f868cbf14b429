"""``ktrdr sweep`` end to end on a real local Ray (2 CPUs): a 2-trial sweep ranked with its best
model saved, Ctrl-C cancelling every trial, the same command against a live API, and
``ktrdr train --mode ray``.

The command runs in this process (``main``): Ray is already up (the ``local_ray`` fixture), so
the command's runner (and the API server's, in a thread here) uses that connection, as it would
a cluster's."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from ktrdr_lib import load_model
from ktrdr_lib.cli import main
from ktrdr_lib.cli.commands import EXIT_CANCELLED, EXIT_OK
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.runners.ray import RayTrainingRunner
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.sweeps import SweepSnapshot
from tests.integration.ray_support import local_ray

from .conftest import LiveServer

__all__ = ["local_ray"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_a_sweep_prints_its_trials_then_the_ranking_and_saves_the_best_model(
    local_ray: str,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "sweep",
            str(small_strategy_file),
            "--space",
            "model.training.learning_rate=0.02,1e-5",
            "--epochs",
            "2",
            "--data-dir",
            str(synthetic_data_dir),
            "--ray-address",
            "local",
            "--best-model-name",
            "cli_sweep_best",
        ]
    )
    out = capsys.readouterr()
    assert status == EXIT_OK, out.err
    # progress on stderr: the sweep, then a line each time a trial moved (a pipe here)
    assert "[sweep] running · 2 trials · val_loss (min) · grid" in out.err
    for trial, rate in ((0, "0.02"), (1, "1e-05")):
        assert f"[trial {trial}] completed · epoch 2/2 · val_loss " in out.err
        assert f"learning_rate={rate}" in out.err
    # the ranking on stdout: both trials ranked, the best model named
    lines = out.out.splitlines()
    assert lines[0].startswith("Completed: 2 trials, best val_loss ")
    assert lines[0].endswith("model cli_sweep_best v1")
    ranked = [line.split() for line in lines[3:5]]
    assert [row[0] for row in ranked] == ["1", "2"]
    assert {row[1] for row in ranked} == {"0", "1"}
    assert all(row[2:4] == ["completed", "2/2"] for row in ranked)
    assert lines[-1].startswith("best model      cli_sweep_best v1 (trial ")
    model = load_model("cli_sweep_best", root=isolated_home / "models")
    assert model.metadata["operation_id"] in lines[-1]


def test_ctrl_c_cancels_every_trial_and_exits_130(
    local_ray: str,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store_path = isolated_home / "operations.db"

    def interrupt_once_a_trial_trains() -> None:
        """Ctrl-C (SIGINT to this process) once a trial has finished an epoch."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if store_path.exists():
                store = OperationStore(store_path)
                try:
                    records, _ = store.list_records(operation_type="training")
                    trained = [r.operation_id for r in records if r.progress.metrics_epoch >= 1]
                finally:
                    store.close()
                if trained:
                    os.kill(os.getpid(), signal.SIGINT)
                    return
            time.sleep(0.1)

    threading.Thread(target=interrupt_once_a_trial_trains, daemon=True).start()
    status = main(
        [
            "sweep",
            str(small_strategy_file),
            "--space",
            "model.training.learning_rate=0.01,0.001",
            "--space",
            "model.training.batch_size=8",  # ~220 batches an epoch: long enough to stop mid-run
            "--epochs",
            "200",
            "--data-dir",
            str(synthetic_data_dir),
            "--ray-address",
            "local",
        ]
    )
    out = capsys.readouterr()
    assert status == EXIT_CANCELLED, out.err
    assert "[cancel] Ctrl-C: cancelling every trial of op_sweep_" in out.err
    assert out.err.rstrip().endswith("cancelled: interrupted by Ctrl-C")
    assert out.out.startswith("Cancelled: 0 of 2 trials completed; interrupted by Ctrl-C")
    store = OperationStore(store_path)
    try:
        records, _ = store.list_records()
    finally:
        store.close()
    assert {r.operation_type for r in records} == {"sweep", "training"}
    assert all(r.status == "cancelled" for r in records), [
        (r.operation_id, r.status) for r in records
    ]
    assert all(r.progress.epoch < 200 for r in records if r.operation_type == "training")


def test_a_sweep_on_the_api_prints_what_a_local_one_does(
    local_ray: str,
    live_api: Callable[..., LiveServer],
    strategies_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = live_api(orchestrator_options={"ray_runner": RayTrainingRunner(poll_interval=0.05)})
    status = main(
        [
            "sweep",
            "small_test",
            "--api",
            server.url,
            "--space",
            "model.training.learning_rate=0.02,1e-5",
            "--epochs",
            "2",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert status == EXIT_OK, out.err
    assert re.search(rf"\[sweep\] op_sweep_\S+ started on {re.escape(server.url)}", out.err)
    assert "[trial 1] completed · epoch 2/2 · val_loss " in out.err
    final = msgspec.json.decode(out.out, type=SweepSnapshot)
    assert final.operation.status == "completed" and final.result is not None
    assert [t.status for t in final.result.trials] == ["completed", "completed"]
    assert final.result.best_model_name == "small_test_sweep_best"


def test_train_mode_ray_trains_in_a_ray_worker_with_its_resources(
    local_ray: str,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "train",
            str(small_strategy_file),
            "--mode",
            "ray",
            "--num-cpus",
            "2",
            "--ray-address",
            "local",
            "--epochs",
            "1",
            "--data-dir",
            str(synthetic_data_dir),
            "--no-save",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert status == EXIT_OK, out.err
    assert "[train] Epoch 1/1 · train_loss " in out.err
    result = msgspec.json.decode(out.out, type=TrainingResult)
    assert result.session_info.mode == "ray"
    placement = result.session_info.ray
    assert placement is not None and (placement.num_cpus, placement.num_gpus) == (2.0, 0.0)
    assert result.artifacts.model_path is None  # --no-save reached the Ray runner
    assert list((isolated_home / "models").glob("*/v*")) == []
