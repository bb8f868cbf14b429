"""The HTTP API against a real uvicorn server on loopback, driven the way clients drive it.

Covers the streaming paths TestClient cannot show (events arriving while a run trains,
disconnect and resume, cancel mid-stream), a client behaving exactly like a KTRDR v1 client,
reads while a training runs, and the lifespan shutdown marking a running operation
``interrupted``. Every response is checked: never a 5xx, never a stack trace.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.inference import predict_signal
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.store import OperationStore

from .conftest import LiveServer

API = "/api/v1"
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "small_test"}
V1_FINAL = ("completed", "failed", "cancelled")


def _no_server_error(response: httpx.Response) -> None:
    if "text/event-stream" in response.headers.get("content-type", ""):
        assert response.status_code == 200
        return  # streamed: read by the test
    response.read()
    # 503 is the documented answer when no training host is configured; nothing else 5xx.
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert "Traceback" not in response.text


def http(live: LiveServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(
        base_url=live.url + API,
        timeout=httpx.Timeout(60.0),
        event_hooks={"response": [_no_server_error]},
        **kwargs,
    )


@pytest.fixture
def server(live_api: Callable[..., LiveServer], strategies_dir: Path) -> LiveServer:
    return live_api(sse_poll_s=0.02)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with http(server) as c:
        yield c


def start(client: httpx.Client, epochs: int, **extra: Any) -> str:
    response = client.post(
        "/trainings/start", json={**START, "overrides": {"epochs": epochs}, **extra}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


class EventStream:
    """One SSE connection, read event by event as the server sends them."""

    def __init__(self, client: httpx.Client, op_id: str, last_event_id: int | None = None):
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        self._cm = client.stream("GET", f"/operations/{op_id}/events", headers=headers)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        event: dict[str, Any] = {}
        for line in self._lines:
            if not line:
                if event:
                    yield event
                event = {}
            elif line.startswith(":"):
                event["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                event[name] = json.loads(value) if name == "data" else value

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def read_to_end(stream: EventStream) -> list[dict[str, Any]]:
    events = []
    for event in stream:
        events.append(event)
        if event.get("event") == "final":
            break
    stream.close()
    return events


def progress_ids(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["id"]) for e in events if e.get("event") == "progress"]


# -- the whole journey over the wire -----------------------------------------------------------


def test_start_follow_performance_save_load_predict(
    client: httpx.Client, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    op_id = start(client, epochs=2)
    events = read_to_end(EventStream(client, op_id))

    ids = progress_ids(events)
    assert ids == sorted(set(ids)) and len(ids) >= 5
    snapshots = [e["data"] for e in events if e.get("event") == "progress"]
    assert [s["percentage"] for s in snapshots] == sorted(s["percentage"] for s in snapshots)
    assert any(s["phase"] == "train" and s["status"] == "running" for s in snapshots)
    assert snapshots[-1]["status"] == "completed"
    assert events[-1]["event"] == "final"
    assert events[-1]["data"]["status"] == "completed"
    assert events[-1]["data"]["sequence"] == ids[-1]

    perf = client.get(f"/trainings/{op_id}/performance").json()
    assert perf["status"] == "completed" and perf["training_metrics"]["epochs_completed"] == 2

    saved = client.post("/models/save", json={"task_id": op_id, "model_name": "live_model"})
    assert saved.status_code == 200, saved.text
    assert client.post("/models/live_model/load").json()["model_loaded"] is True

    served = client.post("/models/predict", json={"model_name": "live_model", "symbol": "SYNTH"})
    assert served.status_code == 200, served.text
    body = served.json()
    model = ModelStore(isolated_home / "models").load("live_model")
    expected = predict_signal(model, "SYNTH", timeframe="1h", data_dir=synthetic_data_dir)
    assert body["test_date"] == expected.bar_time
    assert body["prediction"]["probabilities"] == expected.probabilities
    assert body["prediction"]["signal"] == expected.signal
    assert body["input_features"] == expected.input_features


# -- a KTRDR v1 client, exactly --------------------------------------------------------------


@dataclass
class V1Client:
    """Behaves like KTRDR v1's client (KTRDR-API-V1.md, last section): start, take task_id,
    poll ``GET /operations/{id}`` every 0.3 s reading the v1 fields, DELETE on Ctrl-C and
    poll up to 3 s for ``cancelled``; at the end read ``error_message`` or ``/performance``."""

    http: httpx.Client
    polls: list[dict[str, Any]] = field(default_factory=list)

    def start(self, epochs: int) -> str:
        body = self.http.post(
            "/trainings/start", json={**START, "overrides": {"epochs": epochs}}
        ).json()
        assert body["success"] is True
        return str(body["task_id"])

    def poll_once(self, task_id: str) -> str:
        data = self.http.get(f"/operations/{task_id}").json()["data"]
        progress = data["progress"]
        context = progress["context"]
        seen = {
            "status": data["status"],
            "percentage": progress["percentage"],
            "current_step": progress["current_step"],
            "epoch_index": context["epoch_index"],
            "total_epochs": context["total_epochs"],
            "batch_number": context["batch_number"],
            "batch_total_per_epoch": context["batch_total_per_epoch"],
            "resource_usage": context["resource_usage"],
            "epochs": data["metadata"]["parameters"]["epochs"],
            "error_message": data["error_message"],
        }
        self.polls.append(seen)
        return str(seen["status"])

    def wait(self, task_id: str, until: Callable[[dict[str, Any]], bool] | None = None) -> str:
        while True:
            status = self.poll_once(task_id)
            if status in V1_FINAL or (until is not None and until(self.polls[-1])):
                return status
            time.sleep(0.3)

    def cancel(self, task_id: str) -> str:
        response = self.http.delete(f"/operations/{task_id}")
        assert response.json()["success"] is True
        deadline = time.monotonic() + 3.0
        status = self.poll_once(task_id)
        while status != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.3)
            status = self.poll_once(task_id)
        return status

    def performance(self, task_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(f"/trainings/{task_id}/performance").json()
        return body


def _check_v1_fields(polls: list[dict[str, Any]], epochs: int) -> None:
    for seen in polls:
        assert seen["status"] in ("pending", "running", *V1_FINAL)
        assert isinstance(seen["percentage"], float) and 0.0 <= seen["percentage"] <= 100.0
        assert isinstance(seen["current_step"], str)
        for key in ("epoch_index", "total_epochs", "batch_number", "batch_total_per_epoch"):
            assert isinstance(seen[key], int)
        assert seen["total_epochs"] == epochs and seen["epochs"] == epochs
        assert isinstance(seen["resource_usage"]["gpu_used"], bool)
        assert "gpu_name" in seen["resource_usage"]
        assert "gpu_utilization_percent" in seen["resource_usage"]
    percentages = [s["percentage"] for s in polls]
    assert percentages == sorted(percentages)


def test_v1_client_runs_one_training_to_completion_and_cancels_another(
    client: httpx.Client,
) -> None:
    v1 = V1Client(client)
    task_id = v1.start(epochs=3)
    assert v1.wait(task_id) == "completed"
    _check_v1_fields(v1.polls, epochs=3)
    assert v1.polls[-1]["percentage"] == 100.0 and v1.polls[-1]["error_message"] is None
    assert v1.polls[-1]["epoch_index"] == 3
    performance = v1.performance(task_id)
    assert performance["success"] is True and performance["status"] == "completed"
    assert performance["training_metrics"]["epochs_completed"] == 3

    v1 = V1Client(client)
    task_id = v1.start(epochs=400)
    in_training = v1.wait(task_id, until=lambda seen: seen["batch_number"] > 0)
    assert in_training == "running"
    assert v1.cancel(task_id) == "cancelled"
    _check_v1_fields(v1.polls, epochs=400)
    assert v1.polls[-1]["epoch_index"] < 400
    assert client.get(f"/trainings/{task_id}/performance").status_code == 409


# -- server-sent events while training --------------------------------------------------------


def test_delete_mid_run_ends_the_stream_with_cancelled(client: httpx.Client) -> None:
    op_id = start(client, epochs=400)
    stream = EventStream(client, op_id)
    events: list[dict[str, Any]] = []
    cancelled = False
    for event in stream:
        events.append(event)
        data = event.get("data") or {}
        if not cancelled and event.get("event") == "progress" and data.get("phase") == "train":
            reply = client.request(
                "DELETE", f"/operations/{op_id}", json={"reason": "stop from test"}
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["data"]["status"] in ("cancelling", "cancelled")
            cancelled = True
        if event.get("event") == "final":
            break
    stream.close()
    assert cancelled
    final = events[-1]
    assert final["event"] == "final"
    assert final["data"]["status"] == "cancelled"
    assert final["data"]["cancellation_reason"] == "stop from test"
    last_progress = [e["data"] for e in events if e.get("event") == "progress"][-1]
    assert last_progress["status"] == "cancelled"
    assert last_progress["epoch"] < 400
    info = client.get(f"/operations/{op_id}").json()["data"]
    assert info["status"] == "cancelled" and info["cancellation_reason"] == "stop from test"


def test_stream_resumes_after_disconnect_without_gaps_or_repeats(client: httpx.Client) -> None:
    op_id = start(client, epochs=3)
    witness: list[dict[str, Any]] = []
    watcher = threading.Thread(
        target=lambda: witness.extend(read_to_end(EventStream(client, op_id))), daemon=True
    )
    watcher.start()

    first = EventStream(client, op_id)
    before: list[int] = []
    for event in first:
        if event.get("event") == "progress":
            before.append(int(event["id"]))
            if event["data"]["phase"] == "train" and event["data"]["batch"] >= 2:
                break
        assert event.get("event") != "final", "the run finished before the test disconnected"
    first.close()  # the client goes away mid-run

    resumed_events = read_to_end(EventStream(client, op_id, last_event_id=before[-1]))
    resumed = progress_ids(resumed_events)
    watcher.join(60)
    assert not watcher.is_alive()

    assert resumed and all(seq > before[-1] for seq in resumed)
    assert before + resumed == progress_ids(witness)
    assert resumed_events[-1]["event"] == "final"
    assert resumed_events[-1]["data"]["status"] == "completed"


def test_every_subscriber_sees_the_final_status(
    live_api: Callable[..., LiveServer], strategies_dir: Path
) -> None:
    """The final snapshot reaches the live channel just before the store records the final
    status; eager subscribers must still get ``final`` with the real status, not ``running``."""
    server = live_api(sse_poll_s=0.001)
    with http(server) as c:
        for _ in range(2):
            op_id = start(c, epochs=1)
            endings: list[tuple[str, str]] = []

            def watch(op_id: str = op_id, endings: list[tuple[str, str]] = endings) -> None:
                events = read_to_end(EventStream(c, op_id))
                last = [e["data"] for e in events if e.get("event") == "progress"][-1]
                endings.append((events[-1]["data"]["status"], last["status"]))

            watchers = [threading.Thread(target=watch) for _ in range(6)]
            for watcher in watchers:
                watcher.start()
            for watcher in watchers:
                watcher.join(60)
            assert endings == [("completed", "completed")] * 6


# -- reads while a training runs ----------------------------------------------------------------


def test_status_reads_all_succeed_while_training(server: LiveServer, client: httpx.Client) -> None:
    op_id = start(client, epochs=4)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def reader() -> None:
        with http(server) as own:
            for i in range(60):
                path = (f"/operations/{op_id}", "/operations", "/health")[i % 3]
                response = own.get(path)
                body = response.json()
                ok = body.get("success", body.get("status") == "ok")
                with lock:
                    results.append((response.status_code, "ok" if ok else response.text))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 240
    assert all(result == (200, "ok") for result in results), results[:5]
    assert V1Client(client).wait(op_id) == "completed"


# -- auth over the wire ------------------------------------------------------------------------


def test_token_required_over_the_wire(
    live_api: Callable[..., LiveServer], strategies_dir: Path
) -> None:
    live = live_api(api_token="wire-token-0123456789")
    with http(live) as anonymous:
        for method, path in (
            ("GET", "/operations"),
            ("GET", "/operations/op_x/events"),
            ("POST", "/trainings/start"),
            ("GET", "/models"),
            ("GET", "/strategies"),
        ):
            response = anonymous.request(method, path, json=START)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["success"] is False
        assert anonymous.get("/health").status_code == 200
    with http(live, headers={"Authorization": "Bearer wire-token-0123456789"}) as authorised:
        assert authorised.get("/operations").status_code == 200


# -- shutdown -----------------------------------------------------------------------------------


def test_shutdown_marks_a_running_training_interrupted(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api(shutdown_grace_s=0.3)
    with http(live) as c:
        op_id = start(c, epochs=400)
        V1Client(c).wait(op_id, until=lambda seen: seen["batch_number"] > 0)
    live.stop()
    assert not live.thread.is_alive()

    store = OperationStore(isolated_home / "operations.db")
    try:
        record = store.get(op_id)
    finally:
        store.close()
    assert record.status == "interrupted"
    assert record.error_message
    assert record.finished_at is not None
