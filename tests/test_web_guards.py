"""Open mode against web pages, and the body-depth cap (:mod:`web.guards`), on both servers.

The attack: with no token, a page the user visits POSTs a training with ``Content-Type:
text/plain`` (a "simple" request, sent without asking), or reaches the server through a name
it rebinds to 127.0.0.1 and reads the answers. Each reproduction below must fail; programs on
the machine (our HTTP clients, curl, a notebook's kernel) keep working.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from litestar.testing import transport as litestar_transport

from api import create_app as create_api
from host import create_app as create_host
from ktrdr_lib.errors import StrategyError
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.http.host_client import HostClient
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.schemas.host import HOST_PREFIX, HostSessionRequest

LOCAL = "http://127.0.0.1:8000"
START = {"symbols": ["SYNTH"], "timeframes": ["1h"], "strategy_name": "no_such_strategy"}
TOKEN = "guards-test-token-0123456789"


def _client(app: Any) -> TestClient[Any]:
    client: TestClient[Any] = TestClient(app, base_url=LOCAL)
    client.__enter__()
    return client


@pytest.fixture
def api_app(synthetic_data_dir: Path) -> Any:
    """An open API (no token) that never trains: every start here names a missing strategy."""
    options = {"store": OperationStore(":memory:"), "data_dir": synthetic_data_dir}
    return create_api(orchestrator_options=options)


@pytest.fixture
def api(api_app: Any) -> Iterator[TestClient[Any]]:
    client = _client(api_app)
    yield client
    client.__exit__(None, None, None)


def _error(response: httpx.Response, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text
    detail: str = response.json()["detail"]
    for needle in needles:
        assert needle in detail, detail
    return detail


def _stored(api: TestClient[Any]) -> int:
    total: int = api.get("/api/v1/operations").json()["total_count"]
    return total


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None],
)
def test_a_page_cannot_post_a_simple_request(
    api: TestClient[Any], content_type: str | None
) -> None:
    # what <form> or fetch(..., {mode: "no-cors"}) sends without a preflight
    headers = {"content-type": content_type} if content_type else {}
    response = api.post("/api/v1/trainings/start", content=json.dumps(START), headers=headers)
    _error(response, 415, repr(content_type or "(none)"), "application/json")
    assert response.json()["error_type"] == "UnsupportedMediaTypeError"
    assert _stored(api) == 0


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "http://localhost:8000"]
)
def test_a_page_on_another_origin_is_refused(api: TestClient[Any], origin: str) -> None:
    headers = {"origin": origin}
    _error(api.post("/api/v1/trainings/start", json=START, headers=headers), 403, repr(origin))
    _error(api.get("/api/v1/operations", headers=headers), 403, "KTRDR_ALLOWED_ORIGINS")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_a_rebound_host_name_is_refused(api: TestClient[Any], host: str) -> None:
    # DNS rebinding: the page's own name now resolves to 127.0.0.1; the Host header keeps it
    for path in ("/api/v1/operations", "/api/v1/health", "/schema/openapi.json"):
        _error(api.get(path, headers={"host": host}), 403, repr(host), "KTRDR_ALLOWED_HOSTS")


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:8000", None),
        ("localhost:5002", "http://localhost:5002"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("127.0.0.2", "http://127.0.0.2"),
        ("LOCALHOST", None),
    ],
)
def test_programs_and_same_origin_pages_on_this_machine_pass(
    api: TestClient[Any], host: str, origin: str | None
) -> None:
    headers = {"host": host, **({"origin": origin} if origin else {})}
    response = api.post("/api/v1/trainings/start", json=START, headers=headers)
    _error(response, 400, "Strategy file not found")  # reached the service: not refused
    assert api.get("/api/v1/operations", headers=headers).status_code == 200


def test_allowed_hosts_and_origins_are_answered(synthetic_data_dir: Path) -> None:
    options = {"store": OperationStore(":memory:"), "data_dir": synthetic_data_dir}
    app = create_api(
        orchestrator_options=options,
        allowed_hosts=["ktrdr.lan"],
        allowed_origins=["https://dash.example/"],
    )
    client = _client(app)
    try:
        lan = {"host": "KTRDR.lan:8000"}
        assert client.get("/api/v1/operations", headers=lan).status_code == 200
        dash = {"origin": "https://dash.example"}
        assert client.get("/api/v1/operations", headers=dash).status_code == 200
        _error(client.get("/api/v1/operations", headers={"host": "other.lan"}), 403)
    finally:
        client.__exit__(None, None, None)


def test_with_a_token_the_checks_are_off(synthetic_data_dir: Path) -> None:
    # a page cannot send the token, so a proxy's host names and plain curl keep working
    options = {"store": OperationStore(":memory:"), "data_dir": synthetic_data_dir}
    client = _client(create_api(orchestrator_options=options, api_token=TOKEN))
    try:
        headers = {
            "authorization": f"Bearer {TOKEN}",
            "host": "api.example.org",
            "origin": "https://dash.example.org",
            "content-type": "application/x-www-form-urlencoded",  # curl -d's default
        }
        response = client.post(
            "/api/v1/trainings/start", content=json.dumps(START), headers=headers
        )
        _error(response, 400, "Strategy file not found")
    finally:
        client.__exit__(None, None, None)


def test_our_api_client_passes_open_mode(api: TestClient[Any]) -> None:
    class AppTransport(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = litestar_transport.TestClientTransport(api)

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return self.inner.handle_request(request)

    with ApiClient(LOCAL, transport=AppTransport()) as client:
        assert client.validate_strategy("name: x\n").valid is False  # a JSON POST
        assert client.list_operations().total_count == 0


def test_our_host_client_passes_an_insecure_host(tmp_path: Path, synthetic_data_dir: Path) -> None:
    app = create_host(insecure_no_token=True, home=tmp_path / "host", data_dir=synthetic_data_dir)
    host = _client(app)
    try:
        client = HostClient(LOCAL, transport=litestar_transport.TestClientTransport(host))
        assert client.health().status == "ok"
        request = HostSessionRequest(
            strategy_yaml="name: x\n", symbols=["SYNTH"], timeframes=["1h"]
        )
        with pytest.raises(StrategyError):  # the JSON body reached the host's validation
            client.start_session(request)
        plain = {"content-type": "text/plain"}
        _error(host.post(f"{HOST_PREFIX}/sessions", content="{}", headers=plain), 415)
        _error(host.get(f"{HOST_PREFIX}/sessions", headers={"host": "evil.example"}), 403)
        evil = {"origin": "http://evil.example"}
        _error(host.post(f"{HOST_PREFIX}/sessions", json={}, headers=evil), 403)
    finally:
        host.__exit__(None, None, None)


def test_a_deeply_nested_body_is_a_400_naming_the_cap(api: TestClient[Any]) -> None:
    # 5,000 levels raised RecursionError in the decoder: an HTTP 500
    deep = "[" * 5000 + "]" * 5000
    body = json.dumps({**START, "overrides": {"a": 0}}).replace("0}", deep + "}")
    headers = {"content-type": "application/json"}
    response = api.post("/api/v1/trainings/start", content=body, headers=headers)
    _error(response, 400, "deeper than 32 levels", "KTRDR_MAX_JSON_DEPTH")
    shallow = {**START, "overrides": {"model": {"training": {"epochs": 1}}}}
    _error(api.post("/api/v1/trainings/start", json=shallow), 400, "Strategy file not found")


def test_the_depth_cap_is_a_setting(monkeypatch: pytest.MonkeyPatch, api_app: Any) -> None:
    monkeypatch.setenv("KTRDR_MAX_JSON_DEPTH", "3")
    options = {"store": OperationStore(":memory:")}
    client = _client(create_api(orchestrator_options=options))
    try:
        body = {**START, "overrides": {"model": {"training": {"epochs": 1}}}}
        _error(client.post("/api/v1/trainings/start", json=body), 400, "deeper than 3 levels")
    finally:
        client.__exit__(None, None, None)
