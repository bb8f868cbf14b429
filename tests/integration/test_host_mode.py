"""Host mode end to end: a real training host (``host.create_app``) on a loopback port, driven
by a TrainingOrchestrator through HostTrainingRunner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.runners.host import HostTrainingRunner
from tests.conftest import REGRESSION_STRATEGY
from tests.integration.conftest import LiveServer, start_server

TOKEN = "host-s3cret-0123456789"


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


@pytest.fixture
def orchestrator_for(tmp_path: Path, synthetic_data_dir: Path) -> Iterator[Any]:
    """Factory: an orchestrator (own home) whose host runs go to ``url`` with ``token``."""
    made: list[TrainingOrchestrator] = []

    def make(url: str, token: str | None = TOKEN) -> TrainingOrchestrator:
        runner = HostTrainingRunner(url, token, poll_interval=0.1, retry_budget_s=5.0)
        orch = TrainingOrchestrator(
            home=tmp_path / f"local_home_{len(made)}",
            host_runner=runner,
            data_dir=synthetic_data_dir,
            progress_interval=0.05,
        )
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True, timeout=30)


def _host_session(live: LiveServer, session_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{live.url}/host/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _shape(value: Any) -> Any:
    """The key structure of a result (keys of Structs and of dicts, not the figures)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__ if value is None else "value"


@pytest.mark.usefixtures("strategies_dir")
def test_remote_training_matches_local_and_brings_the_model_home(
    training_host: LiveServer, orchestrator_for: Any
) -> None:
    orch: TrainingOrchestrator = orchestrator_for(training_host.url)
    remote = orch.start_training("small_test", mode="host", epochs=2)
    local = orch.start_training("small_test", mode="local", epochs=2)
    seen = list(remote.follow(timeout=60))
    remote_record, local_record = remote.wait(120), local.wait(120)
    assert remote_record.status == "completed", remote_record.error_message
    assert local_record.status == "completed", local_record.error_message

    remote_result, local_result = remote.result(), local.result()
    remote_tree = msgspec.to_builtins(remote_result)
    local_tree = msgspec.to_builtins(local_result)
    assert set(remote_tree) == set(local_tree)
    for key in ("training_metrics", "resource_usage", "artifacts", "session_info"):
        assert set(remote_tree[key]) == set(local_tree[key]), key
    assert set(remote_tree["test_metrics"]) == set(local_tree["test_metrics"])
    assert remote_result.data_summary.feature_count == local_result.data_summary.feature_count

    session_id = remote_result.session_info.host_session_id
    assert session_id and remote_record.host_session_id == session_id
    assert remote_result.session_info.operation_id == remote.operation_id
    assert remote_result.session_info.mode == "host"
    assert remote_result.training_metrics.epochs_completed == 2
    assert _host_session(training_host, session_id)["status"] == "completed"

    # progress: local numbering, never going back, the session id on every forwarded one
    assert [s.sequence for s in seen] == sorted({s.sequence for s in seen})
    percentages = [s.percentage for s in seen]
    assert percentages == sorted(percentages) and percentages[-1] == 100.0
    assert seen[-1].host_session_id == session_id
    assert all(s.host_session_id == session_id for s in seen if s.status != "pending")
    assert orch.metrics(remote.operation_id).epochs[-1].epoch == 2

    # the model came home: a new local version that loads and predicts
    artifacts = remote_result.artifacts
    assert artifacts.model_name == "small_test" and artifacts.model_version is not None
    assert Path(artifacts.model_path or "").is_relative_to(orch.models_dir)
    loaded = ModelStore(orch.models_dir).load("small_test", artifacts.model_version)
    assert loaded.model_id == artifacts.model_id
    assert artifacts.model_id != local_result.artifacts.model_id


