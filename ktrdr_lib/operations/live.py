"""Running one operation: its in-process state and the loop that takes it to a final status.

:class:`LiveOperation` is what the orchestrator keeps in memory for an operation it runs (the
context, the cancel token, the live channel, the tracker, the cached record).
:class:`OperationExecutor` runs one through its runner: ``running`` → the runner's result →
``completed``, ``cancelled`` or ``failed`` with a (partial) result, the final snapshot last.
A final state is never overwritten, and a cancel that unwinds as an exception stays a cancel.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

import msgspec

from ktrdr_lib.errors import KtrdrError, OperationCancelled, StateConflictError
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.pipeline.aggregate import ResultAggregator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.sinks import OperationChannel, StoreWriter
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl, TrainingRunner
from ktrdr_lib.schemas.health import CancelLatency
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.status import OperationStatus
from ktrdr_lib.timestamps import utc_now

__all__ = ["LiveOperation", "OperationExecutor", "remove_checkpoints"]

log = logging.getLogger(__name__)


def remove_checkpoints(directory: str) -> None:
    """Delete a run's checkpoint directory (nothing when it has none)."""
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


class LiveOperation:
    """In-process state of an operation this orchestrator runs."""

    def __init__(self, context: TrainingOperationContext, channel: OperationChannel) -> None:
        self.context = context
        self.channel = channel
        self.token = CancelToken()
        self.done = threading.Event()
        self.tracker: ProgressTracker | None = None
        self.host_session_id: str | None = None
        # Set for a remote run taken over after a restart: its last stored snapshot and start.
        self.resumed_from: ProgressSnapshot | None = None
        self.started_at: str | None = None
        # Set for a run that resumes a stopped one: the percentage that run had reached.
        self.start_percentage = 0.0
        # The stored record as of this orchestrator's last write: only this process changes a
        # live operation, so reads can skip the database.
        self.record: OperationSnapshot | None = None
        # A cancel's latency is recorded once, before anyone can read the final status.
        self.latency_recorded = False


def _wall_time_guard(live: LiveOperation) -> threading.Timer | None:
    """A timer that stops the run gracefully once it passes its wall-time cap."""
    seconds = live.context.max_run_seconds
    if seconds <= 0:
        return None
    hours = seconds / 3600

    def stop() -> None:
        live.token.cancel(
            graceful=True,
            reason=f"ran past this server's wall-time cap of {hours:g} h (KTRDR_MAX_RUN_HOURS); "
            "stopped after its epoch",
        )

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    return timer


