"""HostTrainingRunner and HostClient against scripted hosts (httpx.MockTransport).

A fake clock moves only when the runner sleeps, so back-off and retry budgets are checked
exactly and the tests run instantly.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.errors import (
    DataError,
    HostUnavailableError,
    OperationCancelled,
    StrategyError,
    TrainingError,
)
from ktrdr_lib.http.host_client import HostAuthError, HostProtocolError, HostUnreachableError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.owner import process_owner
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.pipeline.context import TrainingOperationContext, build_training_context
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.runners.host import HostTrainingRunner
from ktrdr_lib.schemas.host import HostSessionRequest, HostStopRequest
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    DataSummary,
    ResourceUsage,
    SessionInfo,
    TrainingMetrics,
    TrainingResult,
)

URL = "http://host.test:5002"
SID = "op_training_20260101_000000_abcdef01"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock that moves only when ``sleep`` is called; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class ScriptedHost:
    """A host whose answers the test scripts; records every request it sees.

    ``statuses`` are answered to successive ``GET /sessions/{id}`` calls (the last one
    repeats); each item is a status name, an ``httpx.Response``, or an exception to raise.
    """

    def __init__(self, statuses: list[Any], **routes: Any) -> None:
        self.statuses = list(statuses)
        self.routes = routes
        self.requests: list[httpx.Request] = []
        self.sequence = 0
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/host/v1")
        key = f"{request.method} {path}"
        for pattern, answer in self.routes.items():
            method, _, suffix = pattern.partition("_")
            if request.method == method.upper() and path.endswith(suffix.replace("__", "/")):
                return _answer(answer, request)
        if key == "POST /sessions":
            return httpx.Response(201, json={"session_id": SID, "status": "pending"})
        if key == f"GET /sessions/{SID}":
            self.polls += 1
            item = self.statuses[min(self.polls - 1, len(self.statuses) - 1)]
            if isinstance(item, str):
                self.sequence += 1
                return httpx.Response(200, json=status_body(item, sequence=self.sequence))
            return _answer(item, request)
        if key == f"POST /sessions/{SID}/stop":
            return httpx.Response(202, json=status_body("cancelling", sequence=self.sequence))
        if key == f"GET /sessions/{SID}/metrics":
            return httpx.Response(200, json={"operation_id": SID, "epochs": [], "diagnostics": {}})
        if key == f"GET /sessions/{SID}/result":
            return httpx.Response(200, content=msgspec.json.encode(host_result()))
        return httpx.Response(404, json=error_body(404, f"no route {key}"))

    def paths(self, method: str | None = None) -> list[str]:
        return [
            r.url.path.removeprefix("/host/v1")
            for r in self.requests
            if method is None or r.method == method
        ]


def _answer(answer: Any, request: httpx.Request) -> httpx.Response:
    if isinstance(answer, BaseException):
        raise answer
    if callable(answer):
        return answer(request)  # type: ignore[no-any-return]
    return answer  # type: ignore[no-any-return]


def error_body(code: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "status_code": code,
        "detail": detail,
        "error_type": "Error",
        "success": False,
        "problems": None,
        **extra,
    }


def status_body(status: str, *, sequence: int, **fields: Any) -> dict[str, Any]:
    progress = {
        "operation_id": SID,
        "sequence": sequence,
        "status": status,
        "phase": "train",
        "percentage": min(10.0 + 10 * sequence, 95.0),
        "message": f"Epoch 1/3 · Batch {sequence}/10",
        "epoch": 1,
        "total_epochs": 3,
        "batch": sequence,
        "total_batches": 10,
        "items_processed": sequence,
        "items_total": 30,
        "eta_s": 4.5,
        "metrics": {"train_loss_batch": 0.9},
        "resources": {"device": "cuda:0", "gpu_name": "Fake GPU"},
        "host_session_id": SID,
    }
    progress.update(fields.pop("progress", {}))
    return {
        "session_id": SID,
        "status": status,
        "progress": progress,
        "error_message": None,
        "cancellation_reason": None,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "started_at": "2026-01-01T00:00:01.000000Z",
        "finished_at": None,
        "model_available": False,
        **fields,
    }


def host_result(*, model_id: str | None = None) -> TrainingResult:
    return TrainingResult(
        training_metrics=TrainingMetrics(epochs_completed=3, final_val_loss=0.8),
        validation_metrics=None,
        test_metrics=None,
        resource_usage=ResourceUsage(device="cuda:0", accelerator="auto", gpu_name="Fake GPU"),
        artifacts=ArtifactsInfo(model_id=model_id),
        session_info=SessionInfo(
            operation_id=SID,
            strategy="small_test",
            symbols=["SYNTH"],
            timeframes=["1h"],
            base_timeframe="1h",
            started_at="2026-01-01T00:00:01.000000Z",
            finished_at="2026-01-01T00:00:09.000000Z",
        ),
        data_summary=DataSummary(feature_count=12),
    )


@pytest.fixture
def context(small_strategy_file: Path, tmp_path: Path) -> TrainingOperationContext:
    return build_training_context(
        small_strategy_file, mode="host", epochs=3, models_dir=tmp_path / "models"
    )


def make_runner(host: Handler, fake: FakeTime, **options: Any) -> HostTrainingRunner:
    return HostTrainingRunner(
        URL,
        "s3cret",
        transport=httpx.MockTransport(host),
        sleep=fake.sleep,
        clock=fake.clock,
        **options,
    )


def cancelling_at_poll(host: ScriptedHost, token: CancelToken, poll: int, **cancel: Any) -> Handler:
    """``host``, with ``token`` cancelled while the host answers poll number ``poll``."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = host(request)
        if request.method == "GET" and host.polls == poll and not token.is_set:
            token.cancel(**cancel)
        return answer

    return handler


