"""The HTTP API through ``litestar.testing.TestClient`` (no server): routes, shapes, errors.

Every response any test here receives is checked: never a 5xx, never a stack trace.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from api import create_app
from ktrdr_lib.inference import predict_signal
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.schemas.results import TrainingResult

from .builders import make_result
from .conftest import REGRESSION_STRATEGY, SMALL_STRATEGY

API = "/api/v1"
LOCAL = "http://127.0.0.1:8000"  # without a token the API answers only this machine's names
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "small_test"}


def _no_server_error(response: httpx.Response) -> None:
    response.read()
    # 503 is the documented answer when no training host is configured; nothing else 5xx.
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert "Traceback" not in response.text


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Server-sent events as ``{"event", "id", "data", "comment"}`` dicts, in order."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {"event": "message", "id": None, "data": None, "comment": None}
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    data.append(value)
                elif field in ("event", "id"):
                    event[field] = value
        event["data"] = json.loads("\n".join(data)) if data else None
        events.append(event)
    return events


@pytest.fixture
def make_client(
    synthetic_data_dir: Path, strategies_dir: Path
) -> Iterator[Callable[..., TestClient[Any]]]:
    """Factory: a started TestClient over ``create_app(**kwargs)`` on the synthetic data."""
    clients: list[TestClient[Any]] = []

    def make(**kwargs: Any) -> TestClient[Any]:
        options = kwargs.pop("orchestrator_options", {})
        options.setdefault("data_dir", synthetic_data_dir)
        options.setdefault("progress_interval", 0.05)
        kwargs.setdefault("shutdown_grace_s", 30.0)
        app = create_app(orchestrator_options=options, **kwargs)
        client: TestClient[Any] = TestClient(app, base_url=LOCAL)
        client.__enter__()
        client.event_hooks = {"request": [], "response": [_no_server_error]}
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return make_client()


def start(client: TestClient[Any], epochs: int = 2, **extra: Any) -> str:
    response = client.post(
        f"{API}/trainings/start", json={**START, "overrides": {"epochs": epochs}, **extra}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["status"] == "training_started"
    return str(body["task_id"])


def follow(client: TestClient[Any], op_id: str, last_event_id: int | None = None) -> list[Any]:
    """The whole event stream (TestClient returns it once the stream has closed)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    response = client.get(f"{API}/operations/{op_id}/events", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def assert_error(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    """The common error body, with ``needles`` in its detail."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["status_code"] == status
    assert body["error_type"]
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return body


# -- which version loads ------------------------------------------------------------------------


def test_model_load_takes_newest_by_default_and_best_or_a_number_when_asked(
    client: TestClient[Any], isolated_home: Path
) -> None:
    from .test_model_store import save_scored, scored, trained_predictor

    store = ModelStore(isolated_home / "models")
    for accuracy in (0.55, 0.64, 0.50):
        save_scored(store, trained_predictor(), scored(accuracy))
    described = client.get(f"{API}/models/rsi_mlp").json()
    assert (described["latest_version"], described["best_version"]) == (3, 2)
    for asked, version in ((None, 3), ("newest", 3), ("best", 2), ("1", 1), ("v1", 1)):
        params = {} if asked is None else {"version": asked}
        loaded = client.post(f"{API}/models/rsi_mlp/load", params=params)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["model_info"]["version"] == version
    assert_error(client.post(f"{API}/models/rsi_mlp/load?version=soon"), 400, "use newest, best")
    assert_error(
        client.post(f"{API}/models/rsi_mlp/load?version=7"), 404, "'rsi_mlp' has no version 7"
    )


# -- the whole journey -------------------------------------------------------------------------


def test_start_follow_performance_save_load_predict(
    client: TestClient[Any], synthetic_data_dir: Path, isolated_home: Path
) -> None:
    op_id = start(client, epochs=2)

    events = follow(client, op_id)
    progress = [e for e in events if e["event"] == "progress"]
    finals = [e for e in events if e["event"] == "final"]
    assert len(finals) == 1 and events[-1] is finals[0]
    sequences = [int(e["id"]) for e in progress]
    assert sequences == sorted(set(sequences)) and sequences
    assert [e["data"]["sequence"] for e in progress] == sequences
    percentages = [e["data"]["percentage"] for e in progress]
    assert percentages == sorted(percentages)
    assert progress[-1]["data"]["status"] == "completed"
    assert {e["data"]["phase"] for e in progress} >= {"load_data", "train"}
    final = finals[0]["data"]
    assert final["operation_id"] == op_id
    assert final["status"] == "completed"
    assert final["sequence"] == sequences[-1]
    assert final["error_message"] is None

    info = client.get(f"{API}/operations/{op_id}").json()["data"]
    assert info["status"] == "completed" and info["status_detail"] == "completed"
    assert info["progress"]["percentage"] == 100.0
    assert info["completed_at"] is not None

    perf = client.get(f"{API}/trainings/{op_id}/performance").json()
    assert perf["success"] is True and perf["task_id"] == op_id and perf["status"] == "completed"
    assert perf["training_metrics"]["epochs_completed"] == 2
    for key in ("final_train_loss", "final_val_loss", "final_train_accuracy", "early_stopped"):
        assert key in perf["training_metrics"]
    for key in ("test_loss", "test_accuracy", "precision", "recall", "f1_score"):
        assert isinstance(perf["test_metrics"][key], float)
    assert perf["model_info"]["model_size_bytes"] > 0

    history = client.get(f"{API}/operations/{op_id}/metrics").json()
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]

    saved = client.post(
        f"{API}/models/save", json={"task_id": op_id, "model_name": "api_model", "description": "d"}
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["model_name"] == "api_model" and body["task_id"] == op_id
    assert body["model_id"] == "api_model/v1" and body["model_size_mb"] > 0

    loaded = client.post(f"{API}/models/api_model/load").json()
    assert loaded["model_loaded"] is True and loaded["model_name"] == "api_model"

    listed = client.get(f"{API}/models").json()["models"]
    assert [m["model_name"] for m in listed if m["model_name"] == "api_model"] == ["api_model"]
    described = client.get(f"{API}/models/api_model").json()
    assert described["model_name"] == "api_model" and len(described["versions"]) == 1

    model = ModelStore(isolated_home / "models").load("api_model")
    for test_date in (None, "2020-03-02T10:00:00Z"):
        request: dict[str, Any] = {"model_name": "api_model", "symbol": "SYNTH", "timeframe": "1h"}
        if test_date:
            request["test_date"] = test_date
        answer = client.post(f"{API}/models/predict", json=request)
        assert answer.status_code == 200, answer.text
        served = answer.json()
        expected = predict_signal(
            model, "SYNTH", timeframe="1h", at=test_date, data_dir=synthetic_data_dir
        )
        assert served["test_date"] == expected.bar_time
        assert served["prediction"]["probabilities"] == expected.probabilities
        assert served["prediction"]["fuzzy_outputs"] == expected.fuzzy_outputs
        assert served["prediction"]["signal"] == expected.signal
        assert served["prediction"]["confidence"] == expected.confidence
        assert served["input_features"] == expected.input_features


def test_event_stream_resumes_after_last_event_id(client: TestClient[Any]) -> None:
    op_id = start(client, epochs=1)
    full = [int(e["id"]) for e in follow(client, op_id) if e["event"] == "progress"]
    assert len(full) >= 4
    for after in (full[0], full[len(full) // 2], full[-2]):
        events = follow(client, op_id, last_event_id=after)
        resumed = [int(e["id"]) for e in events if e["event"] == "progress"]
        assert resumed == [s for s in full if s > after]
        assert events[-1]["event"] == "final"
        assert events[-1]["data"]["status"] == "completed"
    at_end = follow(client, op_id, last_event_id=full[-1])
    assert [e["event"] for e in at_end] == ["final"]

    bad = client.get(f"{API}/operations/{op_id}/events", headers={"Last-Event-ID": "abc"})
    assert_error(bad, 400, "Last-Event-ID")


# -- v1 status mapping -------------------------------------------------------------------------


def _dead_owner() -> str:
    """An owner string naming a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:0"


def test_status_mapping_cancelling_and_interrupted(
    make_client: Callable[..., TestClient[Any]], isolated_home: Path
) -> None:
    store = OperationStore(isolated_home / "operations.db")
    store.create("op_lost_run", metadata={"symbol": "SYNTH"}, owner=_dead_owner())
    store.transition("op_lost_run", "running")
    store.create("op_stopping", metadata={"symbol": "SYNTH"}, owner="elsewhere:1:1")
    store.transition("op_stopping", "running")
    store.transition("op_stopping", "cancelling", cancellation_reason="user asked")
    store.close()

    client = make_client()  # its orchestrator marks the dead process's run interrupted

    lost = client.get(f"{API}/operations/op_lost_run").json()["data"]
    assert lost["status"] == "failed"
    assert lost["status_detail"] == "interrupted"
    assert lost["error_message"]
    assert lost["errors"] == [lost["error_message"]]
    assert lost["completed_at"] is not None

    stopping = client.get(f"{API}/operations/op_stopping").json()["data"]
    assert stopping["status"] == "running"
    assert stopping["status_detail"] == "cancelling"
    assert stopping["cancellation_reason"] == "user asked"

    def listed(status: str) -> dict[str, str]:
        rows = client.get(f"{API}/operations", params={"status": status}).json()["data"]
        return {r["operation_id"]: r["status_detail"] for r in rows}

    assert listed("failed") == {"op_lost_run": "interrupted"}
    assert listed("interrupted") == {"op_lost_run": "interrupted"}
    assert listed("running") == {"op_stopping": "cancelling"}
    assert listed("cancelling") == {"op_stopping": "cancelling"}
    page = client.get(f"{API}/operations", params={"active_only": "true"}).json()
    assert page["active_count"] == 1 and page["total_count"] == 1


# -- 404 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/operations/op_missing"),
        ("DELETE", "/operations/op_missing"),
        ("POST", "/operations/op_missing/cancel"),
        ("GET", "/operations/op_missing/events"),
        ("GET", "/operations/op_missing/metrics"),
        ("GET", "/operations/op_missing/result"),
        ("GET", "/trainings/op_missing/performance"),
    ],
)
def test_unknown_operation_is_404(client: TestClient[Any], method: str, path: str) -> None:
    assert_error(client.request(method, API + path), 404, "Operation not found: op_missing")


