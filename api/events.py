"""An operation's progress as a stream of events: what ``GET /operations/{id}/events`` sends.

The stream is framework free: it yields every :class:`ProgressSnapshot` after a sequence
number, then one :class:`FinalEvent` with the terminal status, and a :class:`Heartbeat` after
each idle ``heartbeat_s``; :mod:`api.routes` turns each into a server-sent event. It polls the
orchestrator's in-memory channel without blocking and sleeps on the event loop between polls,
so a client costs no thread and one that disconnects costs nothing.

Example:
    >>> async for event in operation_events(orch, op_id, after=0):  # doctest: +SKIP
    ...     print(type(event).__name__)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.progress import ProgressSnapshot

__all__ = ["Heartbeat", "OperationEvent", "operation_events"]


class Heartbeat(msgspec.Struct, frozen=True):
    """Nothing new for a while; the stream is still open."""


OperationEvent = ProgressSnapshot | FinalEvent | Heartbeat


async def operation_events(
    orchestrator: TrainingOrchestrator,
    operation_id: str,
    after: int = 0,
    *,
    poll_s: float = 0.1,
    heartbeat_s: float = 15.0,
) -> AsyncIterator[OperationEvent]:
    """Snapshots newer than ``after`` as they come, then the final event; ends with the run.

    Args:
        orchestrator: the orchestrator that knows the operation.
        operation_id: the operation to follow (the caller checks that it exists).
        after: the last sequence the client has (``Last-Event-ID``); 0 for all of them.
        poll_s: seconds between polls while nothing is new.
        heartbeat_s: idle seconds between heartbeats.
    """
    last = after
    idle = 0.0
    while True:
        batch, final = orchestrator.poll(operation_id, last)
        for snap in batch:
            last = snap.sequence
            yield snap
        if final:
            # The orchestrator records the final status before it publishes the final
            # snapshot, so the record read here is final too.
            record = orchestrator.get_operation(operation_id)
            yield FinalEvent(
                operation_id=operation_id,
                status=record.status,
                error_message=record.error_message,
                cancellation_reason=record.cancellation_reason,
                sequence=min(last, record.progress.sequence) or last,
            )
            return
        if batch:
            idle = 0.0
            continue
        await asyncio.sleep(poll_s)
        idle += poll_s
        if idle >= heartbeat_s:
            idle = 0.0
            yield Heartbeat()