def make_tracker(context: TrainingOperationContext) -> tuple[ProgressTracker, list[Any]]:
    published: list[Any] = []
    tracker = ProgressTracker(
        context.operation_id,
        total_epochs=context.total_epochs,
        publish=published.append,
        on_epoch=published.append,
        min_interval=0.0,
    )
    return tracker, published


def run(
    host: Handler, context: TrainingOperationContext, fake: FakeTime, **options: Any
) -> tuple[TrainingResult, list[Any]]:
    tracker, published = make_tracker(context)
    result = make_runner(host, fake, **options).run(
        context, RunControl(token=CancelToken(), tracker=tracker)
    )
    return result, published


# -- a run that completes ---------------------------------------------------------------------


def test_completed_run_sends_the_request_forwards_snapshots_and_returns_the_local_shape(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["pending", "running", "running", "completed"])
    fake = FakeTime()
    result, published = run(host, context, fake)

    start = next(r for r in host.requests if r.method == "POST")
    sent = msgspec.json.decode(start.content, type=HostSessionRequest)
    assert sent.symbols == ["SYNTH"] and sent.timeframes == ["1h"]
    assert sent.overrides is None and sent.seed == 42
    assert sent.client_operation_id == context.operation_id
    assert "epochs: 3" in sent.strategy_yaml  # the override is applied in the YAML sent
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in host.requests)
    assert fake.sleeps == [0.5, 0.5, 0.5]  # the poll interval between the four polls

    snaps = [p for p in published if isinstance(p, ProgressSnapshot)]
    assert [s.sequence for s in snaps] == list(range(1, len(snaps) + 1))
    assert all(s.operation_id == context.operation_id for s in snaps)
    assert all(s.host_session_id == SID for s in snaps)
    forwarded = snaps[1:]
    assert len(forwarded) == 4  # one per new host snapshot
    assert all(s.status == "running" for s in forwarded)  # the host's final is not ours yet
    assert forwarded[-1].resources.gpu_name == "Fake GPU"
    assert forwarded[-1].eta_s == 4.5 and forwarded[-1].items_total == 30

    assert set(msgspec.to_builtins(result)) == {
        "training_metrics",
        "validation_metrics",
        "test_metrics",
        "resource_usage",
        "artifacts",
        "session_info",
        "data_summary",
    }
    info = result.session_info
    assert info.operation_id == context.operation_id and info.mode == "host"
    assert info.host_session_id == SID and info.strategy_path == context.strategy_path
    assert result.resource_usage.gpu_name == "Fake GPU"  # the host's resources
    # The host offered no model: none is imported, and the result says so.
    assert result.artifacts.model_id is None and result.artifacts.model_path is None
    assert result.artifacts.no_model_reason == (
        f"no model was saved: host session {SID} offered none"
    )
    assert not (context.models_dir and Path(context.models_dir).exists())


