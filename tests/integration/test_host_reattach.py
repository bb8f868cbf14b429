"""Re-attaching to host sessions after an orchestrator restart.

A real training host runs on a loopback port in the test process. The orchestrator that starts
the host run lives in a child process, which the test SIGKILLs mid-run; a new orchestrator in
the test process finds the operation orphaned, takes it over and follows the session to its
end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ktrdr_lib.http.host_client import HostClient
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.owner import process_owner
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.schemas.host import HostSessionRequest
from ktrdr_lib.schemas.progress import ProgressSnapshot
from tests.integration.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow  # every test here trains a real model in a child process or server

TOKEN = "reattach-s3cret-0123456789"
EPOCHS = 16

CHILD_SCRIPT = """
import sys, time
from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.runners.host import HostTrainingRunner

strategy, data_dir, url, token, epochs = sys.argv[1:6]
runner = HostTrainingRunner(url, token, poll_interval=0.1)
orch = TrainingOrchestrator(data_dir=data_dir, host_runner=runner, progress_interval=0.05)
op = orch.start_training(strategy, mode="host", epochs=int(epochs))
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    snap = op.snapshot()
    if snap.host_session_id and snap.phase == "train" and snap.batch > 0:
        break
    time.sleep(0.02)
print(op.operation_id, flush=True)
time.sleep(600)
"""


@pytest.fixture
def training_host(
    synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """A training host with its own home, reading the synthetic bars."""
    from host import create_app

    monkeypatch.delenv("KTRDR_HOST_TOKEN", raising=False)
    app = create_app(
        token=TOKEN,
        home=tmp_path / "host_home",
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
    )
    live = start_server(app)
    yield live
    live.stop()


def _host_session(live: LiveServer, session_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{live.url}/host/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _start_and_kill_child(
    strategy: Path, data_dir: Path, host_url: str, home: Path, epochs: int
) -> str:
    """Run a host-mode training from a child orchestrator, SIGKILL it mid-run; the op id."""
    args = [str(strategy), str(data_dir), host_url, TOKEN, str(epochs)]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "KTRDR_HOME": str(home)},
    )
    try:
        assert proc.stdout is not None
        op_id = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert op_id.startswith("op_training_"), "the child never reported a training batch"
    return op_id


def test_a_restarted_orchestrator_reattaches_and_completes_the_host_run(
    training_host: LiveServer,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
) -> None:
    op_id = _start_and_kill_child(
        small_strategy_file, synthetic_data_dir, training_host.url, isolated_home, EPOCHS
    )
    before = OperationStore(isolated_home / "operations.db").get(op_id)
    assert before.status == "running" and before.mode == "host"
    session_id = before.host_session_id
    assert session_id is not None
    assert _host_session(training_host, session_id)["status"] == "running"

    orch = TrainingOrchestrator(
        host_url=training_host.url,
        host_token=TOKEN,
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
    )
    try:
        assert orch.store.owner(op_id) == process_owner()  # taken over, not interrupted
        seen: list[ProgressSnapshot] = list(orch.follow(op_id, after=before.progress.sequence))
        record = orch.wait(op_id, timeout=120)
        assert record.status == "completed", record.error_message
        assert record.error_message is None and record.host_session_id == session_id

        # progress carried on from the stored snapshot: numbering and percentage never go back
        assert seen and seen[0].sequence == before.progress.sequence + 1
        assert "Re-attached" in seen[0].message
        assert [s.sequence for s in seen] == sorted({s.sequence for s in seen})
        percentages = [before.progress.percentage] + [s.percentage for s in seen]
        assert percentages == sorted(percentages) and percentages[-1] == 100.0
        assert any(s.status == "running" and s.phase == "train" for s in seen[1:])
        assert all(s.host_session_id == session_id for s in seen)

        # the same result a run that never restarted has, with the model brought home
        result = orch.result(op_id)
        assert result.training_metrics.epochs_completed == EPOCHS
        assert result.session_info.operation_id == op_id
        assert result.session_info.host_session_id == session_id
        assert result.session_info.mode == "host"
        assert result.test_metrics.accuracy is not None
        artifacts = result.artifacts
        assert artifacts.model_id is not None and artifacts.model_version is not None
        assert Path(artifacts.model_path or "").is_relative_to(isolated_home)
        loaded = ModelStore(isolated_home / "models").load("small_test", artifacts.model_version)
        assert loaded.model_id == artifacts.model_id
        assert [row.epoch for row in orch.metrics(op_id).epochs] == list(range(1, EPOCHS + 1))
        assert _host_session(training_host, session_id)["status"] == "completed"
    finally:
        orch.shutdown(cancel_running=True, timeout=30)


def _dead_owner() -> str:
    """An owner string naming a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:12345"


