"""DDP on the training host: two CPU ranks (gloo) train each session, started as a training
command so Lightning's launcher never re-runs the server; progress comes from rank zero only
and a stop is honoured by both ranks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.run import TrainerOptions
from ktrdr_lib.runners.host import HostTrainingRunner
from tests.integration.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow  # every test here trains a real model in a child process or server

TOKEN = "ddp-host-token-0123456789"


@pytest.fixture
def ddp_host(
    synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    from host import create_app

    monkeypatch.delenv("KTRDR_HOST_TOKEN", raising=False)
    app = create_app(
        token=TOKEN,
        home=tmp_path / "host_home",
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
        trainer_options=TrainerOptions(accelerator="cpu", devices=2, strategy="ddp"),
    )
    live = start_server(app)
    yield live
    live.stop()


@pytest.fixture
def orchestrator(ddp_host: LiveServer, tmp_path: Path) -> Iterator[TrainingOrchestrator]:
    runner = HostTrainingRunner(ddp_host.url, TOKEN, poll_interval=0.1, retry_budget_s=10.0)
    orch = TrainingOrchestrator(home=tmp_path / "local", host_runner=runner, progress_interval=0.05)
    yield orch
    orch.shutdown(cancel_running=True, timeout=60)


def _session(live: LiveServer, session_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{live.url}/host/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("strategies_dir")
def test_two_ranks_train_one_session(
    orchestrator: TrainingOrchestrator, ddp_host: LiveServer
) -> None:
    op = orchestrator.start_training("small_test", mode="host", epochs=3)
    snaps = list(op.follow())
    final = op.wait(timeout=300)
    assert final.status == "completed", final.error_message
    train = [s for s in snaps if s.phase == "train" and s.total_batches]
    # Each rank sees half of the 1769 training samples: 884 → 14 batches of 64. One rank
    # reports (rank zero): every epoch's batches appear once, in order, never doubled.
    assert {s.total_batches for s in train} == {14}
    assert [s.sequence for s in snaps] == sorted({s.sequence for s in snaps})
    assert [s.percentage for s in snaps] == sorted(s.percentage for s in snaps)
    result = op.result()
    assert result.training_metrics.epochs_completed == 3
    assert result.session_info.host_session_id
    assert [row.epoch for row in op.metrics().epochs] == [1, 2, 3]
    model_id = result.artifacts.model_id
    assert model_id is not None
    name, _, version = model_id.rpartition("/v")
    assert ModelStore(orchestrator.models_dir).load(name, int(version)).feature_names


@pytest.mark.usefixtures("strategies_dir")
def test_stop_is_honoured_by_both_ranks(
    orchestrator: TrainingOrchestrator, ddp_host: LiveServer
) -> None:
    op = orchestrator.start_training("small_test", mode="host", epochs=500)
    for snap in op.follow():
        if snap.phase == "train" and snap.epoch >= 2:
            op.cancel(reason="enough ranks")
            break
    final = op.wait(timeout=300)
    assert final.status == "cancelled"
    assert final.progress.epoch < 500
    session = _session(ddp_host, final.host_session_id or "")
    assert session["status"] == "cancelled"
    # Both ranks stopped: the host is free for the next session, which completes.
    again = orchestrator.start_training("small_test", mode="host", epochs=1)
    assert again.wait(timeout=300).status == "completed"