def test_unknown_operation_detail_is_exact(client: TestClient[Any]) -> None:
    body = assert_error(client.get(f"{API}/operations/op_missing"), 404)
    assert body["detail"] == "Operation not found: op_missing"
    save = client.post(f"{API}/models/save", json={"task_id": "op_missing", "model_name": "m"})
    assert_error(save, 404, "Operation not found: op_missing")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/models/no_such_model", None),
        ("POST", "/models/no_such_model/load", None),
        ("POST", "/models/predict", {"model_name": "no_such_model", "symbol": "SYNTH"}),
    ],
)
def test_unknown_model_is_404(
    client: TestClient[Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_error(client.request(method, API + path, json=body), 404, "no_such_model")


@pytest.mark.parametrize("path", ["/api/v1/nowhere", "/nowhere", "/api/v1/operations/a/b/c"])
def test_unknown_route_is_404_with_the_error_shape(client: TestClient[Any], path: str) -> None:
    assert_error(client.get(path), 404)


# -- 409 ---------------------------------------------------------------------------------------


def test_conflicts(client: TestClient[Any]) -> None:
    long_run = start(client, epochs=500, task_id="op_long_run")
    assert_error(client.get(f"{API}/trainings/{long_run}/performance"), 409, long_run, "completed")
    assert_error(
        client.post(f"{API}/models/save", json={"task_id": long_run, "model_name": "early"}), 409
    )
    duplicate = client.post(f"{API}/trainings/start", json={**START, "task_id": "op_long_run"})
    assert_error(duplicate, 409, "op_long_run")

    both = {"reason": "x", "force": True, "graceful": True}
    contradiction = client.request("DELETE", f"{API}/operations/{long_run}", json=both)
    assert_error(contradiction, 400, "force and graceful ask for opposite stops")
    cancel = client.request(
        "DELETE", f"{API}/operations/{long_run}", json={"reason": "test is done", "force": True}
    )
    assert cancel.status_code == 200, cancel.text
    data = cancel.json()["data"]
    assert data["operation_id"] == long_run
    assert data["status"] in ("cancelling", "cancelled")  # v1's words for DELETE
    assert data["status_detail"] in ("pending", "running", "cancelling", "cancelled")
    assert data["task_cancelled"] is True
    assert data["cancellation_reason"] == "test is done"
    final = next(e for e in follow(client, long_run) if e["event"] == "final")["data"]
    assert final["status"] == "cancelled"
    assert final["cancellation_reason"] == "test is done"

    again = client.delete(f"{API}/operations/{long_run}")
    assert_error(again, 409, "cannot be cancelled", "cancelled")
    again_post = client.post(f"{API}/operations/{long_run}/cancel")
    assert_error(again_post, 409, "cannot be cancelled", "cancelled")
    assert_error(client.get(f"{API}/trainings/{long_run}/performance"), 409, "cancelled")

    done = start(client, epochs=1)
    follow(client, done)
    assert_error(client.delete(f"{API}/operations/{done}"), 409, "cannot be cancelled", "completed")


# -- the result route --------------------------------------------------------------------------


def _result(response: httpx.Response) -> TrainingResult:
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=TrainingResult)


def test_result_route_answers_the_full_result_of_a_completed_run(client: TestClient[Any]) -> None:
    op_id = start(client, epochs=1, placebo_runs=1)
    follow(client, op_id)
    result = _result(client.get(f"{API}/operations/{op_id}/result"))
    assert result == client.app.state.orchestrator.result(op_id)
    assert result.session_info.operation_id == op_id
    assert result.training_metrics.epochs_completed == 1
    assert result.test_metrics is not None and result.artifacts.model_id is not None
    perf = client.get(f"{API}/trainings/{op_id}/performance").json()
    assert perf["test_metrics"]["test_accuracy"] == result.test_metrics.accuracy
    assert perf["model_info"]["model_id"] == result.artifacts.model_id

    # The honest comparison, on both routes: the start body's placebo_runs trained a placebo
    evaluation = result.evaluation
    assert evaluation is not None and evaluation.economics is not None
    assert perf["evaluation"] == msgspec.to_builtins(evaluation)
    assert perf["evaluation"]["headline"].startswith(
        f"test accuracy {result.test_metrics.accuracy:.3f} vs "
    )
    assert set(perf["evaluation"]["economics"]) >= {"model", "buy_and_hold", "cost_source"}
    assert evaluation.placebo_runs == 1 and evaluation.placebo is not None
    [placebo_id] = evaluation.placebo.operation_ids
    placebo = client.get(f"{API}/operations/{placebo_id}").json()["data"]
    assert placebo["status"] == "completed" and placebo["metadata"]["placebo_of"] == op_id
    assert perf["evaluation"]["placebo"]["scores"] == evaluation.placebo.scores


def _wait_until_running(client: TestClient[Any], op_id: str) -> None:
    """Until the run has left the queue (one cancelled while queued never trains)."""
    deadline = time.monotonic() + 60
    while client.get(f"{API}/operations/{op_id}").json()["data"]["status_detail"] == "pending":
        assert time.monotonic() < deadline, f"{op_id} never started"
        time.sleep(0.02)


def test_result_route_answers_a_partial_result_once_cancelled(client: TestClient[Any]) -> None:
    op_id = start(client, epochs=500, task_id="op_long_run")
    assert_error(client.get(f"{API}/operations/{op_id}/result"), 409, op_id, "ended")
    _wait_until_running(client, op_id)
    cancel = client.post(f"{API}/operations/{op_id}/cancel", json={"reason": "test is done"})
    assert cancel.status_code == 200, cancel.text
    follow(client, op_id)
    partial = _result(client.get(f"{API}/operations/{op_id}/result"))
    assert partial.training_metrics.stop_reason == "cancelled"
    assert partial.test_metrics is None and partial.artifacts.model_id is None
    assert partial.session_info.cancellation_reason == "test is done"


def test_result_route_for_failed_and_interrupted_runs(
    make_client: Callable[..., TestClient[Any]], isolated_home: Path
) -> None:
    store = OperationStore(isolated_home / "operations.db")
    store.create("op_failed_run", metadata={"symbol": "SYNTH"}, owner="elsewhere:1:1")
    store.transition("op_failed_run", "running")
    partial = make_result("op_failed_run", epochs_completed=2, stop_reason="failed")
    store.transition("op_failed_run", "failed", error_message="loss became NaN", result=partial)
    store.create("op_lost_run", metadata={"symbol": "SYNTH"}, owner=_dead_owner())
    store.transition("op_lost_run", "running")
    store.close()

    client = make_client()  # its orchestrator marks the dead process's run interrupted

    assert _result(client.get(f"{API}/operations/op_failed_run/result")) == partial
    lost = client.get(f"{API}/operations/op_lost_run/result")
    assert_error(lost, 409, "op_lost_run is interrupted", "no result")
    missing = client.get(f"{API}/operations/op_missing/result")
    assert_error(missing, 404, "Operation not found: op_missing")
    assert_error(client.get(f"{API}/operations/a..b/result"), 400, "operation id")
    schema = client.get("/schema/openapi.json").json()
    documented = schema["paths"]["/api/v1/operations/{operation_id}/result"]["get"]
    assert documented["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TrainingResult"
    }
    assert {"400", "401", "404", "409"} <= set(documented["responses"])


# -- 400 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeframes": ["1h"], "strategy_name": "small_test"}, "symbols"),
        ({**START, "symbols": []}, "symbols"),
        ({**START, "symbols": "SYNTH"}, "symbols"),
        ({**START, "symbols": ["a/b"]}, "symbols"),
        ({**START, "timeframes": []}, "timeframes"),
        ({**START, "strategy_name": ""}, "strategy_name"),
        ({**START, "mode": "cloud"}, "mode"),
        ({**START, "seed": -1}, "seed"),
        ({**START, "task_id": "../../etc"}, "task_id"),
        ({**START, "unexpected": 1}, "unexpected"),
        ({**START, "overrides": {"epochs": 0}}, "epochs"),
        ({**START, "timeframes": ["7q"]}, "timeframe"),
        ({**START, "placebo_runs": 51}, "placebo_runs"),
        ({**START, "placebo_runs": -1}, "placebo_runs"),
    ],
)
def test_bad_start_bodies_name_the_field(
    client: TestClient[Any], body: dict[str, Any], field: str
) -> None:
    assert_error(client.post(f"{API}/trainings/start", json=body), 400, field)
    assert client.get(f"{API}/operations").json()["total_count"] == 0  # nothing was stored


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "/etc/passwd", "..", "x/../../y"])
def test_strategy_names_are_not_paths(client: TestClient[Any], name: str) -> None:
    response = client.post(f"{API}/trainings/start", json={**START, "strategy_name": name})
    body = assert_error(response, 400)
    assert "Strategy file not found" not in body["detail"]