class OperationExecutor:
    """Takes live operations through their runners to a final status.

    Args:
        store: the operation store.
        writer: the store writer the operations' channels and epoch rows go through.
        runners: the runner of each mode.
        progress_interval: seconds between throttled snapshots.
    """

    def __init__(
        self,
        store: OperationStore,
        writer: StoreWriter,
        runners: Mapping[str, TrainingRunner],
        *,
        progress_interval: float,
    ) -> None:
        self.store = store
        self.writer = writer
        self.runners = runners
        self.progress_interval = progress_interval
        self.latencies: deque[CancelLatency] = deque(maxlen=20)
        self.keep_completed_checkpoints_days = 0.0
        # Makes a child operation (a placebo run) known to the orchestrator's reads and cancel.
        self.register: Callable[[LiveOperation], None] | None = None
        # Told when an operation has ended (the orchestrator forgets its in-memory state).
        self.on_done: Callable[[str], None] | None = None

    def transition(
        self, live: LiveOperation | None, op_id: str, status: OperationStatus, **fields: object
    ) -> OperationSnapshot:
        """Store a transition and remember the record for in-memory reads."""
        try:
            record = self.store.transition(op_id, status, **fields)  # type: ignore[arg-type]
        except StateConflictError:
            if live is not None:
                live.record = None  # someone else changed it: read the store from now on
            raise
        if live is not None:
            live.record = record
        return record

    def attach_session(self, live: LiveOperation, session_id: str) -> None:
        """Remember the remote session that runs ``live`` (store, record and snapshots)."""
        op_id = live.context.operation_id
        live.host_session_id = session_id
        self.store.set_host_session(op_id, session_id)
        if live.record is not None:
            live.record = msgspec.structs.replace(live.record, host_session_id=session_id)

    def execute(self, live: LiveOperation, *, reattach_message: str = "") -> None:
        """Run ``live`` to a final status (never raises for the run's own failures)."""
        context = live.context
        op_id = context.operation_id
        last = live.channel.latest or live.resumed_from
        tracker = ProgressTracker(
            op_id,
            total_epochs=context.total_epochs,
            publish=live.channel.publish,
            on_epoch=lambda row: self.writer.submit_epoch(op_id, row),
            min_interval=self.progress_interval,
            start_sequence=last.sequence if last else 0,
            start_percentage=last.percentage if last else live.start_percentage,
        )
        live.tracker = tracker
        resumed = live.resumed_from
        if resumed is None:
            try:
                self.transition(live, op_id, "running")
            except StateConflictError:  # cancelled while queued
                live.token.mark_observed()
                self.record_latency(live, "cancelled")
                tracker.finish("cancelled", "Cancelled before it started")
                self.writer.flush()
                return
        else:  # re-attaching: carry on from where the stored progress left off
            tracker.forward(
                msgspec.structs.replace(
                    resumed, host_session_id=live.host_session_id, message=reattach_message
                )
            )
        if live.token.is_set:
            tracker.set_status("cancelling")
        started = live.started_at or utc_now()
        control = RunControl(
            token=live.token,
            tracker=tracker,
            on_session=lambda session_id: self.attach_session(live, session_id),
            session_id=live.host_session_id if resumed is not None else None,
        )
        status: OperationStatus = "failed"
        error: str | None = None
        result: TrainingResult | None = None
        timer = _wall_time_guard(live)
        try:
            result = self.runners[context.mode].run(context, control)
            if context.placebo_runs and result.evaluation is not None:
                from ktrdr_lib.operations.placebo import run_placebos

                result = run_placebos(self, live, result, tracker, self.register)
            status = "completed"
        except OperationCancelled as exc:
            status = "cancelled"
            log.info("operation %s cancelled: %s", op_id, exc.detail)
        except KtrdrError as exc:
            error = exc.detail
        except Exception as exc:
            log.exception("operation %s failed", op_id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if timer is not None:
                timer.cancel()
        if status != "completed":
            result = ResultAggregator.partial(
                context,
                history=self._history_safely(op_id),
                started_at=started,
                finished_at=utc_now(),
                cancellation_reason=live.token.reason if status == "cancelled" else None,
                host_session_id=live.host_session_id,
                last_progress=tracker.snapshot(),
                phase_seconds=tracker.phase_seconds(),
            )
        message = {
            "completed": "Completed",
            "cancelled": f"Cancelled: {live.token.reason}",
            "failed": f"Failed: {error}",
        }[status]
        # The latency, then the status, then the final snapshot: whoever sees the operation
        # final finds its cancel latency in health, and a subscriber that sees the final
        # snapshot finds the operation final when it reads the record.
        self.record_latency(live, status)
        try:
            self.transition(
                live,
                op_id,
                status,
                error_message=error,
                cancellation_reason=live.token.reason if live.token.is_set else None,
                cancel_kind=None
                if not live.token.is_set
                else "graceful"
                if live.token.graceful
                else "abort",
                result=result,
            )
        except StateConflictError:  # marked interrupted at shutdown; that stays
            log.info("operation %s ended %s after it was marked final", op_id, status)
        tracker.finish(status, message)
        self.writer.flush()
        if status == "completed" and self.keep_completed_checkpoints_days <= 0:
            remove_checkpoints(context.checkpoint_dir)

    def _history_safely(self, op_id: str) -> list[EpochHistoryRow]:
        self.writer.flush()
        try:
            return self.store.epoch_history(op_id)
        except KtrdrError:
            return []

    def record_latency(self, live: LiveOperation, status: str) -> None:
        """Keep how long ``live``'s cancel took to be acted on and to end it (once per run;
        nothing for a run nobody cancelled)."""
        token = live.token
        if token.requested_at is None or live.latency_recorded:
            return
        live.latency_recorded = True
        op_id = live.context.operation_id
        now = time.monotonic()
        observed = token.observed_at
        observed_ms = None if observed is None else (observed - token.requested_at) * 1e3
        latency = CancelLatency(
            operation_id=op_id,
            graceful=token.graceful,
            observed_ms=None if observed_ms is None else round(observed_ms, 2),
            final_ms=round((now - token.requested_at) * 1e3, 2),
            final_status=status,
        )
        self.latencies.append(latency)
        log.info(
            "operation %s cancel latency: observed after %s ms, %s after %.1f ms",
            op_id,
            latency.observed_ms,
            status,
            latency.final_ms,
        )

    def run_safely(self, live: LiveOperation, *, reattach_message: str = "") -> None:
        """:meth:`execute`, turning an unexpected error into ``failed``; sets ``live.done``."""
        op_id = live.context.operation_id
        try:
            self.execute(live, reattach_message=reattach_message)
        except Exception as exc:  # never let one run kill the worker
            log.exception("operation %s: unexpected error in the worker", op_id)
            with contextlib.suppress(KtrdrError):
                self.transition(live, op_id, "failed", error_message=f"internal error: {exc!r}")
        finally:
            live.done.set()
            if self.on_done is not None:
                self.on_done(op_id)
