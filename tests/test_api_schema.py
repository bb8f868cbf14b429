"""Property-based tests of the HTTP API against its own OpenAPI schema (schemathesis).

The schema is read from the app (``/schema/openapi.json``) and every operation in it is called
with generated requests, in-process through ASGI. Each response must not be a server error,
must match the response schema documented for its status code and must carry the documented
content type.

Generated path parameters and bodies are random names, which only ever reach the "not found"
and "invalid" branches. So that the success branches are checked too, hooks swap in, for part
of the examples, the id of a real completed training, the name of a model it saved, and a
start request for the small test strategy (1 epoch, on the synthetic data). Every call is
counted per route, and the last test asserts each route was called and where a success answer
was expected, that one came back.

Deterministic (``derandomize``) and bounded (``max_examples``); trainings the fuzzing starts
are one epoch long and cancelled when the module ends.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.conftest import SMALL_STRATEGY

MAX_EXAMPLES = 25
KNOWN_MODEL = "fuzz_model"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

# api/ handlers declare dependencies, path/query parameters and ``data`` in the inferred style
# that Litestar 2.25 deprecates at app construction (fix: ``NamedDependency[...]``,
# ``FromPath[...]``/``FromQuery[...]``, ``JSONBody[...]``); not what this module tests.
pytestmark = pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")

# (method, path template) -> status codes answered to that method; filled by after_call.
CALLS: dict[tuple[str, str], collections.Counter[int]] = collections.defaultdict(
    collections.Counter
)
# Operations whose fuzz test ran in this session (so the coverage test knows what to expect).
FUZZED: set[tuple[str, str]] = set()
# Routes where the hooks inject real ids/bodies: some answer must be a success.
MUST_SUCCEED = {
    ("GET", "/api/v1/operations"),
    ("GET", "/api/v1/operations/{operation_id}"),
    ("GET", "/api/v1/operations/{operation_id}/metrics"),
    ("GET", "/api/v1/operations/{operation_id}/events"),
    ("GET", "/api/v1/operations/{operation_id}/result"),
    ("GET", "/api/v1/trainings/{task_id}/performance"),
    ("POST", "/api/v1/trainings/start"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/models/{model_name}"),
    ("POST", "/api/v1/models/{model_name}/load"),
    ("POST", "/api/v1/models/predict"),
    ("POST", "/api/v1/models/save"),
    ("GET", "/api/v1/strategies"),
    ("POST", "/api/v1/strategies/validate"),
    ("GET", "/api/v1/health"),
}


class AppSlot:
    """The ASGI app schemathesis calls: forwards to the app the ``fuzz_target`` fixture
    builds (schemathesis.pytest.from_fixture, the lazy loader, reads ``Function._nodeid``,
    which pytest 9 no longer has, so the schema is loaded at import, before any fixture)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            raise RuntimeError("the fuzz_target fixture has not built the app")
        await self.app(scope, receive, send)


def _openapi() -> dict[str, Any]:
    from api import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see pytestmark
        # Never started: only its schema is read.
        document: dict[str, Any] = create_app(api_token=None).openapi_schema.to_schema()
    return document


