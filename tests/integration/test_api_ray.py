"""The API's Ray front door on a real uvicorn server and a real local Ray (2 CPUs).

A ``mode: ray`` training started through ``POST /trainings/start`` (the orchestrator finds the
cluster through KTRDR_RAY_ADDRESS), followed over server-sent events, read and cancelled
through the operation routes; a sweep started, read and followed through ``/sweeps``; and a
sweep cancelled through the operation cancel route, which cancels its trials. Every response
is checked: never a 5xx, never a stack trace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.runners.ray import RayTrainingRunner
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.sweeps import SweepSnapshot
from tests.integration.ray_support import local_ray

from .conftest import LiveServer

__all__ = ["local_ray"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]

API = "/api/v1"
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "small_test"}
# ~220 batches of 8 rows per epoch on SYNTH: long enough to cancel mid-run, short per epoch.
LONG = {"epochs": 400, "overrides": {"model.training.batch_size": 8}}
# Two epochs of ~1 s: the runner's polls (every 0.2 s) see the train phase.
TWO_EPOCHS = {"epochs": 2, "overrides": {"model.training.batch_size": 16}}
ONE_TRIAL = {"strategy": "small_test", "space": {"model.training.learning_rate": [0.01]}}


def _no_server_error(response: httpx.Response) -> None:
    if "text/event-stream" in response.headers.get("content-type", ""):
        assert response.status_code == 200
        return  # streamed: read by the test
    response.read()
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


@pytest.fixture
def client(
    local_ray: str, live_api: Callable[..., LiveServer], strategies_dir: Path
) -> Iterator[httpx.Client]:
    """The API on loopback, its orchestrator on the module's Ray (a runner passed in)."""
    server = live_api(
        sse_poll_s=0.02,
        orchestrator_options={"ray_runner": RayTrainingRunner(poll_interval=0.05)},
    )
    with _http(server) as http:
        yield http


def _http(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + API,
        timeout=httpx.Timeout(60.0),
        event_hooks={"response": [_no_server_error]},
    )


