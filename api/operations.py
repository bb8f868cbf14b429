"""Operations routes: v1 status/list/cancel, plus metrics and the server-sent event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.names import check_name
from api.v1 import list_item, operation_info
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.health import OperationMetrics
from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.schemas.v1 import (
    CancelRequest,
    CancelResponse,
    CancelResult,
    OperationEnvelope,
    OperationListResponse,
)
from ktrdr_lib.timestamps import utc_now
from web.errors import ERROR_RESPONSES

__all__ = ["OperationsController"]

_V1_TO_CORE = {
    "pending": ["pending"],
    "running": ["running", "cancelling"],
    "completed": ["completed"],
    "failed": ["failed", "interrupted"],
    "cancelled": ["cancelled"],
}
_encode = msgspec.json.Encoder().encode
MAX_OFFSET = 2**62  # SQLite integers are 64-bit; a larger offset was a 500


class OperationsController(Controller):
    """``/operations``."""

    path = "/operations"
    tags = ["operations"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=False, summary="List operations (v1)")
    def list_operations(
        self,
        orchestrator: NamedDependency[TrainingOrchestrator],
        status: FromQuery[str | None] = None,
        operation_type: FromQuery[str | None] = None,
        active_only: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> OperationListResponse:
        """Newest first; ``status`` takes the v1 statuses or the precise ones."""
        statuses = None
        if status is not None:
            if status not in _V1_TO_CORE and status not in ("cancelling", "interrupted"):
                raise ConfigError(
                    f"status {status!r} is not a status; use one of "
                    "pending, running, completed, failed, cancelled, cancelling, interrupted"
                )
            statuses = _V1_TO_CORE.get(status, [status])
        page = orchestrator.list_operations(
            status=statuses,
            operation_type=operation_type,
            active_only=active_only,
            limit=limit,
            offset=offset,
        )
        return OperationListResponse(
            success=True,
            total_count=page.total_count,
            active_count=page.active_count,
            data=[list_item(r) for r in page.items],
        )

    @get(
        "/{operation_id:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="One operation (v1)",
    )
    def get_operation(
        self, orchestrator: NamedDependency[TrainingOrchestrator], operation_id: FromPath[str]
    ) -> OperationEnvelope:
        """The v1 OperationInfo with live progress in ``progress.context``."""
        record = orchestrator.get_operation(check_name("operation id", operation_id))
        return OperationEnvelope(success=True, data=operation_info(record))

    @delete(
        "/{operation_id:str}",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=False,
        summary="Cancel (v1)",
    )
    def delete_operation(
        self,
        orchestrator: NamedDependency[TrainingOrchestrator],
        operation_id: FromPath[str],
        data: Annotated[CancelRequest | None, Body()] = None,
    ) -> CancelResponse:
        """Ask the operation to stop; 409 when it is already final."""
        return _cancel(orchestrator, operation_id, data)

    @post(
        "/{operation_id:str}/cancel",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=False,
        summary="Cancel",
    )
    def cancel_operation(
        self,
        orchestrator: NamedDependency[TrainingOrchestrator],
        operation_id: FromPath[str],
        data: Annotated[CancelRequest | None, Body()] = None,
    ) -> CancelResponse:
        """Same as ``DELETE /operations/{id}``."""
        return _cancel(orchestrator, operation_id, data)

    @get(
        "/{operation_id:str}/metrics",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Epoch history",
    )
    def metrics(
        self, orchestrator: NamedDependency[TrainingOrchestrator], operation_id: FromPath[str]
    ) -> OperationMetrics:
        """One row per epoch, with overfitting and plateau flags."""
        return orchestrator.metrics(check_name("operation id", operation_id))

    @get(
        "/{operation_id:str}/events",
        responses=ERROR_RESPONSES,
        media_type="text/event-stream",
        summary="Live progress as server-sent events",
        description=(
            "One `progress` event per ProgressSnapshot (`id:` = its sequence, so "
            "`Last-Event-ID` resumes without gaps or repeats), then one `final` event with "
            "the terminal status; comment heartbeats while idle."
        ),
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        orchestrator: NamedDependency[TrainingOrchestrator],
        operation_id: FromPath[str],
    ) -> ServerSentEvent:
        """Follow an operation until it is final."""
        check_name("operation id", operation_id)
        orchestrator.get_operation(operation_id)  # 404 before the stream starts
        raw = request.headers.get("last-event-id") or "0"
        try:
            after = int(raw)
        except ValueError as exc:
            raise ConfigError(f"Last-Event-ID {raw!r} is not a sequence number") from exc
        state = request.app.state
        return ServerSentEvent(
            _event_stream(
                orchestrator,
                operation_id,
                after,
                poll_s=state.get("sse_poll_s", 0.1),
                heartbeat_s=state.get("sse_heartbeat_s", 15.0),
            )
        )


def _cancel(
    orchestrator: TrainingOrchestrator, operation_id: str, data: CancelRequest | None
) -> CancelResponse:
    check_name("operation id", operation_id)
    request = data or CancelRequest()
    record = orchestrator.cancel(operation_id, graceful=request.graceful, reason=request.reason)
    return CancelResponse(
        success=True,
        data=CancelResult(
            operation_id=operation_id,
            status=record.status if record.status in FINAL_STATUSES else "cancelling",
            cancelled_at=utc_now(),
            cancellation_reason=record.cancellation_reason or request.reason or "cancelled",
            task_cancelled=True,
            training_session_cancelled=record.host_session_id is not None,
            graceful=request.graceful,
        ),
    )


async def _event_stream(
    orchestrator: TrainingOrchestrator,
    operation_id: str,
    after: int,
    *,
    poll_s: float,
    heartbeat_s: float,
) -> AsyncIterator[ServerSentEventMessage]:
    last = after
    idle = 0.0
    while True:
        batch, final = orchestrator.poll(operation_id, last)
        for snap in batch:
            last = snap.sequence
            yield ServerSentEventMessage(
                event="progress", id=snap.sequence, data=_encode(snap).decode()
            )
        if final:
            # The orchestrator records the final status before it publishes the final
            # snapshot, so the record read here is final too.
            record = orchestrator.get_operation(operation_id)
            sequence = min(last, record.progress.sequence) or last
            payload = {
                "operation_id": operation_id,
                "status": record.status,
                "error_message": record.error_message,
                "cancellation_reason": record.cancellation_reason,
                "sequence": sequence,
            }
            yield ServerSentEventMessage(event="final", id=sequence, data=_encode(payload).decode())
            return
        if batch:
            idle = 0.0
            continue
        await asyncio.sleep(poll_s)
        idle += poll_s
        if idle >= heartbeat_s:
            idle = 0.0
            yield ServerSentEventMessage(comment="heartbeat")
