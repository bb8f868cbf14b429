"""The training host on a real uvicorn loopback server: sessions, stop, artifacts, auth,
errors, retention and health, against the small strategy on synthetic data."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from host import create_app
from ktrdr_lib.models.archive import ARCHIVE_FILES, import_model_archive, sha256_hex
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.errors import ErrorBody
from ktrdr_lib.schemas.health import HIDDEN_DETAILS_NOTE
from ktrdr_lib.schemas.host import (
    HOST_PREFIX,
    MODEL_ID_HEADER,
    SHA256_HEADER,
    HostHealth,
    HostSessionList,
    HostSessionStatus,
)
from ktrdr_lib.schemas.results import TrainingResult
from tests.conftest import SMALL_STRATEGY
from tests.integration.conftest import LiveServer, start_server

TOKEN = "host-test-token-0123456789"
WAIT_S = 60.0


def _request(epochs: int, **extra: Any) -> dict[str, Any]:
    return {
        "strategy_yaml": SMALL_STRATEGY,
        "symbols": ["SYNTH"],
        "timeframes": ["1h"],
        "overrides": {"epochs": epochs},
        **extra,
    }


@pytest.fixture
def host_server(
    synthetic_data_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., tuple[LiveServer, httpx.Client]]]:
    """Factory: ``host_server(**create_app_kwargs)`` serves a host; returns it and a client."""
    started: list[tuple[LiveServer, httpx.Client]] = []

    def start(**kwargs: Any) -> tuple[LiveServer, httpx.Client]:
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("home", tmp_path / f"host_home_{len(started)}")
        kwargs.setdefault("data_dir", synthetic_data_dir)
        kwargs.setdefault("progress_interval", 0.02)
        live = start_server(create_app(**kwargs))
        client = httpx.Client(
            base_url=live.url + HOST_PREFIX,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30.0,
        )
        started.append((live, client))
        return live, client

    yield start
    for live, client in started:
        client.close()
        live.stop()


def _status(client: httpx.Client, session_id: str) -> HostSessionStatus:
    response = client.get(f"/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=HostSessionStatus)


def _wait(
    client: httpx.Client, session_id: str, until: Callable[[HostSessionStatus], bool]
) -> HostSessionStatus:
    deadline = time.monotonic() + WAIT_S
    while True:
        status = _status(client, session_id)
        if until(status):
            return status
        if status.status in ("completed", "failed", "cancelled", "interrupted"):
            raise AssertionError(f"session ended {status.status} first: {status}")
        assert time.monotonic() < deadline, f"timed out waiting; last: {status}"
        time.sleep(0.02)


def _final(client: httpx.Client, session_id: str) -> HostSessionStatus:
    deadline = time.monotonic() + WAIT_S
    while True:
        status = _status(client, session_id)
        if status.status in ("completed", "failed", "cancelled", "interrupted"):
            return status
        assert time.monotonic() < deadline, f"timed out; last: {status}"
        time.sleep(0.05)


def _start(client: httpx.Client, epochs: int, **extra: Any) -> str:
    response = client.post("/sessions", json=_request(epochs, **extra))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    return str(body["session_id"])


def _error(response: httpx.Response, status: int) -> ErrorBody:
    assert response.status_code == status, response.text
    body = msgspec.json.decode(response.content, type=ErrorBody)
    assert body.status_code == status
    assert body.success is False
    assert "Traceback" not in body.detail
    return body


def _key_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items()}
    return None


def test_session_trains_to_completion_and_its_model_downloads(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]],
    synthetic_data_dir: Path,
    tmp_path: Path,
) -> None:
    _, client = host_server()
    session_id = _start(client, 2, seed=3, client_operation_id="op_client_1")
    final = _final(client, session_id)
    assert final.status == "completed", final.error_message
    assert final.model_available
    assert final.progress.host_session_id == session_id
    assert final.progress.percentage == pytest.approx(100.0)
    assert final.finished_at is not None

    result_response = client.get(f"/sessions/{session_id}/result")
    assert result_response.status_code == 200
    remote = msgspec.json.decode(result_response.content, type=TrainingResult)
    assert remote.session_info.operation_id == session_id
    assert remote.session_info.seed == 3
    with TrainingOrchestrator(
        home=tmp_path / "local_home", data_dir=synthetic_data_dir
    ) as local_orch:
        op = local_orch.start_training(
            _write(tmp_path / "small_test.yaml"), overrides={"epochs": 2}
        )
        assert op.wait(WAIT_S).status == "completed"
        local = op.result()
    assert _key_tree(result_response.json()) == _key_tree(msgspec.to_builtins(local))

    metrics = client.get(f"/sessions/{session_id}/metrics").json()
    assert [row["epoch"] for row in metrics["epochs"]] == [0, 1] or len(metrics["epochs"]) == 2

    archive = client.get(f"/sessions/{session_id}/artifacts/model")
    assert archive.status_code == 200
    assert archive.headers["content-type"].startswith("application/gzip")
    assert archive.headers[SHA256_HEADER] == sha256_hex(archive.content)
    assert archive.headers[MODEL_ID_HEADER] == remote.artifacts.model_id
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == sorted(ARCHIVE_FILES)
    store = ModelStore(tmp_path / "client_models")
    saved = import_model_archive(
        archive.content, archive.headers[SHA256_HEADER], store=store, name="small_test"
    )
    model = store.load(saved.name, saved.version)
    features = np.random.default_rng(1).normal(size=(4, len(model.feature_names)))
    probabilities = model.predict_proba(features.astype(np.float32))
    assert probabilities.shape[0] == 4
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    listing = msgspec.json.decode(client.get("/sessions").content, type=HostSessionList)
    assert [s.session_id for s in listing.sessions] == [session_id]

    _error(client.post(f"/sessions/{session_id}/stop", json={}), 409)


def _write(path: Path) -> Path:
    path.write_text(SMALL_STRATEGY, encoding="utf-8")
    return path


def test_abort_stop_cancels_mid_run_and_status_stays_bounded(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]],
) -> None:
    _, client = host_server()
    session_id = _start(client, 500)
    # Compare two snapshots that both carry epoch figures (the first epoch's arrive with
    # its end), so only the growth of a history could make them differ in size.
    early = _wait(client, session_id, lambda s: s.progress.metrics_epoch >= 1)
    early_size = len(client.get(f"/sessions/{session_id}").content)
    later = _wait(
        client, session_id, lambda s: s.progress.metrics_epoch >= early.progress.metrics_epoch + 4
    )
    later_size = len(client.get(f"/sessions/{session_id}").content)
    assert later.progress.metrics  # latest epoch figures only
    assert abs(later_size - early_size) < 200, (early_size, later_size)
    history = client.get(f"/sessions/{session_id}/metrics").json()["epochs"]
    assert len(history) >= 3  # the history grows with every epoch; the status does not

    _error(client.get(f"/sessions/{session_id}/result"), 409)
    _error(client.get(f"/sessions/{session_id}/artifacts/model"), 409)
    stopped = client.post(f"/sessions/{session_id}/stop", json={"reason": "test abort"})
    assert stopped.status_code == 202, stopped.text
    assert stopped.json()["status"] in ("cancelling", "cancelled")
    final = _final(client, session_id)
    assert final.status == "cancelled"
    assert final.cancellation_reason == "test abort"
    assert final.progress.epoch < 500
    assert not final.model_available
    _error(client.post(f"/sessions/{session_id}/stop"), 409)
    _error(client.get(f"/sessions/{session_id}/result"), 409)


def test_graceful_stop_completes_with_a_saved_model(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]],
) -> None:
    _, client = host_server()
    session_id = _start(client, 500)
    _wait(client, session_id, lambda s: s.progress.epoch >= 1)
    stopped = client.post(f"/sessions/{session_id}/stop", json={"graceful": True})
    assert stopped.status_code == 202, stopped.text
    final = _final(client, session_id)
    assert final.status == "completed", final.error_message
    assert final.model_available
    result = client.get(f"/sessions/{session_id}/result").json()
    assert result["training_metrics"]["epochs_completed"] < 500
    assert client.get(f"/sessions/{session_id}/artifacts/model").status_code == 200


def test_auth_errors_and_health(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_MAX_STRATEGY_BYTES", "4096")
    live, client = host_server(max_body_bytes=8192)
    routes = [
        ("POST", "/sessions"),
        ("GET", "/sessions"),
        ("GET", "/sessions/x"),
        ("POST", "/sessions/x/stop"),
        ("GET", "/sessions/x/result"),
        ("GET", "/sessions/x/metrics"),
        ("GET", "/sessions/x/artifacts/model"),
    ]
    with httpx.Client(base_url=live.url + HOST_PREFIX, timeout=30.0) as anonymous:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = anonymous.request(method, path, headers=headers, json={})
                body = _error(response, 401)
                assert "KTRDR_HOST_TOKEN" in body.detail
                assert response.headers["www-authenticate"] == "Bearer"
        health = anonymous.get("/health")
    assert health.status_code == 200
    # without the token: nothing about the machine
    assert health.json() == {"status": "ok", "note": HIDDEN_DETAILS_NOTE}
    report = msgspec.json.decode(client.get("/health").content, type=HostHealth)
    assert report.status == "ok"
    assert report.device in ("cpu", "cuda")
    assert report.accelerator == "auto"
    assert report.devices
    assert set(report.devices[0]) == {
        "name",
        "memory_total_mb",
        "memory_used_mb",
        "utilization_percent",
    }
    assert report.active_sessions == []
    assert report.max_concurrent >= 1
    assert {"python", "torch", "ktrdr_lib"} <= set(report.versions)

    for method, path in routes[2:]:
        body = _error(client.request(method, path, json={}), 404)
        assert body.error_type == "NotFoundError"

    bad = "name: broken\nindicators:\n  - {name: nosuch, period: -3}\n"
    body = _error(client.post("/sessions", json=_request(2, strategy_yaml=bad)), 400)
    assert body.problems
    assert all(p.message and isinstance(p.path, str) for p in body.problems)
    _error(client.post("/sessions", json=_request(2, strategy_yaml="/etc/passwd.yaml")), 400)
    _error(client.post("/sessions", json={**_request(2), "unknown_field": 1}), 400)
    _error(client.post("/sessions", json=_request(2, symbols=["NOSUCH"], seed=-1)), 400)
    padded = _request(2, strategy_yaml=SMALL_STRATEGY + "#" * 4096)
    assert "KTRDR_MAX_STRATEGY_BYTES" in _error(client.post("/sessions", json=padded), 400).detail
    huge = _request(2, strategy_yaml="#" * 9000)
    assert "KTRDR_HOST_MAX_BODY" in _error(client.post("/sessions", json=huge), 413).detail
    assert client.get("/sessions").json() == {"sessions": []}


def test_retention_forgets_the_oldest_finished_sessions(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]],
) -> None:
    _, client = host_server(max_finished=2)
    ids = []
    for _ in range(3):
        ids.append(_start(client, 1))
        assert _final(client, ids[-1]).status == "completed"
    listing = client.get("/sessions").json()["sessions"]
    assert [s["session_id"] for s in listing] == ids[:0:-1]
    for path in ("", "/result", "/metrics", "/artifacts/model"):
        _error(client.get(f"/sessions/{ids[0]}{path}"), 404)
    assert _status(client, ids[2]).status == "completed"


def test_queueing_at_capacity(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_MAX_PENDING", "1")
    _, client = host_server(max_concurrent=1)
    first = _start(client, 500)
    _wait(client, first, lambda s: s.status == "running")
    second = _start(client, 1)
    assert _status(client, second).status == "pending"
    full = client.post("/sessions", json=_request(1))
    assert _error(full, 429).error_type == "QueueFullError"
    assert int(full.headers["retry-after"]) >= 1
    health = client.get("/health").json()
    assert set(health["active_sessions"]) == {first, second}
    assert health["max_concurrent"] == 1
    assert client.post(f"/sessions/{first}/stop").status_code == 202
    assert _final(client, first).status == "cancelled"
    assert _final(client, second).status == "completed"


def test_retention_by_age_forgets_finished_sessions(
    host_server: Callable[..., tuple[LiveServer, httpx.Client]],
) -> None:
    _, client = host_server(retention_s=0)
    session_id = _start(client, 1)
    deadline = time.monotonic() + WAIT_S
    while (response := client.get(f"/sessions/{session_id}")).status_code == 200:
        # "completed" can show while the worker still flushes; it is forgotten right after
        assert response.json()["status"] in ("pending", "running", "completed")
        assert time.monotonic() < deadline
        time.sleep(0.02)
    _error(response, 404)  # finished, and kept 0 s: forgotten by the next request
    assert client.get("/sessions").json() == {"sessions": []}


def test_host_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from ktrdr_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="KTRDR_HOST_TOKEN"):
        create_app()
    assert create_app(insecure_no_token=True) is not None
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(token="short-s3cret")
    monkeypatch.setenv("KTRDR_HOST_TOKEN", "")  # was "no token": an open host
    with pytest.raises(ConfigError, match="KTRDR_HOST_TOKEN is set but empty"):
        create_app(insecure_no_token=True)