def read_events(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    """A server-sent event stream read to its ``final`` event (or its end)."""
    events: list[dict[str, Any]] = []
    with http.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                event[name or "comment"] = json.loads(value) if name == "data" else value
                continue
            if event:
                events.append(event)
                if event.get("event") == "final":
                    break
            event = {}
    return events


def _wait(read: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not read():
        assert time.monotonic() < deadline, f"{what} within {limit} s"
        time.sleep(0.05)


# -- a ray-mode training ----------------------------------------------------------------------


def test_a_ray_training_through_the_api_reports_progress_and_its_result(
    local_ray: str,
    live_api: Callable[..., LiveServer],
    strategies_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_RAY_ADDRESS", local_ray)  # what create_app's orchestrator reads
    with _http(live_api(sse_poll_s=0.02)) as http:
        assert http.get("/health").json()["mode"] == "local+ray"
        started = http.post(
            "/trainings/start", json={**START, "mode": "ray", "num_cpus": 1, **TWO_EPOCHS}
        )
        assert started.status_code == 200, started.text
        assert started.json()["mode"] == "ray"
        op_id = started.json()["task_id"]

        events = read_events(http, f"/operations/{op_id}/events")
        progress = [e["data"] for e in events if e.get("event") == "progress"]
        assert {"load_data", "train"} <= {p["phase"] for p in progress}
        assert max(p["epoch"] for p in progress) == 2
        percentages = [p["percentage"] for p in progress]
        assert percentages == sorted(percentages)
        assert events[-1]["event"] == "final"
        assert events[-1]["data"]["status"] == "completed", events[-1]["data"]

        info = http.get(f"/operations/{op_id}").json()["data"]
        assert info["status"] == "completed"
        assert info["metadata"]["mode"] == "ray"
        session = info["progress"]["context"]["host_session_id"]
        assert session.startswith("ktrdr-")  # the Ray actor that trained it

        result = msgspec.json.decode(
            http.get(f"/operations/{op_id}/result").content, type=TrainingResult
        )
        placement = result.session_info.ray
        assert result.session_info.mode == "ray" and placement is not None
        assert placement.actor_name == session
        assert (placement.num_cpus, placement.num_gpus) == (1.0, 0.0)
        assert result.training_metrics.epochs_completed == 2
        performance = http.get(f"/trainings/{op_id}/performance").json()
        assert performance["training_metrics"]["epochs_completed"] == 2
        assert performance["model_info"]["model_id"] == result.artifacts.model_id
        rows = http.get(f"/operations/{op_id}/metrics").json()["epochs"]
        assert [row["epoch"] for row in rows] == [1, 2]

        # What the cluster can never hold is refused up front, naming the field.
        too_big = http.post("/trainings/start", json={**START, "mode": "ray", "num_cpus": 8})
        assert too_big.status_code == 400
        assert "num_cpus: the run asks for 8" in too_big.json()["detail"]


def test_cancelling_a_ray_training_through_the_api_ends_its_stream_cancelled(
    client: httpx.Client,
) -> None:
    started = client.post("/trainings/start", json={**START, "mode": "ray", **LONG})
    assert started.status_code == 200, started.text
    op_id = started.json()["task_id"]
    _wait(  # an epoch is in the history once it completed, validation included
        lambda: len(client.get(f"/operations/{op_id}/metrics").json()["epochs"]) >= 1,
        "the ray run completed an epoch",
    )
    cancel = client.request("DELETE", f"/operations/{op_id}", json={"reason": "enough"})
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["data"]["training_session_cancelled"] is True  # the actor was told
    final = read_events(client, f"/operations/{op_id}/events")[-1]
    assert final["event"] == "final"
    assert final["data"]["status"] == "cancelled"
    assert final["data"]["cancellation_reason"] == "enough"
    partial = client.get(f"/operations/{op_id}/result").json()
    assert partial["training_metrics"]["epochs_completed"] >= 1


# -- sweeps -----------------------------------------------------------------------------------


def test_a_sweep_through_the_api_starts_streams_and_ranks_its_trials(
    client: httpx.Client,
) -> None:
    # Checked whole before anything is stored, with the cluster at hand.
    for body, needle in (
        ({"metric": "sharpe"}, "metric: 'sharpe'"),
        ({"num_samples": 0}, "num_samples"),
        ({"space": {"model.nope.deeper": [1, 2]}}, "sweep trial 0"),
        ({"early_stop": "asha", "grace_period": 5}, "grace_period: 5 epochs is more than"),
        ({"reduction_factor": 1}, "reduction_factor"),
    ):
        bad = client.post(
            "/sweeps",
            json={**ONE_TRIAL, **body},
        )
        assert bad.status_code == 400 and needle in bad.json()["detail"], bad.text
    assert client.get("/operations").json()["total_count"] == 0

    rates = [0.01, 0.001]
    started = client.post(
        "/sweeps",
        json={
            "strategy": "small_test",
            "space": {"model.training.learning_rate": rates},
            "epochs": 2,
            "metric": "val_accuracy",
            "max_concurrent": 2,
            "best_model_name": "api_sweep_best",
        },
    )
    assert started.status_code == 201, started.text
    first = msgspec.json.decode(started.content, type=SweepSnapshot)
    sweep_id = first.operation.operation_id
    assert first.operation.operation_type == "sweep" and first.operation.mode == "ray"
    assert (first.strategy, first.metric, first.mode, first.search) == (
        "small_test",
        "val_accuracy",
        "max",
        "grid",
    )
    assert first.max_concurrent == 2 and first.early_stop is None
    assert [t.config["model.training.learning_rate"] for t in first.trials] == rates
    assert first.result is None

    events = read_events(client, f"/sweeps/{sweep_id}/events")
    assert events[-1]["event"] == "final"
    names = [e["event"] for e in events if "event" in e]
    assert names[:-1] == ["sweep"] * (len(names) - 1) and len(names) >= 3
    changes = [msgspec.convert(e["data"], SweepSnapshot) for e in events if "data" in e]
    assert any(s.operation.status == "running" for s in changes)
    assert any(0 < t.epoch < 2 or t.status == "running" for s in changes for t in s.trials)
    final = changes[-1]
    assert final.operation.status == "completed", final.operation.error_message
    result = final.result
    assert result is not None and len(result.trials) == 2
    metrics = [t.metric for t in result.trials]
    assert None not in metrics and metrics == sorted(metrics, reverse=True)  # max: best first
    assert result.best_operation_id == result.trials[0].operation_id
    assert result.best_model_name == "api_sweep_best"
    assert all(t.status == "completed" and t.epoch == 2 for t in result.trials)

    # The same sweep read back, the trials as operations of their own, the best model saved.
    again = msgspec.json.decode(client.get(f"/sweeps/{sweep_id}").content, type=SweepSnapshot)
    assert again.result == result and again.operation.status == "completed"
    for trial in result.trials:
        info = client.get(f"/operations/{trial.operation_id}").json()["data"]
        assert info["operation_type"] == "training" and info["status"] == "completed"
        assert info["metadata"]["sweep_id"] == sweep_id and info["metadata"]["mode"] == "ray"
    listed = client.get("/operations", params={"operation_type": "sweep"}).json()
    assert [row["operation_id"] for row in listed["data"]] == [sweep_id]
    assert client.get("/models/api_sweep_best").status_code == 200
    assert client.get(f"/sweeps/{result.trials[0].operation_id}").status_code == 404


def test_cancelling_a_sweep_through_the_operation_route_cancels_its_trials(
    client: httpx.Client,
) -> None:
    started = client.post(
        "/sweeps",
        json={
            "strategy": "small_test",
            "space": {"model.training.learning_rate": [0.01, 0.001, 0.0001]},
            "max_concurrent": 1,
            **LONG,
        },
    )
    assert started.status_code == 201, started.text
    sweep_id = started.json()["operation"]["operation_id"]

    def first_trial_trained() -> bool:
        return bool(client.get(f"/sweeps/{sweep_id}").json()["trials"][0]["epoch"] >= 1)

    _wait(first_trial_trained, "the first trial trained an epoch")
    cancel = client.post(f"/operations/{sweep_id}/cancel", json={"reason": "wrong space"})
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["data"]["status"] in ("cancelling", "cancelled")

    events = read_events(client, f"/sweeps/{sweep_id}/events")
    assert events[-1]["event"] == "final"
    final = msgspec.convert(events[-1]["data"], SweepSnapshot)
    assert final.operation.status == "cancelled"
    assert final.operation.cancellation_reason == "wrong space"
    assert final.result is not None
    assert {t.trial: t.status for t in final.result.trials} == {
        0: "cancelled",
        1: "cancelled",
        2: "cancelled",
    }
    for trial in final.result.trials:
        info = client.get(f"/operations/{trial.operation_id}").json()["data"]
        assert info["status"] == "cancelled"
        assert "wrong space" in (info["cancellation_reason"] or "")
    # The sweep's own operation stream ends the same way.
    progress = read_events(client, f"/operations/{sweep_id}/events")
    assert progress[-1]["event"] == "final" and progress[-1]["data"]["status"] == "cancelled"
    again = client.delete(f"/operations/{sweep_id}")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
