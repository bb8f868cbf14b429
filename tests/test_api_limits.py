"""The API's limits through ``litestar.testing.TestClient``: a full queue is 429 with
Retry-After, out-of-range input is a 400 (never a 500), tokens that would not protect are
refused at start-up, health tells only its status to callers without the token, and finished
operations are forgotten by the retention policy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from api import create_app
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.retention import OperationRetention
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.schemas.health import HIDDEN_DETAILS_NOTE
from ktrdr_lib.schemas.results import TrainingResult

from .builders import make_result
from .conftest import SMALL_STRATEGY

API = "/api/v1"
LOCAL = "http://127.0.0.1:8000"
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "small_test"}
TOKEN = "limits-test-token-0123456789"


class HeldRunner:
    """Trains nothing until released, so later runs wait in the queue."""

    mode = "local"
    can_reattach = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self, context: Any, control: RunControl) -> TrainingResult:
        self.release.wait(30)
        return make_result(context.operation_id)


def _never_500(response: httpx.Response) -> None:
    response.read()
    assert response.status_code < 500, response.text


@pytest.fixture
def make_client(
    synthetic_data_dir: Path, strategies_dir: Path
) -> Iterator[Callable[..., TestClient[Any]]]:
    clients: list[TestClient[Any]] = []

    def make(**kwargs: Any) -> TestClient[Any]:
        options = kwargs.pop("orchestrator_options", {})
        options.setdefault("data_dir", synthetic_data_dir)
        options.setdefault("store", OperationStore(":memory:"))
        client: TestClient[Any] = TestClient(
            create_app(orchestrator_options=options, **kwargs), base_url=LOCAL
        )
        client.__enter__()
        client.event_hooks = {"request": [], "response": [_never_500]}
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _error(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["status_code"] == status
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return body


def test_a_full_queue_is_429_with_retry_after(make_client: Callable[..., TestClient[Any]]) -> None:
    runner = HeldRunner()
    client = make_client(
        orchestrator_options={"runner": runner, "max_concurrent": 1, "max_pending": 1}
    )
    try:
        first = client.post(f"{API}/trainings/start", json=START).json()["task_id"]
        deadline = time.monotonic() + 30
        while client.get(f"{API}/operations/{first}").json()["data"]["status"] != "running":
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.02)  # it trains (held) from now on; the next one waits
        assert client.post(f"{API}/trainings/start", json=START).status_code == 200
        response = client.post(f"{API}/trainings/start", json=START)
        body = _error(response, 429, "max_pending 1")
        assert body["error_type"] == "QueueFullError"
        assert int(response.headers["retry-after"]) >= 1
        assert client.get(f"{API}/operations").json()["total_count"] == 2  # nothing stored
    finally:
        runner.release.set()


def test_an_out_of_range_timeframe_is_a_400(make_client: Callable[..., TestClient[Any]]) -> None:
    client = make_client()
    body = {**START, "timeframes": ["99999999999999999999d"]}  # overflowed pandas: a 500
    _error(client.post(f"{API}/trainings/start", json=body), 400, "at most 52 weeks")


def test_a_recursion_error_is_a_400(
    make_client: Callable[..., TestClient[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the net under every parser: with the depth cap raised, the decoder itself gives up
    monkeypatch.setenv("KTRDR_MAX_JSON_DEPTH", "1000000")
    client = make_client()
    deep = '{"content": "x", "file_name": ' + "[" * 20_000 + "]" * 20_000 + "}"
    response = client.post(
        f"{API}/strategies/validate", content=deep, headers={"content-type": "application/json"}
    )
    _error(response, 400, "nests too deeply")


def test_strategy_text_and_body_caps_name_their_settings(
    make_client: Callable[..., TestClient[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_MAX_STRATEGY_BYTES", "2000")  # the small strategy is ~1 KB
    client = make_client(max_body_bytes=5000)
    big = {"content": SMALL_STRATEGY + "#" * 1500}
    _error(client.post(f"{API}/strategies/validate", json=big), 400, "KTRDR_MAX_STRATEGY_BYTES")
    bigger = {"content": "#" * 6000}
    _error(client.post(f"{API}/strategies/validate", json=bigger), 413, "KTRDR_API_MAX_BODY")
    ok = client.post(f"{API}/strategies/validate", json={"content": SMALL_STRATEGY})
    assert ok.status_code == 200 and ok.json()["valid"] is True


@pytest.mark.parametrize("token", ["", "  ", "short"])
def test_an_empty_or_short_token_is_refused_at_start_up(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_API_TOKEN", token)
    with pytest.raises(ConfigError, match="KTRDR_API_TOKEN"):
        create_app()
    with pytest.raises(ConfigError, match="api_token"):
        create_app(api_token=token)


def test_health_shows_details_only_with_the_token(
    make_client: Callable[..., TestClient[Any]],
) -> None:
    client = make_client(api_token=TOKEN)
    public = {"status": "ok", "note": HIDDEN_DETAILS_NOTE}
    assert client.get(f"{API}/health").json() == public
    wrong = client.get(f"{API}/health", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.json() == public
    full = client.get(f"{API}/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert full["status"] == "ok" and "store_path" in full and "active_operation_ids" in full
    open_api = make_client()  # no token: nothing to protect, the details for everyone
    assert "store_path" in open_api.get(f"{API}/health").json()


def _cancelled(store: OperationStore, count: int) -> list[str]:
    ids = []
    for index in range(count):
        op_id = f"op_old_{index}"
        store.create(op_id)
        store.transition(op_id, "cancelled", cancellation_reason="test")
        ids.append(op_id)
    return ids


def test_the_api_forgets_finished_operations_past_its_keep_count(
    make_client: Callable[..., TestClient[Any]],
    monkeypatch: pytest.MonkeyPatch,
    isolated_home: Path,
) -> None:
    monkeypatch.setenv("KTRDR_KEEP_OPERATIONS", "2")
    store = OperationStore(isolated_home / "operations.db")
    ids = _cancelled(store, 3)
    client = make_client(orchestrator_options={"store": store}, prune_every_s=0.05)
    deadline = time.monotonic() + 30
    while client.get(f"{API}/operations").json()["total_count"] > 2:  # at start-up
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _error(client.get(f"{API}/operations/{ids[0]}"), 404)  # the oldest went
    _cancelled_later = "op_later"
    store.create(_cancelled_later)
    store.transition(_cancelled_later, "cancelled")
    while client.get(f"{API}/operations/{ids[1]}").status_code != 404:  # and periodically
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_retention_by_age_keeps_active_and_recent_operations(
    synthetic_data_dir: Path, small_strategy_file: Path
) -> None:
    store = OperationStore(":memory:")
    runner = HeldRunner()
    orch = TrainingOrchestrator(store=store, runner=runner, data_dir=synthetic_data_dir)
    try:
        (old,) = _cancelled(store, 1)
        active = orch.start_training(small_strategy_file, epochs=1).operation_id
        keeper = OperationRetention(orch, keep_s=86400, max_finished=100)
        assert keeper.prune() == []  # finished today: kept
        later = datetime.now(UTC) + timedelta(days=2)
        assert keeper.prune(now=later) == [old]  # the active run is never forgotten
        assert orch.list_operations().total_count == 1
        assert orch.get_operation(active).status in ("pending", "running")
    finally:
        runner.release.set()
        orch.shutdown()


def test_retention_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_KEEP_OPERATIONS_DAYS", "forever")
    with pytest.raises(ConfigError, match="KTRDR_KEEP_OPERATIONS_DAYS='forever'"):
        create_app()