def test_unchanged_host_snapshots_are_not_forwarded_twice(
    context: TrainingOperationContext,
) -> None:
    def same(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=status_body("running", sequence=7))

    done = httpx.Response(200, json=status_body("completed", sequence=8))
    host = ScriptedHost([same, same, same, done])
    _, published = run(host, context, FakeTime())
    forwarded = [p for p in published if isinstance(p, ProgressSnapshot)][1:]
    assert len(forwarded) == 2


def test_host_epoch_history_is_copied_to_the_local_operation(
    context: TrainingOperationContext,
) -> None:
    rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "learning_rate": 0.005}]
    metrics = httpx.Response(200, json={"operation_id": SID, "epochs": rows, "diagnostics": {}})
    host = ScriptedHost(["completed"], get_metrics=metrics)
    _, published = run(host, context, FakeTime())
    history = [p for p in published if isinstance(p, EpochHistoryRow)]
    assert history == [EpochHistoryRow(epoch=1, train_loss=1.0, val_loss=0.9, learning_rate=0.005)]


# -- back-off and the retry budget --------------------------------------------------------------


def test_errors_while_polling_back_off_exponentially_then_recover(
    context: TrainingOperationContext,
) -> None:
    down = httpx.ConnectError("connection refused")
    busy = httpx.Response(503, json=error_body(503, "host is shutting down"))
    host = ScriptedHost(["running", down, busy, down, down, "running", down, "completed"])
    fake = FakeTime()
    result, _ = run(host, context, fake)
    assert result.session_info.host_session_id == SID
    # poll, then 0.25 → 0.5 → 1.0 → 2.0 for four failures in a row, reset after a success
    assert fake.sleeps == [0.5, 0.25, 0.5, 1.0, 2.0, 0.5, 0.25]


def test_backoff_is_capped_and_the_budget_ends_the_run_with_the_reason(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["running", httpx.ConnectError("connection refused")])
    fake = FakeTime()
    with pytest.raises(HostUnreachableError) as caught:
        run(host, context, fake, retry_budget_s=30.0, backoff_max_s=4.0)
    retries = fake.sleeps[1:]
    assert retries[:5] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert max(retries) == 4.0  # capped
    assert sum(retries) == pytest.approx(30.0)  # the budget, not a second more
    assert "lost contact with the training host" in caught.value.detail
    assert "retry budget 30 s" in caught.value.detail
    assert "connection refused" in caught.value.detail


def test_the_budget_message_says_how_long_how_often_and_why(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["running", httpx.ConnectError("[Errno 111] Connection refused")])
    fake = FakeTime()
    with pytest.raises(HostUnreachableError) as caught:
        run(host, context, fake, retry_budget_s=2.0)
    # failures at 0, 0.25, 0.75, 1.75 and 2.0 s (the last wait cut to what the budget left)
    assert fake.sleeps[1:] == [0.25, 0.5, 1.0, 0.25]
    assert (
        f"the training host at {URL} did not answer for 2 s (5 attempts): connection refused "
        "(retry budget 2 s, set by retry_budget_s or KTRDR_HOST_RETRY_BUDGET_S)"
    ) in caught.value.detail
    assert caught.value.reason == "connection refused"


def test_a_host_failing_with_5xx_is_summed_up_by_its_status(
    context: TrainingOperationContext,
) -> None:
    busy = httpx.Response(503, json=error_body(503, "host is shutting down"))
    fake = FakeTime()
    with pytest.raises(HostUnreachableError) as caught:
        run(ScriptedHost(["running", busy]), context, fake, retry_budget_s=0.5)
    assert "did not answer for 0.5 s (3 attempts): answered 503" in caught.value.detail
    assert "host is shutting down" in caught.value.detail