SLOT = AppSlot()
schema = schemathesis.openapi.from_dict(_openapi())
schema.app = SLOT
schema.location = "/schema/openapi.json"
TARGET: dict[str, str] = {}  # "operation_id": a completed training, set by fuzz_target
STARTED: list[str] = []  # trainings POST /trainings/start started, oldest first


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path
) -> Iterator[str]:
    """Give the app an orchestrator on a temp KTRDR_HOME and the synthetic data, with one
    completed 1-epoch training and its model saved as ``KNOWN_MODEL``; yields the training's
    operation id."""
    from ktrdr_lib.models.store import ModelStore
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.pipeline.context import build_training_context

    home = tmp_path_factory.mktemp("fuzz_home")
    strategy = home / "small_test.yaml"
    strategy.write_text(SMALL_STRATEGY, encoding="utf-8")
    orchestrator = TrainingOrchestrator(
        home=home, data_dir=synthetic_data_dir, max_concurrent=1, progress_interval=0.05
    )
    context = build_training_context(
        strategy, epochs=1, data_dir=synthetic_data_dir, models_dir=orchestrator.models_dir
    )
    handle = orchestrator.submit(context)
    record = handle.wait(timeout=120)
    assert record.status == "completed", record.error_message
    model_id = handle.result().artifacts.model_id
    assert model_id is not None
    name, _, version = model_id.rpartition("/v")
    ModelStore(orchestrator.models_dir).copy_as((name, int(version)), KNOWN_MODEL)

    from api import create_app

    # Passed in, so the app never shuts it down: schemathesis ends the app's lifespan after
    # every test item and starts it again on the next request.
    # schemathesis names its ASGI app "testserver"; without a token the API answers only
    # this machine's names and those allowed (web.guards).
    SLOT.app = create_app(
        orchestrator,
        api_token=None,
        sse_poll_s=0.02,
        sse_heartbeat_s=0.2,
        allowed_hosts=["testserver"],
    )
    TARGET["operation_id"] = handle.operation_id
    yield handle.operation_id
    SLOT.app = None
    orchestrator.shutdown(cancel_running=True, timeout=60)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the examples address the real training / model instead of a random name."""
    if not isinstance(path_parameters, dict) or not path_parameters:
        return st.just(path_parameters)
    real = dict(path_parameters)
    for key in ("operation_id", "task_id"):
        if key in real:
            real[key] = TARGET["operation_id"]
    if "model_name" in real:
        real["model_name"] = KNOWN_MODEL
    choices = [path_parameters, real]
    if STARTED and context.operation.method.upper() in ("DELETE", "POST"):
        # cancel routes: also the latest training the fuzzing started (pending, running or
        # already final: each has its documented answer)
        choices.append({**path_parameters, "operation_id": STARTED[-1]})
    return st.sampled_from(choices)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half the examples of the POST routes send a request that can succeed."""
    path = context.operation.path
    real: dict[str, Any] | None = None
    if path.endswith("/trainings/start"):
        real = {
            "strategy_name": "small_test",
            "symbols": ["SYNTH"],
            "timeframes": ["1h"],
            "overrides": {"epochs": 1},
        }
    elif path.endswith("/models/save"):
        real = {"task_id": TARGET["operation_id"], "model_name": KNOWN_MODEL}
    elif path.endswith("/models/predict"):
        real = {"model_name": KNOWN_MODEL, "symbol": "SYNTH", "timeframe": "1h"}
    elif path.endswith("/strategies/validate"):
        real = {"content": SMALL_STRATEGY}
    if real is None:
        return st.just(body)
    # The real request first: derandomized generation starts from a strategy's simplest
    # choice, so every route gets its success case whatever the shape of its schema.
    return st.sampled_from([real, body])


def _route(case: Any) -> tuple[str, str]:
    # The operation's own method: the coverage phase also sends other methods to its path.
    return (case.operation.method.upper(), case.operation.path)


@schema.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Count every answer per route and status."""
    if case.method.upper() != case.operation.method.upper():
        return  # the coverage phase also tries other methods (405) and OPTIONS (204)
    CALLS[_route(case)][response.status_code] += 1
    if case.operation.path.endswith("/trainings/start") and response.status_code == 200:
        STARTED.append(response.json()["task_id"])


@schemathesis.check
def error_body_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is an ErrorBody (the schema documents only 400, in Litestar's
    validation shape, so response_schema_conformance does not see 404, 405, 409 or 413)."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert body["success"] is False, body
    assert body["status_code"] == response.status_code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["error_type"], str) and body["error_type"], body
    return True


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(case: Any, fuzz_target: str, strategies_dir: Path) -> None:
    """No 5xx, responses match the documented schema and content type."""
    FUZZED.add(_route(case))
    case.call_and_validate(checks=[*CHECKS, error_body_shape])


def test_every_route_was_exercised() -> None:
    """Each fuzzed route was called, and the ones given real ids answered a success."""
    if not FUZZED:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    for route in sorted(CALLS):
        print(f"{route[0]:<7} {route[1]:<45} {dict(sorted(CALLS[route].items()))}")
    every_route = {
        (method.upper(), path)
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
    }
    assert every_route == FUZZED, f"not fuzzed: {every_route - FUZZED}"
    assert set(CALLS) >= FUZZED, f"never called: {FUZZED - set(CALLS)}"
    for route in sorted(FUZZED):
        statuses = CALLS[route]
        spec = schema.raw_schema["paths"][route[1]][route[0].lower()]
        # a route without inputs has only a handful of distinct requests
        least = 10 if spec.get("parameters") or spec.get("requestBody") else 1
        assert sum(statuses.values()) >= least, f"{route} called only {dict(statuses)}"
        if route in MUST_SUCCEED:
            ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
            assert ok > 0, f"{route} never succeeded: {dict(statuses)}"
