"""The API's Ray front door without a Ray cluster: ``mode: ray`` and sweep requests that cannot
run answer a 400 that says what to set, bad fields a 400 naming them, sweep reads a 404 for
what is not a sweep; the sweep routes are guarded and described in the OpenAPI schema.

Runs with a real orchestrator through ``litestar.testing.TestClient``; nothing here starts Ray
(tests/integration/test_api_ray.py does).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from api import create_app
from api.server import serve
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.store import OperationStore

from .builders import make_result

API = "/api/v1"
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "small_test"}
SWEEP = {
    "strategy": "small_test",
    "space": {"model.training.learning_rate": [0.001, 0.01]},
    "epochs": 1,
}


def _no_server_error(response: httpx.Response) -> None:
    response.read()
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


def _client(data_dir: Path, **kwargs: Any) -> TestClient[Any]:
    app = create_app(orchestrator_options={"data_dir": data_dir}, **kwargs)
    client: TestClient[Any] = TestClient(app, base_url="http://127.0.0.1:8000")  # loopback: open
    client.__enter__()
    client.event_hooks = {"request": [], "response": [_no_server_error]}
    return client


@pytest.fixture
def client(synthetic_data_dir: Path, strategies_dir: Path) -> Iterator[TestClient[Any]]:
    client = _client(synthetic_data_dir)
    yield client
    client.__exit__(None, None, None)


def assert_error(response: httpx.Response, status: int, *needles: str) -> str:
    """The error body's detail, after checking its status, shape and ``needles``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["status_code"] == status
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return str(body["detail"])


def stored(client: TestClient[Any]) -> int:
    return int(client.get(f"{API}/operations").json()["total_count"])


# -- mode: ray on the training start ----------------------------------------------------------


def test_ray_mode_without_a_cluster_says_what_to_set(client: TestClient[Any]) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    response = client.post(f"{API}/trainings/start", json={**START, "mode": "ray"})
    assert_error(response, 400, "no Ray cluster is configured", "KTRDR_RAY_ADDRESS", "'local'")
    sweep = client.post(f"{API}/sweeps", json=SWEEP)
    assert_error(sweep, 400, "KTRDR_RAY_ADDRESS")
    assert stored(client) == 0


def test_ray_mode_without_the_extra_names_the_extra(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    response = client.post(f"{API}/trainings/start", json={**START, "mode": "ray"})
    assert_error(response, 400, "install the ray extra", "ktrdr-lib[ray]")
    assert_error(client.post(f"{API}/sweeps", json=SWEEP), 400, "ray extra")
    assert stored(client) == 0


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ({"num_cpus": 2}, ("num_cpus", "mode 'ray' only", "'local'")),
        ({"num_gpus": 1, "mode": "local"}, ("num_gpus", "mode 'ray' only")),
        ({"num_gpus": 0.5, "mode": "host"}, ("num_gpus", "(this run is 'host')")),
        ({"num_cpus": -1, "mode": "ray"}, ("num_cpus", ">= 0")),
        ({"num_gpus": "one", "mode": "ray"}, ("num_gpus", "Expected `float | null`")),
        ({"mode": "cluster"}, ("body mode", "'cluster'", "use one of 'host', 'local', 'ray'")),
    ],
)
def test_ray_resources_are_checked_and_belong_to_ray_mode(
    client: TestClient[Any], extra: dict[str, Any], needles: tuple[str, ...]
) -> None:
    response = client.post(f"{API}/trainings/start", json={**START, **extra})
    assert_error(response, 400, *needles)
    assert stored(client) == 0


def test_serving_with_a_ray_address_but_without_ray_names_the_extra_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setenv("KTRDR_RAY_ADDRESS", "local")
    with pytest.raises(ConfigError, match=r"install the ray extra"):
        serve(port=0, local_runner="thread")


