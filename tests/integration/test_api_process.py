"""The HTTP API training in child processes, as ``ktrdr serve api`` does: warm workers, cancels
that land in every phase, and the cancel latencies of child runs in ``/health``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.runners.process import ProcessTrainingRunner
from tests.integration.conftest import LiveServer
from tests.integration.test_api_live import START, http

pytestmark = pytest.mark.slow  # trains real models in child processes


@pytest.fixture
def server(live_api: Callable[..., LiveServer], strategies_dir: Path) -> LiveServer:
    live = live_api(local_runner="process", sse_poll_s=0.02)
    runner = live.app.state.orchestrator.runners["local"]
    assert isinstance(runner, ProcessTrainingRunner)
    assert runner.pool.wait_ready(180), "the warm worker never got ready"
    return live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with http(server) as c:
        yield c


def _final(client: httpx.Client, op_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"/operations/{op_id}").json()["data"]
        if data["status"] in ("completed", "failed", "cancelled"):
            return data
        time.sleep(0.02)
    raise AssertionError(f"operation {op_id} did not end within {timeout} s")


def test_a_young_run_is_cancelled_before_it_trains_and_health_has_its_latency(
    server: LiveServer, client: httpx.Client
) -> None:
    started = client.post("/trainings/start", json={**START, "overrides": {"epochs": 400}})
    assert started.status_code == 200, started.text
    op_id = started.json()["task_id"]
    reply = client.request("DELETE", f"/operations/{op_id}", json={"reason": "too soon"})
    assert reply.status_code == 200, reply.text
    final = _final(client, op_id)
    assert final["status"] == "cancelled"
    # the cancel landed before the first training batch (a warm worker was preparing data,
    # or had not yet been handed the job)
    assert final["progress"]["context"]["items_processed"] == 0 or (
        final["progress"]["current_step"] != "train"
    ), final
    health = client.get("/health").json()
    latencies = [item for item in health["last_cancel_latencies"] if item["operation_id"] == op_id]
    assert latencies, health
    assert latencies[-1]["observed_ms"] is not None  # the child's moment of acting on it
    assert latencies[-1]["final_status"] == "cancelled"


def test_a_graceful_stop_over_http_finishes_the_epoch_in_the_child(client: httpx.Client) -> None:
    started = client.post("/trainings/start", json={**START, "overrides": {"epochs": 400}})
    op_id = started.json()["task_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = client.get(f"/operations/{op_id}").json()["data"]
        if info["progress"]["context"].get("epoch", 0) >= 2:
            break
        time.sleep(0.02)
    reply = client.post(f"/operations/{op_id}/cancel", json={"graceful": True, "reason": "ok"})
    assert reply.status_code == 200, reply.text
    final = _final(client, op_id)
    assert final["status"] == "completed"
    result = client.get(f"/operations/{op_id}/result").json()
    tm = result["training_metrics"]
    epochs = client.get(f"/operations/{op_id}/metrics").json()["epochs"]
    assert tm["epochs_completed"] == len(epochs) >= 2
    assert tm["interrupted_epoch"] is None
    assert result["session_info"]["cancellation_reason"] == "ok"
