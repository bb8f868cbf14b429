"""Detailed analytics through the front doors: ``GET /api/v1/trainings/{id}/analytics`` on a
real server on loopback (200, 404 when none were recorded, 409 while the run has not ended),
and ``ktrdr operations show OP --analytics`` over the local and the API backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.schemas.errors import ErrorBody
from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.slow  # real trainings

FINAL = ("completed", "failed", "cancelled")


def _start(live: LiveServer, epochs: int, **fields: Any) -> str:
    response = httpx.post(
        f"{live.url}/api/v1/trainings/start",
        json={
            "strategy_name": "small_test",
            "symbols": ["SYNTH"],
            "timeframes": ["1h"],
            "overrides": {"epochs": epochs},
            **fields,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def _wait_final(live: LiveServer, op_id: str) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        response = httpx.get(f"{live.url}/api/v1/operations/{op_id}", timeout=30)
        status = str(response.json()["data"]["status"])
        if status in FINAL:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{op_id} did not end")


def _analytics(live: LiveServer, op_id: str) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/trainings/{op_id}/analytics", timeout=30)


def test_the_api_serves_recorded_analytics_and_says_why_when_there_are_none(
    live_api: Callable[..., LiveServer],
    strategies_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = live_api()
    recorded = _start(live, 2, detailed_analytics=True)
    plain = _start(live, 1)
    assert _wait_final(live, recorded) == "completed"
    assert _wait_final(live, plain) == "completed"

    response = _analytics(live, recorded)
    assert response.status_code == 200, response.text
    analytics = msgspec.json.decode(response.content, type=TrainingAnalytics)
    assert [record.epoch for record in analytics.epochs] == [1, 2]
    assert analytics.classes == ["BUY", "HOLD", "SELL"]
    result = msgspec.json.decode(
        httpx.get(f"{live.url}/api/v1/operations/{recorded}/result", timeout=30).content,
        type=TrainingResult,
    )
    assert result.analytics == analytics
    with ApiClient(live.url) as client:
        assert client.analytics(recorded) == analytics

    missing = _analytics(live, plain)
    assert missing.status_code == 404
    body = msgspec.json.decode(missing.content, type=ErrorBody)
    assert body.status_code == 404 and "recorded no detailed analytics" in body.detail
    assert "--analytics" in body.detail
    assert _analytics(live, "op_no_such_operation").status_code == 404

    # the CLI over the API: a table, and the record with --json
    capsys.readouterr()
    assert main(["operations", "show", recorded, "--analytics", "--api", live.url]) == 0
    out = capsys.readouterr().out
    assert "analytics   classification, stopped: max_epochs" in out
    assert "F1 BUY" in out and "parameters at epoch 2:" in out and "0.weight" in out
    assert "fuzzy inputs" in out and "1h_rsi_oversold" in out
    assert main(["operations", "show", recorded, "--analytics", "--json", "--api", live.url]) == 0
    shown = msgspec.json.decode(capsys.readouterr().out, type=TrainingAnalytics)
    assert shown == analytics
    assert main(["operations", "show", plain, "--analytics", "--api", live.url]) == 1
    assert "recorded no detailed analytics" in capsys.readouterr().err


def test_the_api_answers_409_until_the_run_ends(
    live_api: Callable[..., LiveServer], strategies_dir: Path
) -> None:
    live = live_api()
    op_id = _start(live, 500, detailed_analytics=True)
    early = _analytics(live, op_id)  # pending or running: not final either way
    assert early.status_code == 409, early.text
    assert "once it has completed" in msgspec.json.decode(early.content, type=ErrorBody).detail
    cancel = httpx.post(f"{live.url}/api/v1/operations/{op_id}/cancel", timeout=30)
    assert cancel.status_code == 200, cancel.text
    assert _wait_final(live, op_id) == "cancelled"
    after = _analytics(live, op_id)
    assert after.status_code == 404
    assert "ended cancelled" in msgspec.json.decode(after.content, type=ErrorBody).detail


def test_operations_show_analytics_on_a_local_run(
    small_strategy_file: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = ["train", str(small_strategy_file), "--data-dir", str(synthetic_data_dir)]
    assert main([*train, "--epochs", "2", "--analytics", "--json"]) == 0
    result = msgspec.json.decode(capsys.readouterr().out, type=TrainingResult)
    assert result.analytics is not None
    op_id = result.session_info.operation_id

    assert main(["operations", "show", op_id, "--analytics"]) == 0
    out = capsys.readouterr().out
    assert f"operation   {op_id}" in out  # the operation first, then its analytics
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "lr"])
    assert [line.split()[0] for line in lines[header + 1 : header + 3]] == ["1", "2"]
    assert main(["operations", "show", op_id, "--analytics", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"][1]["epoch"] == 2

    assert main([*train, "--epochs", "1", "--json"]) == 0
    plain = msgspec.json.decode(capsys.readouterr().out, type=TrainingResult)
    assert plain.analytics is None
    assert main(["operations", "show", plain.session_info.operation_id, "--analytics"]) == 1
    assert "error: " in capsys.readouterr().err
