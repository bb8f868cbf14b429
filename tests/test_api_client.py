"""ApiClient: every answer decoded into its Struct, every error answer into the project's error.

The server is an ``httpx.MockTransport``; the live server and the event stream are covered in
``tests/integration/test_cli_api.py``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.errors import KtrdrError, NotFoundError, StrategyError
from ktrdr_lib.http.client import ApiAuthError, ApiClient
from ktrdr_lib.schemas.strategies import StrategyListing
from ktrdr_lib.schemas.v1 import ModelListItem, OperationInfo, TrainingStartResponse
from tests.builders import make_result

INFO: dict[str, Any] = {
    "operation_id": "op_1",
    "operation_type": "training",
    "status": "running",
    "status_detail": "cancelling",
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": None,
    "completed_at": None,
    "progress": {
        "percentage": 5.0,
        "current_step": "Loading",
        "steps_completed": 0,
        "steps_total": 3,
        "items_processed": 0,
        "items_total": 0,
        "current_item": None,
        "context": {"operation_id": "op_1", "phase": "load_data"},
    },
    "metadata": {"mode": "local"},
    "error_message": None,
    "warnings": [],
    "errors": [],
    "result_summary": None,
    "a_field_added_later": True,
}


def _client(routes: dict[str, Any]) -> tuple[ApiClient, list[Any]]:
    """A client whose server answers ``routes[path]`` (a body, or a ``(status, body)`` pair)."""
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content) if request.content else None)
        answer = routes[request.url.path]
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    client = ApiClient("http://api.test", transport=httpx.MockTransport(handler))
    return client, sent


def test_answers_are_structs() -> None:
    start = {
        "success": True,
        "task_id": "op_1",
        "status": "training_started",
        "message": "started",
        "symbols": ["SYNTH"],
        "timeframes": ["1h"],
        "strategy_name": "demo",
        "estimated_duration_minutes": 1,
    }
    model = {
        "model_id": "demo/v1",
        "model_name": "demo",
        "symbol": "SYNTH",
        "timeframe": "1h",
        "created_at": "2026-01-01T00:00:00Z",
        "training_accuracy": 0.6,
        "test_accuracy": None,
        "description": None,
        "version": 1,
    }
    listing = {
        "name": "demo",
        "path": "/s/demo.yaml",
        "description": None,
        "symbols": ["SYNTH"],
        "timeframes": ["1h"],
        "valid": True,
        "problems": [],
    }
    result = make_result("op_1", epochs_completed=2)
    client, sent = _client(
        {
            "/api/v1/trainings/start": start,
            "/api/v1/operations/op_1": {"success": True, "data": INFO},
            "/api/v1/operations/op_1/result": msgspec.to_builtins(result),
            "/api/v1/models": {"success": True, "models": [model]},
            "/api/v1/strategies": {"success": True, "strategies": [listing]},
        }
    )
    started = client.start_training("demo", symbols=["SYNTH"], timeframes=["1h"], seed=7)
    assert isinstance(started, TrainingStartResponse) and started.task_id == "op_1"
    # only the fields given are sent
    assert sent[-1] == {
        "strategy_name": "demo",
        "symbols": ["SYNTH"],
        "timeframes": ["1h"],
        "seed": 7,
    }
    client.start_training("demo", symbols=["SYNTH"], timeframes=["1h"], placebo_runs=3)
    assert sent[-1]["placebo_runs"] == 3
    info = client.get_operation("op_1")
    assert isinstance(info, OperationInfo) and info.status_detail == "cancelling"
    assert info.progress.context["phase"] == "load_data"
    assert client.result("op_1") == result
    assert client.list_models() == [ModelListItem(**model)]
    assert client.strategies() == [StrategyListing(**listing)]


def test_answers_of_another_shape_are_errors() -> None:
    client, _ = _client(
        {
            "/api/v1/operations/op_1": {"success": True, "data": {"operation_id": "op_1"}},
            "/api/v1/models": b"<html>not an API</html>",
            "/api/v1/strategies": {"success": True, "strategies": [{"name": "demo"}]},
        }
    )
    with pytest.raises(KtrdrError, match="with an unexpected body"):
        client.get_operation("op_1")
    with pytest.raises(KtrdrError, match="without JSON; is that URL a KTRDR API"):
        client.list_models()
    with pytest.raises(KtrdrError, match=r"unexpected body .*strategies\[0\]"):
        client.strategies()


def test_error_answers_become_the_projects_errors() -> None:
    problem = {"path": "indicators[0].period", "message": "must be >= 1", "value": "0"}
    client, _ = _client(
        {
            "/api/v1/operations/op_x": (
                404,
                {"status_code": 404, "detail": "Operation not found: op_x", "error_type": "x"},
            ),
            "/api/v1/strategies/validate": (
                400,
                {
                    "status_code": 400,
                    "detail": "strategy is invalid",
                    "error_type": "StrategyError",
                    "problems": [problem],
                },
            ),
            "/api/v1/models": (401, {"status_code": 401, "detail": "No token.", "error_type": "x"}),
        }
    )
    with pytest.raises(NotFoundError, match="Operation not found: op_x"):
        client.get_operation("op_x")
    with pytest.raises(StrategyError) as caught:
        client.validate_strategy("name: x\n", file_name="x.yaml")
    assert caught.value.problems[0].path == "indicators[0].period"
    with pytest.raises(ApiAuthError, match=r"No token \(set KTRDR_API_TOKEN"):
        client.list_models()