def test_a_zero_budget_fails_at_the_first_failure(context: TrainingOperationContext) -> None:
    fake = FakeTime()
    with pytest.raises(HostUnreachableError, match=r"for 0 s \(1 attempt\): connection refused"):
        run(
            ScriptedHost(["running", httpx.ConnectError("connection refused")]),
            context,
            fake,
            retry_budget_s=0.0,
        )
    assert fake.sleeps == [0.5]  # the one poll interval, no retry


def test_the_retry_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ktrdr_lib.runners.host import host_runner_from_env

    monkeypatch.setenv("KTRDR_HOST_RETRY_BUDGET_S", "1.5")
    runner = host_runner_from_env(URL, None)
    assert runner is not None and runner.retry_budget_s == 1.5
    explicit = host_runner_from_env(URL, None, retry_budget_s=7.0)
    assert explicit is not None and explicit.retry_budget_s == 7.0
    monkeypatch.setenv("KTRDR_HOST_URL", URL)
    orch = TrainingOrchestrator(store=OperationStore(":memory:"))
    try:
        host_runner = orch.runners["host"]
        assert isinstance(host_runner, HostTrainingRunner) and host_runner.retry_budget_s == 1.5
    finally:
        orch.shutdown()
    monkeypatch.delenv("KTRDR_HOST_RETRY_BUDGET_S")
    default = host_runner_from_env(URL, None)
    assert default is not None and default.retry_budget_s == 30.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_retry_budget_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from ktrdr_lib.errors import ConfigError
    from ktrdr_lib.runners.host import host_runner_from_env

    monkeypatch.setenv("KTRDR_HOST_RETRY_BUDGET_S", value)
    with pytest.raises(ConfigError, match=rf"KTRDR_HOST_RETRY_BUDGET_S='{value}' is not a number"):
        host_runner_from_env(URL, None)


def test_a_timeout_is_retried_like_a_refused_connection(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost([httpx.ReadTimeout("slow"), "completed"])
    fake = FakeTime()
    run(host, context, fake)
    assert fake.sleeps == [0.25]


# -- faults that end the run at once --------------------------------------------------------------


def test_host_unreachable_at_start_fails_at_once_without_retrying(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost([], post_sessions=httpx.ConnectError("connection refused"))
    fake = FakeTime()
    with pytest.raises(HostUnreachableError) as caught:
        run(host, context, fake)
    assert len(host.requests) == 1 and fake.sleeps == []
    assert "cannot reach the training host at http://host.test:5002" in caught.value.detail
    assert "ktrdr serve host" in caught.value.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"session": "x"}), "not a HostSessionStatus"),
        (httpx.Response(200, text="<html>proxy</html>"), "not a HostSessionStatus"),
        (
            httpx.Response(200, json=status_body("running", sequence=1, session_id="other")),
            "answered GET /sessions/",
        ),
        (
            httpx.Response(200, json=status_body("weird", sequence=1)),
            "not a HostSessionStatus",
        ),
        (  # streamed: a status this big is not read to its end
            httpx.Response(200, content=iter([b"x" * (1 << 20), b"x"])),
            "with more than 1 MiB, the most this call accepts",
        ),
    ],
)
def test_a_malformed_status_fails_with_a_clear_error(
    context: TrainingOperationContext, answer: httpx.Response, expected: str
) -> None:
    host = ScriptedHost([answer])
    fake = FakeTime()
    with pytest.raises(HostProtocolError) as caught:
        run(host, context, fake)
    assert expected in caught.value.detail
    assert "KTRDR_HOST_URL" in caught.value.detail
    assert host.polls == 1  # garbage is not retried