# -- sweep bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({"space": SWEEP["space"]}, ("strategy",)),
        ({"strategy": "small_test"}, ("space",)),
        ({**SWEEP, "space": ["lr", 0.1]}, ("space", "Expected `object`")),
        ({**SWEEP, "space": {"epochs": 3}}, ("body space", "Expected `array`")),
        ({**SWEEP, "search": "bayes"}, ("body search", "use one of 'grid', 'random'")),
        ({**SWEEP, "early_stop": "hyperband"}, ("body early_stop", "use one of 'asha'")),
        ({**SWEEP, "mode": "ray"}, ("body mode", "'ray'", "use one of 'max', 'min'")),
        ({**SWEEP, "unexpected": 1}, ("unexpected",)),
        ({**SWEEP, "strategy": "../etc/passwd"}, ("Strategy name", "cannot be a path")),
        ({**SWEEP, "strategy": "no_such"}, ("Strategy file not found",)),
        ({**SWEEP, "best_model_name": "../x"}, ("best_model_name", "not a valid name")),
    ],
)
def test_bad_sweep_bodies_name_the_field(
    client: TestClient[Any], body: dict[str, Any], needles: tuple[str, ...]
) -> None:
    assert_error(client.post(f"{API}/sweeps", json=body), 400, *needles)
    assert stored(client) == 0


# -- sweep reads ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/events"])
def test_sweep_reads_answer_404_for_what_is_not_a_sweep(
    synthetic_data_dir: Path, strategies_dir: Path, isolated_home: Path, suffix: str
) -> None:
    store = OperationStore(isolated_home / "operations.db")
    store.create("op_training_done", metadata={"symbol": "SYNTH"})
    store.transition("op_training_done", "running")
    store.transition("op_training_done", "completed", result=make_result("op_training_done"))
    store.close()
    client = _client(synthetic_data_dir)
    try:
        missing = client.get(f"{API}/sweeps/op_sweep_missing{suffix}")
        assert assert_error(missing, 404) == "Sweep not found: op_sweep_missing"
        training = client.get(f"{API}/sweeps/op_training_done{suffix}")
        assert_error(training, 404, "is a training operation", "GET /operations/op_training_done")
        assert_error(client.get(f"{API}/sweeps/a..b{suffix}"), 400, "sweep id", "not a valid")
    finally:
        client.__exit__(None, None, None)


def test_sweep_routes_need_the_token(synthetic_data_dir: Path, strategies_dir: Path) -> None:
    client = _client(synthetic_data_dir, api_token="s3cret-token-0123456789")
    try:
        for method, path, body in (
            ("POST", "/sweeps", SWEEP),
            ("GET", "/sweeps/op_sweep_x", None),
            ("GET", "/sweeps/op_sweep_x/events", None),
        ):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = client.request(method, API + path, json=body, headers=headers)
                assert_error(response, 401, "bearer token")
            authorised = {"Authorization": "Bearer s3cret-token-0123456789"}
            response = client.request(method, API + path, json=body, headers=authorised)
            assert response.status_code in (400, 404), response.text  # past the guard
    finally:
        client.__exit__(None, None, None)


def test_openapi_describes_the_sweep_routes(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    start = paths["/api/v1/sweeps"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SweepRequest"
    )
    created = start["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/SweepSnapshot")
    assert {"400", "401", "404"} <= set(start["responses"])
    one = paths["/api/v1/sweeps/{sweep_id}"]["get"]
    assert one["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SweepSnapshot"
    )
    events = paths["/api/v1/sweeps/{sweep_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "`final`" in events["description"]
    request = schema["components"]["schemas"]["SweepRequest"]["properties"]
    for field in ("strategy", "space", "metric", "search", "early_stop", "num_cpus", "num_gpus"):
        assert field in request, field
    start_body = schema["components"]["schemas"]["TrainingStartRequest"]["properties"]
    assert "ray" in start_body["mode"]["enum"]
    assert {"num_cpus", "num_gpus"} <= set(start_body)
