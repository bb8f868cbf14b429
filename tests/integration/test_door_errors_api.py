"""Errors at the door over HTTP: a start for data that is not there answers 400 with the
ErrorBody, naming what is missing and what exists, and stores no operation — on the API's v1
start route and on a training host's session start (real servers on loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.runners.host import HostTrainingRunner
from tests.conftest import SMALL_STRATEGY
from tests.integration.conftest import LiveServer, start_server

TOKEN = "door-s3cret-0123456789"
LATE = {"start_date": "2030-01-01", "end_date": "2031-01-01"}
SPAN = "SYNTH 1h has bars from 2020-01-01 to 2020-05-04T23:00:00Z"
NONE_THERE = f"{SPAN}; the requested range 2030-01-01..2031-01-01 has none — widen it"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == 400 and body["success"] is False
    assert "Traceback" not in response.text
    return body


@pytest.fixture
def api(live_api: Callable[..., LiveServer], strategies_dir: Path) -> Iterator[httpx.Client]:
    server = live_api()
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    ("request_fields", "error_type", "expected"),
    [
        ({"symbols": ["SYNTH"], **LATE}, "DataError", [NONE_THERE]),
        (
            {"symbols": ["MSFT"]},
            "DataError",
            ["no 1h data for MSFT in", "symbols with 1h data: SYNTH, SYNTH2, TINY"],
        ),
        (
            {"symbols": ["SYNTH"], "timeframes": ["1h", "1d"], "end_date": "2019-12-31"},
            "DataError",
            ["2 series have no or too few bars in the requested range up to 2019-12-31"],
        ),
        (
            {"symbols": ["SYNTH"], "start_date": "2020-03-01", "end_date": "2020-03-01T05:00"},
            "DataError",
            ["holds at most 6 of them, and training needs at least 10 1h bars"],
        ),
        ({"symbols": ["SYNTH"], "start_date": "next tuesday"}, "ConfigError", ["is not a date"]),
    ],
)
def test_the_v1_start_answers_400_and_stores_nothing(
    api: httpx.Client, request_fields: dict[str, Any], error_type: str, expected: list[str]
) -> None:
    response = api.post(
        "/trainings/start",
        json={"strategy_name": "small_test", "timeframes": ["1h"], **request_fields},
    )
    body = _error_body(response)
    assert body["error_type"] == error_type
    for part in expected:
        assert part in body["detail"]
    listed = api.get("/operations")
    assert listed.status_code == 200 and listed.json()["total_count"] == 0


def test_a_start_inside_the_data_is_still_accepted(api: httpx.Client) -> None:
    response = api.post(
        "/trainings/start",
        json={
            "strategy_name": "small_test",
            "symbols": ["SYNTH"],
            "timeframes": ["1h"],
            "start_date": "2020-01-15",
            "end_date": "2020-04-01",
            "overrides": {"epochs": 1},
        },
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    assert api.get("/operations").json()["total_count"] == 1
    api.delete(f"/operations/{task_id}")


@pytest.fixture
def training_host(synthetic_data_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    from host import create_app

    live = start_server(
        create_app(token=TOKEN, home=tmp_path / "host_home", data_dir=synthetic_data_dir)
    )
    yield live
    live.stop()


def test_the_hosts_session_start_answers_400_and_keeps_no_session(
    training_host: LiveServer,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=training_host.url + "/host/v1", headers=headers) as host:
        response = host.post(
            "/sessions",
            json={"strategy_yaml": SMALL_STRATEGY, "symbols": ["SYNTH"], "timeframes": ["1h"]}
            | LATE,
        )
        body = _error_body(response)
        assert body["error_type"] == "DataError" and NONE_THERE in body["detail"]
        assert host.get("/sessions").json()["sessions"] == []


@pytest.mark.usefixtures("strategies_dir")
def test_a_host_run_fails_with_the_hosts_door_error(
    training_host: LiveServer, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    # Host mode reads data on the host: the local side stores the run, the host refuses it.
    orch = TrainingOrchestrator(
        home=tmp_path / "local_home",
        host_runner=HostTrainingRunner(training_host.url, TOKEN, poll_interval=0.1),
        data_dir=synthetic_data_dir,
    )
    try:
        record = orch.start_training(
            "small_test", mode="host", start_date="2030-01-01", end_date="2031-01-01"
        ).wait(60)
    finally:
        orch.shutdown(cancel_running=True, timeout=30)
    assert record.status == "failed"
    assert "answered POST /sessions with 400" in (record.error_message or "")
    assert NONE_THERE in (record.error_message or "")