def test_missing_strategy_lists_the_places_searched(
    client: TestClient[Any], strategies_dir: Path
) -> None:
    response = client.post(f"{API}/trainings/start", json={**START, "strategy_name": "no_such"})
    body = assert_error(response, 400)
    assert body["detail"].startswith("Strategy file not found")
    assert str(strategies_dir / "no_such.yaml") in body["detail"]
    assert "examples" in body["detail"]


def test_performance_reports_inputs_that_never_fire(
    client: TestClient[Any], strategies_dir: Path
) -> None:
    dead = SMALL_STRATEGY.replace(
        "    overbought: {type: triangular, parameters: [60, 80, 100]}",
        "    overbought: {type: triangular, parameters: [60, 80, 100]}\n"
        "    impossible: {type: triangular, parameters: [150, 160, 170]}",
    )
    (strategies_dir / "dead_input.yaml").write_text(dead, encoding="utf-8")
    op_id = start(client, epochs=1, strategy_name="dead_input")
    follow(client, op_id)
    perf = client.get(f"{API}/trainings/{op_id}/performance").json()
    report = perf["feature_report"]
    assert report["dead"] == ["1h_rsi_impossible"]
    assert report["active_share"]["1h_rsi_impossible"] == 0.0
    assert 0.0 < report["active_share"]["1h_rsi_neutral"] <= 1.0


