"""Training on a CUDA GPU, locally and on a training host: the device shows in results,
progress snapshots and the host's health.

Every test here is marked ``gpu`` and skipped without CUDA (``torch.cuda.is_available()``),
so on a CPU-only machine the module is collected and reports its tests as skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr_lib.http.host_client import HostClient
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.run import TrainerOptions
from ktrdr_lib.runners.host import HostTrainingRunner
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import ResourceUsage
from tests.integration.conftest import LiveServer, start_server

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TOKEN = "gpu-host-token-0123456789"
WAIT_S = 180.0


@pytest.fixture
def gpu_name() -> str:
    """The name of CUDA device 0, the one a single-device fit trains on."""
    return torch.cuda.get_device_name(0)


@pytest.fixture
def orchestrators(tmp_path: Path, synthetic_data_dir: Path) -> Iterator[Any]:
    """Factory: ``make(**kwargs)`` builds an orchestrator on the synthetic bars; all are shut
    down after the test."""
    made: list[TrainingOrchestrator] = []

    def make(**kwargs: Any) -> TrainingOrchestrator:
        kwargs.setdefault("home", tmp_path / f"home_{len(made)}")
        orch = TrainingOrchestrator(data_dir=synthetic_data_dir, progress_interval=0.05, **kwargs)
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True, timeout=60)


@pytest.fixture
def gpu_host(synthetic_data_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A training host on loopback that trains with ``accelerator="gpu"``."""
    from host import create_app

    app = create_app(
        token=TOKEN,
        home=tmp_path / "host_home",
        data_dir=synthetic_data_dir,
        trainer_options=TrainerOptions(accelerator="gpu"),
        progress_interval=0.05,
    )
    live = start_server(app)
    yield live
    live.stop()


def _assert_gpu_usage(usage: ResourceUsage, gpu_name: str) -> None:
    assert usage.device.startswith("cuda"), usage
    assert usage.gpu_name == gpu_name
    assert usage.gpu_memory_peak_mb is not None and usage.gpu_memory_peak_mb > 0
    assert usage.gpu_memory_total_mb is not None
    assert usage.gpu_memory_total_mb > usage.gpu_memory_peak_mb


def _assert_gpu_snapshots(seen: list[ProgressSnapshot], gpu_name: str) -> None:
    """Every snapshot taken during training batches names the GPU it runs on."""
    training = [s for s in seen if s.phase == "train" and s.batch > 0]
    assert training, "no snapshot was taken during a training batch"
    for snap in training:
        assert snap.resources.get("gpu_used") is True, snap.resources
        assert snap.resources.get("gpu_name") == gpu_name, snap.resources
        assert str(snap.resources.get("device", "")).startswith("cuda"), snap.resources
    allocated = training[-1].resources.get("gpu_memory_allocated_mb")
    assert isinstance(allocated, float) and allocated > 0


@pytest.mark.usefixtures("strategies_dir")
def test_local_training_on_the_gpu_names_the_device_and_its_memory(
    orchestrators: Any, gpu_name: str
) -> None:
    runner = LocalTrainingRunner(TrainerOptions(accelerator="gpu"))
    orch: TrainingOrchestrator = orchestrators(runner=runner)
    op = orch.start_training("small_test", epochs=2)
    seen = list(op.follow(timeout=WAIT_S))
    record = op.wait(WAIT_S)
    assert record.status == "completed", record.error_message

    result = op.result()
    assert result.resource_usage.accelerator == "gpu"
    _assert_gpu_usage(result.resource_usage, gpu_name)
    assert result.training_metrics.epochs_completed == 2
    _assert_gpu_snapshots(seen, gpu_name)
    assert seen[-1].status == "completed" and seen[-1].percentage == 100.0


@pytest.mark.usefixtures("strategies_dir")
def test_a_host_session_on_the_gpu_shows_in_health_snapshots_and_result(
    gpu_host: LiveServer, orchestrators: Any, gpu_name: str
) -> None:
    client = HostClient(gpu_host.url, TOKEN)
    try:
        idle = client.health()
        assert idle.device == "cuda"
        assert idle.accelerator == "gpu"
        assert len(idle.devices) == torch.cuda.device_count()
        assert idle.devices[0]["name"] == gpu_name
        assert idle.devices[0]["memory_total_mb"] > 0

        runner = HostTrainingRunner(gpu_host.url, TOKEN, poll_interval=0.1)
        orch: TrainingOrchestrator = orchestrators(host_runner=runner)
        # Many epochs so the session is surely still training when health is read; a graceful
        # stop then ends it early as a completed run with a result and a saved model.
        op = orch.start_training("small_test", mode="host", epochs=500)
        seen: list[ProgressSnapshot] = []
        busy = None
        for snap in op.follow(timeout=WAIT_S):
            seen.append(snap)
            if busy is None and snap.phase == "train" and snap.batch > 0:
                busy = client.health()
                op.cancel(graceful=True, reason="gpu test: enough")
        record = op.wait(WAIT_S)
    finally:
        client.close()

    assert busy is not None, "the host session never reported a training batch"
    session_id = record.host_session_id
    assert session_id is not None
    assert session_id in busy.active_sessions
    assert busy.devices[0]["name"] == gpu_name
    used = busy.devices[0]["memory_used_mb"]
    assert used is not None and used > 0

    assert record.status == "completed", record.error_message
    result = op.result()
    assert result.session_info.host_session_id == session_id
    assert result.training_metrics.early_stopped
    _assert_gpu_usage(result.resource_usage, gpu_name)
    _assert_gpu_snapshots(seen, gpu_name)
    assert result.artifacts.model_id is not None