def _orphaned_host_operation(
    store: OperationStore, strategy: Path, data_dir: Path, session_id: str
) -> str:
    """A host operation left ``running`` on ``session_id`` by a process that is gone."""
    context = build_training_context(strategy, mode="host", epochs=3, data_dir=data_dir)
    store.create(
        context.operation_id,
        mode="host",
        metadata=context.metadata(),
        progress=ProgressSnapshot(operation_id=context.operation_id, sequence=7, percentage=30.0),
        owner=_dead_owner(),
        context=context,
    )
    store.transition(context.operation_id, "running")
    store.set_host_session(context.operation_id, session_id)
    return context.operation_id


def test_a_session_the_host_no_longer_knows_fails_the_operation_with_a_reason(
    training_host: LiveServer,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
) -> None:
    store = OperationStore(isolated_home / "operations.db")
    session_id = "op_training_20200101_000000_0badcafe"
    op_id = _orphaned_host_operation(store, small_strategy_file, synthetic_data_dir, session_id)

    orch = TrainingOrchestrator(
        host_url=training_host.url, host_token=TOKEN, data_dir=synthetic_data_dir
    )
    try:
        record = orch.wait(op_id, timeout=60)
        assert record.status == "failed"
        assert f"host session {session_id} is gone" in (record.error_message or "")
        assert "404" in (record.error_message or "")
        assert record.host_session_id == session_id
        assert record.progress.sequence > 7 and record.progress.percentage >= 30.0
        partial = orch.partial_result(op_id)
        assert partial is not None and partial.session_info.host_session_id == session_id
    finally:
        orch.shutdown(timeout=30)


def test_without_a_host_the_orphaned_run_is_marked_interrupted_with_the_reason(
    small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    store = OperationStore(isolated_home / "operations.db")
    session_id = "op_training_20200101_000000_0badcafe"
    op_id = _orphaned_host_operation(store, small_strategy_file, synthetic_data_dir, session_id)

    orch = TrainingOrchestrator(data_dir=synthetic_data_dir)
    try:
        record = orch.get_operation(op_id)
        assert record.status == "interrupted"
        assert "no training host is configured" in (record.error_message or "")
        assert "KTRDR_HOST_URL" in (record.error_message or "")
        assert record.finished_at is not None
        assert orch.health().active_operation_ids == []
    finally:
        orch.shutdown()


def test_a_graceful_stop_under_way_at_a_restart_completes_as_graceful(
    training_host: LiveServer,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
) -> None:
    """A process asked for a graceful stop of a host run and died before the host heard of it:
    the stored kind makes the orchestrator that takes over send a graceful stop, so the host
    finishes the running epoch, evaluates and saves, and the operation completes."""
    client = HostClient(training_host.url, TOKEN, timeout=10)
    store = OperationStore(isolated_home / "operations.db")
    context = build_training_context(
        small_strategy_file, mode="host", epochs=200, data_dir=synthetic_data_dir
    )
    session_id = client.start_session(
        HostSessionRequest(
            strategy_yaml=yaml.safe_dump(context.strategy_config(), sort_keys=False),
            symbols=list(context.symbols),
            timeframes=list(context.timeframes),
            seed=context.seed,
            epochs=200,
        )
    ).session_id
    op_id = _orphaned_host_operation(store, small_strategy_file, synthetic_data_dir, session_id)
    store.transition(op_id, "cancelling", cancellation_reason="enough", cancel_kind="graceful")
    assert store.get(op_id).cancel_kind == "graceful"

    orch = TrainingOrchestrator(
        host_url=training_host.url, host_token=TOKEN, data_dir=synthetic_data_dir
    )
    try:
        record = orch.wait(op_id, timeout=120)
        assert record.status == "completed", record.error_message
        assert record.cancellation_reason == "enough" and record.cancel_kind == "graceful"
        result = orch.result(op_id)
        completed = result.training_metrics.epochs_completed
        assert 1 <= completed < 200 and result.training_metrics.early_stopped
        assert result.training_metrics.interrupted_epoch is None
        assert result.test_metrics is not None and result.artifacts.model_id is not None
        assert _host_session(training_host, session_id)["status"] == "completed"
    finally:
        orch.shutdown(cancel_running=True, timeout=30)
        client.close()