def test_performance_of_a_regression_run_has_its_own_block(
    client: TestClient[Any], strategies_dir: Path
) -> None:
    (strategies_dir / "returns.yaml").write_text(REGRESSION_STRATEGY, encoding="utf-8")
    op_id = start(client, epochs=1, strategy_name="returns")
    follow(client, op_id)
    perf = client.get(f"{API}/trainings/{op_id}/performance").json()
    assert perf["success"] is True and perf["test_metrics"] == {}
    block = perf["regression_metrics"]
    for split in ("validation", "test"):
        figures = block[split]
        assert figures["samples"] > 0 and figures["mae"] > 0 and figures["rmse"] >= figures["mae"]
        assert 0.0 <= figures["directional_accuracy"] <= 1.0
        assert figures["zero_baseline_mae"] > 0 and figures["mean_baseline_mae"] > 0
    result = client.get(f"{API}/operations/{op_id}/result").json()
    assert result["test_metrics"] is None and result["test_regression"]["samples"] > 0
    assert perf["evaluation"] == result["evaluation"]
    assert perf["evaluation"]["score_name"] == "mae"
    assert [b["name"] for b in perf["evaluation"]["baselines"]] in (
        ["zero", "train_mean"],
        ["train_mean", "zero"],
    )
    assert perf["evaluation"]["placebo_runs"] == 0
    assert perf["evaluation"]["placebo_note"].startswith("no placebo run")