def test_a_malformed_start_answer_is_a_protocol_error(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost([], post_sessions=httpx.Response(201, json={"id": 3}))
    with pytest.raises(HostProtocolError, match="not a HostSessionCreated"):
        run(host, context, FakeTime())


def test_a_bad_token_is_an_auth_error_that_names_the_setting(
    context: TrainingOperationContext,
) -> None:
    refused = httpx.Response(401, json=error_body(401, "missing or invalid bearer token"))
    host = ScriptedHost([], post_sessions=refused)
    with pytest.raises(HostAuthError) as caught:
        run(host, context, FakeTime())
    assert "KTRDR_HOST_TOKEN" in caught.value.detail
    assert "invalid bearer token" in caught.value.detail


def test_a_rejected_strategy_lists_every_problem(context: TrainingOperationContext) -> None:
    problems = [
        {"path": "indicators.0.period", "message": "must be >= 1", "value": "0"},
        {"path": "model.type", "message": "unknown model type", "value": "svm"},
    ]
    rejected = httpx.Response(400, json=error_body(400, "strategy is invalid", problems=problems))
    host = ScriptedHost([], post_sessions=rejected)
    with pytest.raises(StrategyError) as caught:
        run(host, context, FakeTime())
    assert [p.path for p in caught.value.problems] == ["indicators.0.period", "model.type"]


def test_a_session_gone_from_the_host_fails_with_the_reason(
    context: TrainingOperationContext,
) -> None:
    gone = httpx.Response(404, json=error_body(404, f"no session {SID}"))
    host = ScriptedHost(["running", gone])
    with pytest.raises(TrainingError) as caught:
        run(host, context, FakeTime())
    assert f"host session {SID} is gone" in caught.value.detail
    assert "restarted or forgot it" in caught.value.detail


def test_a_failed_session_raises_the_hosts_message(context: TrainingOperationContext) -> None:
    failed = httpx.Response(
        200, json=status_body("failed", sequence=2, error_message="loss became NaN at epoch 2")
    )
    host = ScriptedHost(["running", failed])
    with pytest.raises(TrainingError, match="loss became NaN at epoch 2"):
        run(host, context, FakeTime())


# -- cancelling -------------------------------------------------------------------------------


def test_cancel_calls_stop_then_waits_for_the_hosts_cancelled(
    context: TrainingOperationContext,
) -> None:
    token = CancelToken()
    host = ScriptedHost(["running", "running", "cancelling", "cancelling", "cancelled"])
    handler = cancelling_at_poll(host, token, 2, reason="user pressed stop")
    tracker, _ = make_tracker(context)
    with pytest.raises(OperationCancelled, match="user pressed stop"):
        make_runner(handler, FakeTime()).run(context, RunControl(token=token, tracker=tracker))
    stops = [r for r in host.requests if r.url.path.endswith("/stop")]
    assert len(stops) == 1
    assert msgspec.json.decode(stops[0].content, type=HostStopRequest) == HostStopRequest(
        graceful=False, reason="user pressed stop"
    )
    polls_after_stop = host.paths()[host.requests.index(stops[0]) + 1 :]
    assert polls_after_stop.count(f"/sessions/{SID}") == 3  # until the host said cancelled
    assert token.observed_at is not None


def test_a_graceful_stop_completes_with_a_result(context: TrainingOperationContext) -> None:
    token = CancelToken()
    host = ScriptedHost(["running", "cancelling", "completed"])
    handler = cancelling_at_poll(host, token, 1, graceful=True, reason="enough")
    tracker, _ = make_tracker(context)
    result = make_runner(handler, FakeTime()).run(context, RunControl(token=token, tracker=tracker))
    assert result.session_info.host_session_id == SID
    (stop,) = [r for r in host.requests if r.url.path.endswith("/stop")]
    assert msgspec.json.decode(stop.content, type=HostStopRequest).graceful is True


def test_an_abort_after_a_graceful_stop_is_sent_as_a_second_stop(
    context: TrainingOperationContext,
) -> None:
    token = CancelToken()
    host = ScriptedHost(["running", "cancelling", "cancelling", "cancelled"])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = host(request)
        if request.method == "GET" and host.polls == 1:
            token.cancel(graceful=True, reason="wrap up")
        if request.method == "GET" and host.polls == 2:
            token.cancel(reason="now")  # upgrades the graceful request to an abort
        return answer

    tracker, _ = make_tracker(context)
    with pytest.raises(OperationCancelled):
        make_runner(handler, FakeTime()).run(context, RunControl(token=token, tracker=tracker))
    stops = [
        msgspec.json.decode(r.content, type=HostStopRequest).graceful
        for r in host.requests
        if r.url.path.endswith("/stop")
    ]
    assert stops == [True, False]


def test_stopping_an_already_final_session_reads_how_it_ended(
    context: TrainingOperationContext,
) -> None:
    token = CancelToken()
    conflict = httpx.Response(409, json=error_body(409, "session is already completed"))
    host = ScriptedHost(["running", "completed"], post_stop=conflict)
    handler = cancelling_at_poll(host, token, 1, reason="late")
    tracker, _ = make_tracker(context)
    result = make_runner(handler, FakeTime()).run(context, RunControl(token=token, tracker=tracker))
    assert result.training_metrics.epochs_completed == 3


def test_a_host_that_never_confirms_an_abort_does_not_hang(
    context: TrainingOperationContext,
) -> None:
    token = CancelToken()
    host = ScriptedHost(["running"])
    fake = FakeTime()
    tracker, _ = make_tracker(context)
    handler = cancelling_at_poll(host, token, 1, reason="stop now")
    runner = make_runner(handler, fake, stop_confirm_timeout_s=5.0)
    with pytest.raises(OperationCancelled, match="did not confirm the stop within 5 s"):
        runner.run(context, RunControl(token=token, tracker=tracker))
    assert fake.now <= 6.0


def test_a_session_cancelled_on_the_host_cancels_the_operation_with_its_reason(
    context: TrainingOperationContext,
) -> None:
    cancelled = httpx.Response(
        200, json=status_body("cancelled", sequence=2, cancellation_reason="host shut down")
    )
    token = CancelToken()
    tracker, _ = make_tracker(context)
    with pytest.raises(OperationCancelled, match="host shut down"):
        make_runner(ScriptedHost(["running", cancelled]), FakeTime()).run(
            context, RunControl(token=token, tracker=tracker)
        )
    assert token.is_set and "host shut down" in (token.reason or "")


# -- the model download --------------------------------------------------------------------


def test_a_checksum_mismatch_fails_the_run_and_imports_nothing(
    context: TrainingOperationContext,
) -> None:
    body = b"\x1f\x8b not really a model"
    wrong = hashlib.sha256(b"something else").hexdigest()
    archive = httpx.Response(
        200,
        content=body,
        headers={"X-Content-SHA256": wrong, "X-Model-Id": "small_test/v1"},
    )
    completed = httpx.Response(200, json=status_body("completed", sequence=1, model_available=True))
    host = ScriptedHost([completed], get_artifacts__model=archive)
    with pytest.raises(DataError) as caught:
        run(host, context, FakeTime())
    assert "does not match its checksum" in caught.value.detail
    assert wrong in caught.value.detail
    assert not (Path(context.models_dir) / "small_test").exists()


def test_an_archive_without_a_checksum_header_is_refused(
    context: TrainingOperationContext,
) -> None:
    completed = httpx.Response(200, json=status_body("completed", sequence=1, model_available=True))
    host = ScriptedHost([completed], get_artifacts__model=httpx.Response(200, content=b"x"))
    with pytest.raises(HostProtocolError, match="X-Content-SHA256"):
        run(host, context, FakeTime())


# -- ProgressTracker.forward -----------------------------------------------------------------


def test_forward_keeps_host_figures_under_local_numbering() -> None:
    published: list[ProgressSnapshot] = []
    tracker = ProgressTracker(
        "local-op", total_epochs=3, publish=published.append, start_sequence=4
    )
    host = msgspec.convert(status_body("running", sequence=40)["progress"], ProgressSnapshot)
    tracker.forward(host)
    lower = msgspec.structs.replace(host, sequence=41, percentage=5.0, status="completed")
    tracker.forward(lower)
    first, second = published
    assert (first.sequence, second.sequence) == (5, 6)
    assert first.operation_id == "local-op" and first.host_session_id == SID
    assert first.percentage == host.percentage and second.percentage == host.percentage
    assert second.status == "running"  # the outcome is the orchestrator's to publish
    for field in ("phase", "message", "epoch", "batch", "eta_s", "metrics", "resources"):
        assert getattr(first, field) == getattr(host, field)
    final = tracker.finish("completed", "Completed")
    assert final.percentage == 100.0 and final.eta_s is None and final.host_session_id == SID


# -- through the orchestrator ------------------------------------------------------------------


def test_orchestrator_stores_the_session_and_fails_at_once_when_the_host_is_down(
    context: TrainingOperationContext, tmp_path: Path
) -> None:
    host = ScriptedHost([], post_sessions=httpx.ConnectError("connection refused"))
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"), host_runner=make_runner(host, FakeTime())
    )
    try:
        record = orch.submit(context).wait(timeout=30)
        assert record.status == "failed"
        assert "cannot reach the training host" in (record.error_message or "")
        assert orch.list_operations(active_only=True).items == []
        assert orch.health().host_url == URL and orch.health().mode == "local+host"
    finally:
        orch.shutdown()