def test_a_regression_trains_on_the_host_and_comes_home_predicting_returns(
    training_host: LiveServer, orchestrator_for: Any, strategies_dir: Path
) -> None:
    (strategies_dir / "returns.yaml").write_text(REGRESSION_STRATEGY, encoding="utf-8")
    orch: TrainingOrchestrator = orchestrator_for(training_host.url)
    remote = orch.start_training("returns", mode="host", epochs=2)
    record = remote.wait(120)
    assert record.status == "completed", record.error_message
    result = remote.result()
    assert result.test_metrics is None and result.test_regression is not None
    assert result.validation_regression is not None
    assert result.test_regression.samples == result.data_summary.samples["test"]
    assert result.data_summary.target_quantiles["train"]["p50"] != 0
    loaded = ModelStore(orch.models_dir).load("small_test", result.artifacts.model_version)
    assert loaded.regression
    assert loaded.metrics["test"]["mae"] == pytest.approx(result.test_regression.mae)


@pytest.mark.usefixtures("strategies_dir")
def test_cancel_mid_run_reaches_cancelled_on_both_sides(
    training_host: LiveServer, orchestrator_for: Any
) -> None:
    orch: TrainingOrchestrator = orchestrator_for(training_host.url)
    handle = orch.start_training("small_test", mode="host", epochs=500)
    for snap in handle.follow(timeout=60):
        if snap.phase == "train" and snap.batch > 0:
            break
    else:
        pytest.fail("the remote run never reported a training batch")
    handle.cancel(reason="integration test stop")
    record = handle.wait(60)
    assert record.status == "cancelled"
    assert record.cancellation_reason == "integration test stop"
    session_id = record.host_session_id
    assert session_id is not None
    host_side = _host_session(training_host, session_id)
    assert host_side["status"] == "cancelled"
    assert host_side["cancellation_reason"] == "integration test stop"
    partial = orch.partial_result(handle.operation_id)
    assert partial is not None and partial.session_info.host_session_id == session_id


@pytest.mark.usefixtures("strategies_dir")
def test_a_bad_token_fails_the_operation_with_a_clear_message(
    training_host: LiveServer, orchestrator_for: Any
) -> None:
    refused = httpx.post(
        f"{training_host.url}/host/v1/sessions",
        json={"strategy_yaml": "x", "symbols": [], "timeframes": []},
        headers={"Authorization": "Bearer wrong"},
        timeout=10,
    )
    assert refused.status_code == 401

    orch: TrainingOrchestrator = orchestrator_for(training_host.url, token="wrong")
    record = orch.start_training("small_test", mode="host", epochs=2).wait(60)
    assert record.status == "failed"
    assert "401" in (record.error_message or "")
    assert "KTRDR_HOST_TOKEN" in (record.error_message or "")
    assert record.host_session_id is None


@pytest.mark.usefixtures("strategies_dir")
def test_an_unreachable_host_fails_the_operation_at_once(orchestrator_for: Any) -> None:
    from tests.integration.conftest import free_port

    orch: TrainingOrchestrator = orchestrator_for(f"http://127.0.0.1:{free_port()}")
    record = orch.start_training("small_test", mode="host", epochs=2).wait(30)
    assert record.status == "failed"
    assert "cannot reach the training host" in (record.error_message or "")
    assert orch.list_operations(active_only=True).total_count == 0


@pytest.mark.usefixtures("strategies_dir")
@pytest.mark.slow
def test_a_host_that_goes_away_mid_run_fails_the_operation_within_the_budget(
    synthetic_data_dir: Path, tmp_path: Path, orchestrator_for: Any
) -> None:
    from host import create_app

    app = create_app(
        token=TOKEN,
        home=tmp_path / "doomed_host",
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
        shutdown_grace_s=1.0,
    )
    doomed = start_server(app)
    try:
        orch: TrainingOrchestrator = orchestrator_for(doomed.url)
        handle = orch.start_training("small_test", mode="host", epochs=500)
        for snap in handle.follow(timeout=60):
            if snap.phase == "train" and snap.batch > 0:
                break
        doomed.stop()
        record = handle.wait(60)  # the fixture's retry budget is 5 s
    finally:
        doomed.stop()
    assert record.status == "failed"
    assert "lost contact with the training host" in (record.error_message or "")
    assert "retry budget 5 s" in (record.error_message or "")