def test_malformed_json_and_bad_queries(client: TestClient[Any]) -> None:
    raw = client.post(
        f"{API}/trainings/start",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_error(raw, 400)
    assert_error(client.get(f"{API}/operations", params={"status": "bogus"}), 400, "bogus")
    assert_error(client.get(f"{API}/operations", params={"limit": 0}), 400, "limit")
    assert_error(client.get(f"{API}/operations", params={"limit": 5000}), 400, "limit")
    assert_error(client.get(f"{API}/operations/a..b"), 400, "operation id")
    assert_error(client.post(f"{API}/models/a..b/load"), 400, "model name")
    assert_error(
        client.post(f"{API}/operations/op_x/resume", json={"epochs": 50, "seed": 7}),
        400,
        "body field(s) epochs, seed: a resumed run continues with",
    )
    assert_error(
        client.post(f"{API}/models/save", json={"task_id": "op_x", "model_name": "../up"}),
        400,
        "model name",
    )
    assert_error(
        client.post(f"{API}/models/predict", json={"model_name": "m", "symbol": "../SYNTH"}),
        400,
        "symbol",
    )
    assert_error(client.post(f"{API}/models/predict", json={"symbol": "SYNTH"}), 400, "model_name")
    assert_error(
        client.request("DELETE", f"{API}/operations/op_x", json={"reason": 5}), 400, "reason"
    )


def test_strategy_validation_returns_every_problem_with_its_path(client: TestClient[Any]) -> None:
    broken = (
        SMALL_STRATEGY.replace("period: 14", "period: -3")
        .replace("learning_rate: 0.005", "learning_rate: abc")
        .replace("type: mlp", "type: xx")
    )
    body = client.post(f"{API}/strategies/validate", json={"content": broken}).json()
    assert body["success"] is True and body["valid"] is False
    paths = {p["path"] for p in body["problems"]}
    assert paths >= {"indicators[0].period", "model.training.learning_rate", "model.type"}
    assert all(p["message"] and p["line"] for p in body["problems"])

    good = client.post(f"{API}/strategies/validate", json={"content": SMALL_STRATEGY}).json()
    notices = good.pop("notices")
    assert good == {
        "success": True,
        "valid": True,
        "name": "small_test",
        "problems": [],
        "layout": "v2",
    }
    # written for early v2 (no feature_id): its sma set reads close / SMA, the split was random
    assert {n["path"] for n in notices} == {"fuzzy_sets.sma", "training.data_split"}
    assert all(n["message"] and n["line"] for n in notices)

    not_yaml = client.post(f"{API}/strategies/validate", json={"content": "a: [unclosed"}).json()
    assert not_yaml["valid"] is False and "line 1" in not_yaml["problems"][0]["message"]

    unsafe = "!!python/object/apply:os.system ['true']"
    flagged = client.post(f"{API}/strategies/validate", json={"content": unsafe}).json()
    assert flagged["valid"] is False

    names = {s["name"] for s in client.get(f"{API}/strategies").json()["strategies"]}
    assert "small_test" in names


# -- 401 / 413 / 503 ---------------------------------------------------------------------------

GUARDED = [
    ("POST", "/trainings/start", START),
    ("GET", "/trainings/op_x/performance", None),
    ("GET", "/operations", None),
    ("GET", "/operations/op_x", None),
    ("DELETE", "/operations/op_x", None),
    ("POST", "/operations/op_x/cancel", None),
    ("GET", "/operations/op_x/metrics", None),
    ("GET", "/operations/op_x/events", None),
    ("GET", "/operations/op_x/result", None),
    ("GET", "/models", None),
    ("GET", "/models/m", None),
    ("POST", "/models/save", {"task_id": "op_x", "model_name": "m"}),
    ("POST", "/models/m/load", None),
    ("POST", "/models/predict", {"model_name": "m", "symbol": "SYNTH"}),
    ("GET", "/strategies", None),
    ("POST", "/strategies/validate", {"content": "name: x"}),
]


def test_token_guards_every_route_but_health(
    make_client: Callable[..., TestClient[Any]],
) -> None:
    client = make_client(api_token="s3cret-token-0123456789")
    for method, path, body in GUARDED:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret-token-0123456789"},
            {"Authorization": "Bearer"},
        ):
            response = client.request(method, API + path, json=body, headers=headers)
            assert_error(response, 401, "bearer token")
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.get(f"{API}/health").status_code == 200

    authorised = {"Authorization": "Bearer s3cret-token-0123456789"}
    assert client.get(f"{API}/operations", headers=authorised).status_code == 200
    assert client.get(f"{API}/strategies", headers=authorised).status_code == 200
    assert_error(client.get(f"{API}/operations/op_x", headers=authorised), 404)


