"""TrainingApi without a server: the API's behaviour on a real orchestrator, Structs in and out.

The routes (``tests/test_api.py``) add only the HTTP around these calls; here each answer is
the Struct the route would encode, and each refusal the error its status comes from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.events import Heartbeat, OperationEvent
from api.service import TrainingApi
from ktrdr_lib.errors import (
    ConfigError,
    NotFoundError,
    StateConflictError,
    StrategyNotFoundError,
)
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.v1 import (
    CancelRequest,
    ModelSaveRequest,
    PredictRequest,
    StrategyValidateRequest,
    TrainingStartRequest,
)

from .builders import make_result
from .conftest import SMALL_STRATEGY

ELSEWHERE = "another-host:1:1"  # an owner on another host: never marked interrupted


def start_request(epochs: int, **extra: Any) -> TrainingStartRequest:
    return TrainingStartRequest(
        strategy_name="small_test", symbols=["SYNTH"], timeframes=["1h"], epochs=epochs, **extra
    )


def make_api(store: OperationStore, data_dir: Path) -> TrainingApi:
    orchestrator = TrainingOrchestrator(store=store, data_dir=data_dir, progress_interval=0.05)
    return TrainingApi(orchestrator, sse_poll_s=0.01, sse_heartbeat_s=0.05)


@pytest.fixture
def api(synthetic_data_dir: Path, strategies_dir: Path) -> Iterator[TrainingApi]:
    service = make_api(OperationStore(":memory:"), synthetic_data_dir)
    yield service
    service.orchestrator.shutdown(cancel_running=True, timeout=30)


@pytest.fixture
def stored(synthetic_data_dir: Path, strategies_dir: Path) -> Iterator[TrainingApi]:
    """An API whose store already holds runs of another process: ``op_failed`` (failed, with
    a partial result), ``op_lost`` (interrupted, no result) and ``op_elsewhere`` (running)."""
    store = OperationStore(":memory:")
    store.create("op_failed", metadata={"symbol": "SYNTH"}, owner=ELSEWHERE)
    store.transition("op_failed", "running")
    partial = make_result("op_failed", epochs_completed=2, early_stopped=True, stop_reason="failed")
    store.transition("op_failed", "failed", error_message="loss became NaN", result=partial)
    store.create("op_lost", metadata={"symbol": "SYNTH"}, owner=ELSEWHERE)
    store.transition("op_lost", "interrupted", error_message="the process stopped")
    store.create("op_elsewhere", metadata={"symbol": "SYNTH"}, owner=ELSEWHERE)
    store.transition("op_elsewhere", "running")
    service = make_api(store, synthetic_data_dir)
    yield service
    service.orchestrator.shutdown(cancel_running=True, timeout=30)


def collect(events: AsyncIterator[OperationEvent], most: int = 10_000) -> list[OperationEvent]:
    """Up to ``most`` events of a stream, read on an event loop as the route reads them."""

    async def read() -> list[OperationEvent]:
        seen: list[OperationEvent] = []
        async for event in events:
            seen.append(event)
            if len(seen) >= most:
                break
        return seen

    return asyncio.run(asyncio.wait_for(read(), timeout=120))


# -- a run, start to prediction ----------------------------------------------------------------


def test_a_run_from_start_to_prediction(api: TrainingApi) -> None:
    started = api.start_training(start_request(epochs=1))
    assert started.success is True and started.status == "training_started"
    assert started.symbols == ["SYNTH"] and started.timeframes == ["1h"]
    assert started.strategy_name == "small_test" and started.mode == "local"
    assert started.estimated_duration_minutes == 1  # no history yet
    assert "small_test" in started.message and "1 epochs" in started.message
    op_id = started.task_id

    events = [e for e in collect(api.events(op_id)) if not isinstance(e, Heartbeat)]
    snapshots = [e for e in events if isinstance(e, ProgressSnapshot)]
    assert isinstance(events[-1], FinalEvent) and len(snapshots) == len(events) - 1
    assert [s.sequence for s in snapshots] == sorted({s.sequence for s in snapshots})
    assert events[-1].status == "completed" and events[-1].sequence == snapshots[-1].sequence
    middle = snapshots[len(snapshots) // 2].sequence
    resumed = [e for e in collect(api.events(op_id, str(middle))) if not isinstance(e, Heartbeat)]
    assert resumed == [s for s in snapshots if s.sequence > middle] + [events[-1]]

    result = api.result(op_id)
    assert isinstance(result, TrainingResult)
    assert result.test_metrics is not None and result.artifacts.model_id is not None
    assert result.session_info.operation_id == op_id
    performance = api.performance(op_id)
    assert performance.status == "completed" and performance.task_id == op_id
    assert performance.training_metrics["epochs_completed"] == 1
    assert performance.test_metrics["test_accuracy"] == result.test_metrics.accuracy
    assert performance.model_info.model_id == result.artifacts.model_id
    assert api.operation(op_id).data.status == "completed"
    assert [row.epoch for row in api.metrics(op_id).epochs] == [1]

    context = api.orchestrator.context_of(op_id)
    assert api.estimate_minutes(context) >= 1  # from the run that just completed

    saved = api.save_model(ModelSaveRequest(task_id=op_id, model_name="svc_model"))
    assert saved.model_id == "svc_model/v1" and saved.task_id == op_id
    assert [m.model_id for m in api.list_models().models] == [
        result.artifacts.model_id,
        "svc_model/v1",
    ]
    assert len(api.describe_model("svc_model").versions) == 1

    loaded = api.load_model("svc_model")
    assert loaded.model_loaded is True and loaded.model_info["model_id"] == "svc_model/v1"
    assert api.loaded_models["svc_model"].version == 1
    answer = api.predict(PredictRequest(model_name="svc_model", symbol="SYNTH", timeframe="1h"))
    assert answer.model_version == 1 and answer.prediction.signal in ("buy", "hold", "sell")
    assert answer.symbol == "SYNTH" and answer.input_features


# -- results and conflicts ---------------------------------------------------------------------


def test_a_cancelled_run_has_a_partial_result(api: TrainingApi) -> None:
    op_id = api.start_training(start_request(epochs=500, task_id="op_long")).task_id
    with pytest.raises(StateConflictError, match=r"op_long is (pending|running)"):
        api.result(op_id)
    with pytest.raises(StateConflictError, match="op_long"):
        api.performance(op_id)
    with pytest.raises(StateConflictError, match="op_long"):
        api.save_model(ModelSaveRequest(task_id=op_id, model_name="early"))
    with pytest.raises(StateConflictError, match="op_long"):
        api.start_training(start_request(epochs=1, task_id="op_long"))

    deadline = time.monotonic() + 60
    while api.operation(op_id).data.status_detail == "pending":  # one cancelled queued never trains
        assert time.monotonic() < deadline, f"{op_id} never started"
        time.sleep(0.02)
    cancelled = api.cancel(op_id, CancelRequest(reason="enough"))
    assert cancelled.data.status in ("cancelling", "cancelled")
    assert cancelled.data.cancellation_reason == "enough" and cancelled.data.task_cancelled
    final = collect(api.events(op_id))[-1]
    assert isinstance(final, FinalEvent) and final.status == "cancelled"

    partial = api.result(op_id)
    assert partial.training_metrics.stop_reason == "cancelled"
    assert partial.test_metrics is None and partial.artifacts.model_id is None
    assert partial.session_info.cancellation_reason == "enough"
    with pytest.raises(StateConflictError, match="cannot be cancelled"):
        api.cancel(op_id)


def test_results_of_runs_that_ended_elsewhere(stored: TrainingApi) -> None:
    failed = stored.result("op_failed")
    assert failed.training_metrics.stop_reason == "failed"
    assert failed.training_metrics.epochs_completed == 2 and failed.test_metrics is None
    with pytest.raises(StateConflictError, match="op_failed is failed: loss became NaN"):
        stored.performance("op_failed")
    with pytest.raises(StateConflictError, match=r"op_lost is interrupted.*no result"):
        stored.result("op_lost")
    with pytest.raises(StateConflictError, match="op_elsewhere is running"):
        stored.result("op_elsewhere")
    # A run of another process is cancelled through the shared store: marked cancelling
    # with the request's kind, for its own process to stop.
    stored.cancel("op_elsewhere")
    record = stored.orchestrator.get_operation("op_elsewhere")
    assert (record.status, record.cancel_kind) == ("cancelling", "abort")


def test_cancel_answers_v1_statuses_with_the_precise_one_beside(
    synthetic_data_dir: Path, strategies_dir: Path
) -> None:
    """DELETE's ``status`` is v1's ``cancelled`` or ``cancelling``, never a status v1 clients
    do not know; ``status_detail`` says precisely what happened."""
    import socket

    store = OperationStore(":memory:")
    gone = f"{socket.gethostname()}:999999999:1"  # a process of this machine that is gone
    store.create("op_elsewhere", metadata={"symbol": "SYNTH"}, owner=ELSEWHERE)
    store.transition("op_elsewhere", "running")
    service = make_api(store, synthetic_data_dir)
    try:
        # its process died after this one started (so start-up did not mark it interrupted)
        store.create("op_orphan", metadata={"symbol": "SYNTH"}, owner=gone)
        store.transition("op_orphan", "running")
        orphan = service.cancel("op_orphan").data
        assert (orphan.status, orphan.status_detail) == ("cancelled", "interrupted")
        stopping = service.cancel("op_elsewhere", CancelRequest(graceful=True)).data
        assert (stopping.status, stopping.status_detail) == ("cancelling", "cancelling")
        assert service.orchestrator.get_operation("op_elsewhere").cancel_kind == "graceful"
        # force: stop now, escalating the graceful stop under way
        forced = service.cancel("op_elsewhere", CancelRequest(force=True, reason="now")).data
        assert (forced.status, forced.graceful) == ("cancelling", False)
        record = service.orchestrator.get_operation("op_elsewhere")
        assert (record.cancel_kind, record.cancellation_reason) == ("abort", "now")
        with pytest.raises(ConfigError, match="force and graceful ask for opposite stops"):
            service.cancel("op_elsewhere", CancelRequest(force=True, graceful=True))
    finally:
        service.orchestrator.shutdown(cancel_running=True, timeout=30)


def test_unknown_ids_and_bad_names(api: TrainingApi) -> None:
    for call in (
        api.operation,
        api.result,
        api.metrics,
        api.cancel,
        api.events,
        api.performance,
    ):
        with pytest.raises(NotFoundError, match="Operation not found: op_missing"):
            call("op_missing")
        with pytest.raises(ConfigError, match="not a valid name"):
            call("a..b")
    with pytest.raises(NotFoundError, match="no_such_model"):
        api.load_model("no_such_model")
    with pytest.raises(NotFoundError, match="no_such_model"):
        api.predict(PredictRequest(model_name="no_such_model", symbol="SYNTH"))
    with pytest.raises(ConfigError, match="symbol"):
        api.predict(PredictRequest(model_name="m", symbol="../SYNTH"))
    with pytest.raises(ConfigError, match="model name"):
        api.save_model(ModelSaveRequest(task_id="op_x", model_name="../up"))
    with pytest.raises(StrategyNotFoundError):
        api.start_training(
            TrainingStartRequest(strategy_name="no_such", symbols=["SYNTH"], timeframes=["1h"])
        )
    assert api.list_operations().total_count == 0  # nothing was stored


# -- lists, events, strategies, health ---------------------------------------------------------


def test_list_filters_take_v1_and_precise_statuses(stored: TrainingApi) -> None:
    def listed(status: str | None = None, **options: Any) -> dict[str, str]:
        page = stored.list_operations(status=status, **options)
        return {row.operation_id: row.status_detail for row in page.data}

    assert listed("failed") == {"op_failed": "failed", "op_lost": "interrupted"}
    assert listed("interrupted") == {"op_lost": "interrupted"}
    assert listed("running") == {"op_elsewhere": "running"}
    assert listed(active_only=True) == {"op_elsewhere": "running"}
    assert len(listed(limit=2)) == 2
    with pytest.raises(ConfigError, match="'bogus' is not a status"):
        stored.list_operations(status="bogus")


def test_events_end_with_the_final_event_and_beat_while_idle(
    stored: TrainingApi,
) -> None:
    latest = stored.orchestrator.get_operation("op_failed").progress.sequence
    assert collect(stored.events("op_failed", str(latest))) == [
        FinalEvent(
            operation_id="op_failed",
            status="failed",
            error_message="loss became NaN",
            sequence=latest,
        )
    ]

    running = stored.orchestrator.get_operation("op_elsewhere").progress.sequence
    idle = collect(stored.events("op_elsewhere", str(running)), most=2)
    assert idle == [Heartbeat(), Heartbeat()]

    with pytest.raises(ConfigError, match="Last-Event-ID 'abc'"):
        stored.events("op_elsewhere", "abc")  # refused before the stream starts


def test_strategies_and_health(api: TrainingApi) -> None:
    assert "small_test" in {s.name for s in api.list_strategies().strategies}
    good = api.validate_strategy(StrategyValidateRequest(content=SMALL_STRATEGY))
    assert good.valid is True and good.name == "small_test" and good.problems == []
    bad = api.validate_strategy(
        StrategyValidateRequest(content=SMALL_STRATEGY.replace("period: 14", "period: -3"))
    )
    assert bad.valid is False and bad.name is None
    assert [p.path for p in bad.problems] == ["indicators[0].period"]
    health = api.health()
    assert health.status == "ok" and health.mode == "local"


def test_stream_settings_are_checked_at_once(api: TrainingApi) -> None:
    with pytest.raises(ConfigError, match="sse_poll_s"):
        TrainingApi(api.orchestrator, sse_poll_s=0)
    with pytest.raises(ConfigError, match="sse_heartbeat_s"):
        TrainingApi(api.orchestrator, sse_heartbeat_s=-1)
