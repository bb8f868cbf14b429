"""Reading operations: records, live snapshots, waits and follows, results and metrics.

:class:`OperationReads` is the read side of the
:class:`~ktrdr_lib.operations.orchestrator.TrainingOrchestrator`. An operation this process runs
is served from memory (its cached record and live channel, so readers never wait on the
database while it trains); any other is read from the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import msgspec

from ktrdr_lib.errors import NotFoundError, StateConflictError
from ktrdr_lib.operations.diagnostics import diagnose_history
from ktrdr_lib.operations.live import LiveOperation
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.operations.waiting import wait_for, wait_until
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.sinks import StoreWriter
from ktrdr_lib.schemas.health import OperationMetrics
from ktrdr_lib.schemas.operations import OperationList, OperationSnapshot
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.status import ACTIVE_STATUSES, FINAL_STATUSES

__all__ = ["OperationReads"]


class OperationReads:
    """The read-only calls of the orchestrator (it provides the store, writer and live map)."""

    store: OperationStore
    _writer: StoreWriter
    _live: dict[str, LiveOperation]

    def get_operation(self, operation_id: str) -> OperationSnapshot:
        """The operation with its freshest progress (live when it runs here).

        Raises:
            NotFoundError: unknown id.
        """
        live = self._live.get(operation_id)
        cached = live.record if live is not None else None
        record = cached if cached is not None else self.store.get(operation_id)
        latest = live.channel.latest if live is not None else None
        if latest is not None and latest.sequence > record.progress.sequence:
            latest = msgspec.structs.replace(latest, status=record.status)
            return msgspec.structs.replace(record, progress=latest)
        return record

    def context_of(self, operation_id: str) -> TrainingOperationContext:
        """The resolved request an operation runs (symbols, timeframes, epochs, ...).

        Raises:
            NotFoundError: unknown id, or an operation stored without its context.
        """
        live = self._live.get(operation_id)
        if live is not None:
            return live.context
        raw = self.store.stored_context(operation_id)
        if raw is None:
            raise NotFoundError(f"operation {operation_id} has no stored context")
        return msgspec.json.decode(raw, type=TrainingOperationContext)

    def list_operations(
        self,
        *,
        status: str | Sequence[str] | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> OperationList:
        """Operations newest first, with the total count and the number active."""
        wanted = sorted(ACTIVE_STATUSES) if active_only and status is None else status
        items, total = self.store.list_records(
            status=wanted, operation_type=operation_type, limit=limit, offset=offset
        )
        items = [self._fresh(r) for r in items]
        return OperationList(
            items=items, total_count=total, active_count=self.store.count(sorted(ACTIVE_STATUSES))
        )

    def _fresh(self, record: OperationSnapshot) -> OperationSnapshot:
        live = self._live.get(record.operation_id)
        latest = live.channel.latest if live is not None else None
        if latest is not None and latest.sequence > record.progress.sequence:
            return msgspec.structs.replace(
                record, progress=msgspec.structs.replace(latest, status=record.status)
            )
        return record

    def wait(self, operation_id: str, *, timeout: float | None = None) -> OperationSnapshot:
        """Block until the operation is final (or ``timeout``) and return it.

        Where a front end registered an event pump (a notebook with a live view), the wait
        lets it handle its events meanwhile, so the view's Cancel button works while a cell
        waits (see :mod:`ktrdr_lib.operations.waiting`).
        """
        live = self._live.get(operation_id)
        if live is not None:
            wait_for(live.done, timeout)
        else:
            wait_until(lambda: self.get_operation(operation_id).is_final, timeout, every=0.2)
        return self.get_operation(operation_id)

    def follow(
        self, operation_id: str, *, after: int = 0, timeout: float | None = None
    ) -> Iterator[ProgressSnapshot]:
        """Yield snapshots newer than ``after`` until the final one.

        For an operation this orchestrator runs, every emitted snapshot is yielded (unless a
        subscriber falls far behind); for others the store is polled. ``timeout`` bounds the
        wait for each next snapshot (``None`` waits as long as it takes).
        """
        self.store.get(operation_id)  # NotFoundError early
        last = after
        live = self._live.get(operation_id)
        while True:
            if live is not None:
                batch = live.channel.after(last, timeout=timeout if timeout else 1.0)
            else:
                record = self.get_operation(operation_id)
                batch = [record.progress] if record.progress.sequence > last else []
                if not batch and not record.is_final:
                    time.sleep(0.2)
            for snap in batch:
                last = snap.sequence
                yield snap
                if snap.status in FINAL_STATUSES:
                    return
            record = self.get_operation(operation_id)
            if record.is_final and (live is None or live.done.is_set()):
                final = record.progress if live is not None else self._settled(record, 2.0)
                if final.sequence > last:
                    yield final
                return
            if not batch and timeout is not None and live is not None:
                return

    def poll(self, operation_id: str, after: int) -> tuple[list[ProgressSnapshot], bool]:
        """Snapshots newer than ``after`` without blocking, and whether the operation is final.

        For async callers (server-sent events): live snapshots when this orchestrator runs
        the operation, else the stored latest one.
        """
        live = self._live.get(operation_id)
        if live is not None:
            batch = live.channel.after(after, timeout=0)
            if batch or not live.done.is_set():
                return batch, bool(batch) and batch[-1].status in FINAL_STATUSES
        record = self.get_operation(operation_id)
        batch = [record.progress] if record.progress.sequence > after else []
        return batch, record.is_final  # the stream's final event carries the final status

    def _settled(self, record: OperationSnapshot, wait_s: float) -> ProgressSnapshot:
        """A final record's last snapshot. The process that runs an operation stores its
        final status first and its final snapshot a moment later: wait up to ``wait_s`` for
        that one. Without it (not yet written, or the process died and the operation was
        marked interrupted), the stored snapshot is carried forward as a new one with the
        final status, so a follower that saw ``cancelling`` or ``running`` never ends there."""
        deadline = time.monotonic() + wait_s
        while _predates_end(record) and time.monotonic() < deadline:
            time.sleep(0.05)
            record = self.get_operation(record.operation_id)
        progress = record.progress  # the store gives it the record's status
        if not _predates_end(record):
            return progress
        message = {
            "completed": "Completed",
            "cancelled": f"Cancelled: {record.cancellation_reason or 'by request'}",
            "failed": f"Failed: {record.error_message or 'unknown error'}",
            "interrupted": f"Interrupted: {record.error_message or 'its process stopped'}",
        }.get(record.status, progress.message)
        return msgspec.structs.replace(
            progress,
            sequence=progress.sequence + 1,  # the same each time: a reader sees it once
            status=record.status,
            percentage=100.0 if record.status == "completed" else progress.percentage,
            message=message,
            eta_s=None,
            updated_at=record.finished_at or progress.updated_at,
        )

    def result(self, operation_id: str) -> TrainingResult:
        """The TrainingResult of a completed operation.

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the operation has not completed (the message gives its status).
        """
        record = self.get_operation(operation_id)
        if record.status != "completed" or record.result is None:
            detail = f": {record.error_message}" if record.error_message else ""
            raise StateConflictError(
                f"operation {operation_id} is {record.status}{detail}; a result exists only "
                "once it has completed"
            )
        return record.result

    def partial_result(self, operation_id: str) -> TrainingResult | None:
        """Whatever result was stored, also for cancelled and failed runs."""
        record = self.get_operation(operation_id)
        return record.result

    def metrics(self, operation_id: str) -> OperationMetrics:
        """The epoch history with overfitting/plateau flags."""
        self._writer.flush()
        rows = self.store.epoch_history(operation_id)
        return OperationMetrics(
            operation_id=operation_id, epochs=rows, diagnostics=diagnose_history(rows)
        )


def _predates_end(record: OperationSnapshot) -> bool:
    """Whether a final record's stored snapshot was written before it ended (its run's final
    snapshot is written after the status; utc_now's fixed-width text sorts as time does)."""
    finished = record.finished_at
    return bool(finished) and record.progress.updated_at < str(finished)