def test_orchestrator_fails_a_run_whose_host_floods_its_status_with_the_reason(
    context: TrainingOperationContext,
) -> None:
    flood = httpx.Response(200, content=iter([b'{"session_id": "', b"x" * (4 << 20)]))
    host = ScriptedHost([flood])
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"), host_runner=make_runner(host, FakeTime())
    )
    try:
        record = orch.submit(context).wait(timeout=30)
        assert record.status == "failed"
        assert f"answered GET /sessions/{SID} with more than 1 MiB" in (record.error_message or "")
        assert len(record.error_message or "") < 1000  # the reason, not the flood
    finally:
        orch.shutdown()


def test_orchestrator_runs_host_mode_with_the_session_id_everywhere(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["running", "completed"])
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"), host_runner=make_runner(host, FakeTime())
    )
    try:
        handle = orch.submit(context)
        record = handle.wait(timeout=30)
        assert record.status == "completed" and record.host_session_id == SID
        assert record.progress.host_session_id == SID
        assert handle.result().session_info.host_session_id == SID
        assert record.progress.percentage == 100.0
    finally:
        orch.shutdown()


def test_host_mode_without_a_host_is_refused_before_anything_is_stored(
    context: TrainingOperationContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KTRDR_HOST_URL", raising=False)
    orch = TrainingOrchestrator(store=OperationStore(":memory:"))
    try:
        with pytest.raises(HostUnavailableError, match="KTRDR_HOST_URL"):
            orch.submit(context)
        assert orch.list_operations().total_count == 0
    finally:
        orch.shutdown()


def test_host_url_and_token_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_HOST_URL", "http://gpu-box:5002/host/v1/")
    monkeypatch.setenv("KTRDR_HOST_TOKEN", "t0ken")
    orch = TrainingOrchestrator(store=OperationStore(":memory:"))
    try:
        assert orch.host_url == "http://gpu-box:5002"
        assert orch.runners["local"].mode == "local"
    finally:
        orch.shutdown()


# -- re-attaching after an orchestrator restart -------------------------------------------------


def test_follow_reattaches_to_a_running_session_without_starting_another(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["running", "running", "completed"])
    tracker, published = make_tracker(context)
    result = make_runner(host, FakeTime()).follow(
        context, SID, token=CancelToken(), tracker=tracker
    )
    assert host.paths("POST") == []  # no new session
    assert host.paths("GET").count(f"/sessions/{SID}") == 3
    assert result.session_info.host_session_id == SID
    assert result.session_info.operation_id == context.operation_id
    snaps = [p for p in published if isinstance(p, ProgressSnapshot)]
    assert len(snaps) == 3 and all(s.host_session_id == SID for s in snaps)


def test_follow_with_a_token_already_set_stops_the_session_first(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost(["cancelling", "cancelled"])
    token = CancelToken()
    token.cancel(reason="cancel under way before the restart")
    tracker, _ = make_tracker(context)
    with pytest.raises(OperationCancelled, match="before the restart"):
        make_runner(host, FakeTime()).follow(context, SID, token=token, tracker=tracker)
    assert host.paths("POST") == [f"/sessions/{SID}/stop"]
    assert host.paths()[0] == f"/sessions/{SID}/stop"  # before the first poll


def test_follow_fails_when_the_host_forgot_the_session(
    context: TrainingOperationContext,
) -> None:
    host = ScriptedHost([httpx.Response(404, json=error_body(404, "Session not found"))])
    tracker, _ = make_tracker(context)
    with pytest.raises(TrainingError, match=f"host session {SID} is gone"):
        make_runner(host, FakeTime()).follow(context, SID, token=CancelToken(), tracker=tracker)


def _orphan(
    store: OperationStore,
    context: TrainingOperationContext,
    *,
    status: str = "running",
    with_context: bool = True,
    session: str | None = SID,
) -> None:
    """``context``'s operation as a process that died mid-run left it in ``store``."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    store.create(
        context.operation_id,
        mode="host",
        metadata=context.metadata(),
        progress=ProgressSnapshot(operation_id=context.operation_id, sequence=9, percentage=42.0),
        owner=f"{socket.gethostname()}:{child.pid}:12345",
        context=context if with_context else None,
    )
    if status != "pending":
        store.transition(context.operation_id, "running")
    if status == "cancelling":
        store.transition(context.operation_id, "cancelling", cancellation_reason="user stop")
    if session is not None:
        store.set_host_session(context.operation_id, session)


def test_orchestrator_reattaches_to_an_orphaned_session_and_completes_it(
    context: TrainingOperationContext,
) -> None:
    store = OperationStore(":memory:")
    _orphan(store, context)
    host = ScriptedHost(["running", "running", "completed"])
    orch = TrainingOrchestrator(store=store, host_runner=make_runner(host, FakeTime()))
    try:
        assert store.owner(context.operation_id) == process_owner()
        record = orch.wait(context.operation_id, timeout=30)
        assert record.status == "completed" and record.error_message is None
        assert record.host_session_id == SID
        assert record.progress.sequence > 9 and record.progress.percentage == 100.0
        assert host.paths("POST") == []
        result = orch.result(context.operation_id)
        assert result.session_info.operation_id == context.operation_id
        assert result.session_info.host_session_id == SID
        assert result.training_metrics.epochs_completed == 3
    finally:
        orch.shutdown()


def test_orchestrator_carries_a_cancel_under_way_through_the_restart(
    context: TrainingOperationContext,
) -> None:
    store = OperationStore(":memory:")
    _orphan(store, context, status="cancelling")
    host = ScriptedHost(["cancelling", "cancelled"])
    orch = TrainingOrchestrator(store=store, host_runner=make_runner(host, FakeTime()))
    try:
        record = orch.wait(context.operation_id, timeout=30)
        assert record.status == "cancelled"
        assert record.cancellation_reason == "user stop"
        assert host.paths("POST") == [f"/sessions/{SID}/stop"]
    finally:
        orch.shutdown()


def test_orphans_that_cannot_be_followed_are_marked_interrupted_with_the_reason(
    small_strategy_file: Path, tmp_path: Path
) -> None:
    def fresh() -> TrainingOperationContext:
        return build_training_context(
            small_strategy_file, mode="host", epochs=3, models_dir=tmp_path / "models"
        )

    store = OperationStore(":memory:")
    no_session, no_context, queued = fresh(), fresh(), fresh()
    _orphan(store, no_session, session=None)
    _orphan(store, no_context, with_context=False)
    _orphan(store, queued, status="pending", session=None)
    host = ScriptedHost(["completed"])
    orch = TrainingOrchestrator(store=store, host_runner=make_runner(host, FakeTime()))
    try:
        for ctx in (no_session, no_context, queued):
            record = orch.get_operation(ctx.operation_id)
            assert record.status == "interrupted"
            assert "start the training again" in (record.error_message or "")
        assert host.requests == []
    finally:
        orch.shutdown()

    other = fresh()
    without_host = OperationStore(":memory:")
    _orphan(without_host, other)
    orch = TrainingOrchestrator(store=without_host)
    try:
        record = orch.get_operation(other.operation_id)
        assert record.status == "interrupted"
        assert "no training host is configured" in (record.error_message or "")
    finally:
        orch.shutdown()