def test_no_token_means_open(client: TestClient[Any]) -> None:
    assert client.get(f"{API}/operations").status_code == 200
    health = client.get(f"{API}/health").json()
    assert health["status"] == "ok" and health["mode"] == "local"


def test_body_over_the_limit_is_413(make_client: Callable[..., TestClient[Any]]) -> None:
    client = make_client(max_body_bytes=2_000)
    big = {"content": "# padding\n" * 500}
    assert_error(client.post(f"{API}/strategies/validate", json=big), 413, "too large")
    padded = {**START, "start_date": "x" * 3_000}
    assert_error(client.post(f"{API}/trainings/start", json=padded), 413)
    small = client.post(f"{API}/strategies/validate", json={"content": SMALL_STRATEGY})
    assert small.status_code == 200


def test_host_mode_without_a_host_is_503(client: TestClient[Any]) -> None:
    response = client.post(f"{API}/trainings/start", json={**START, "mode": "host"})
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False and "KTRDR_HOST_URL" in body["detail"]
    assert client.get(f"{API}/operations").json()["total_count"] == 0


def test_openapi_schema_lists_the_routes(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()
    for path in (
        "/api/v1/trainings/start",
        "/api/v1/operations/{operation_id}",
        "/api/v1/operations/{operation_id}/events",
        "/api/v1/models/predict",
        "/api/v1/health",
    ):
        assert path in schema["paths"]
