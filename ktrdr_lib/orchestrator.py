"""TrainingOrchestrator: training runs as managed, observable, cancellable operations.

Example:
    >>> from ktrdr_lib import TrainingOrchestrator
    >>> orch = TrainingOrchestrator()                      # SQLite under KTRDR_HOME
    >>> op = orch.start_training("rsi_mean_reversion", epochs=5)
    >>> for snap in op.follow():                           # doctest: +SKIP
    ...     print(snap.percentage, snap.message)
    >>> op.wait().status                                   # doctest: +SKIP
    'completed'
    >>> op.result().test_metrics.accuracy                  # doctest: +SKIP

``start_training`` validates the request and builds the context *before* an operation is
stored (a bad strategy raises at once and stores nothing), then returns; training runs in a
worker thread. At most ``max_concurrent`` runs train at once; the rest wait ``pending``.

Each run picks its runner by mode: ``local`` runs in this process, ``host`` on a training host
(``host_url`` / ``KTRDR_HOST_URL``, see :mod:`ktrdr_lib.host_runner`); the host session id is
stored on the operation and carried by its snapshots.

Restarts: local runs found active at start-up are marked ``interrupted``. A host run keeps
training on the host when the process that followed it dies; a new orchestrator with a host
runner takes such operations over (running or cancelling, with a session id, owner gone),
rebuilds them from the context stored at submit and follows each session to its end, so it
ends ``completed`` (result and model brought home), ``cancelled`` or ``failed`` as if nothing
had happened. Without a host runner they are marked ``interrupted`` with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from ktrdr_lib.aggregator import ResultAggregator
from ktrdr_lib.cancellation import CancelToken
from ktrdr_lib.context import TrainingMode, TrainingOperationContext, build_training_context
from ktrdr_lib.diagnostics import (
    CancelLatency,
    HealthReport,
    OperationMetrics,
    diagnose_history,
    library_versions,
)
from ktrdr_lib.errors import (
    ConfigError,
    HostUnavailableError,
    KtrdrError,
    OperationCancelled,
    StateConflictError,
)
from ktrdr_lib.operations import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OperationSnapshot,
    OperationStore,
    ProgressSnapshot,
    utc_now,
)
from ktrdr_lib.paths import ktrdr_home
from ktrdr_lib.progress import ProgressTracker
from ktrdr_lib.progress_sinks import OperationChannel, StoreWriter
from ktrdr_lib.results import TrainingResult
from ktrdr_lib.runners import HostRunner, LocalTrainingRunner, TrainingRunner
from ktrdr_lib.strategy.spec import StrategySpec

if TYPE_CHECKING:
    from ktrdr_lib.notebook import TrainingProgress

__all__ = ["OperationHandle", "OperationList", "TrainingOrchestrator"]

log = logging.getLogger(__name__)
_decode_result = msgspec.convert


class OperationList(msgspec.Struct, frozen=True, kw_only=True):
    """A page of operations, newest first."""

    items: list[OperationSnapshot]
    total_count: int
    active_count: int


@runtime_checkable
class _SessionFollower(Protocol):
    """A host runner that can re-attach to a running session (HostTrainingRunner.follow)."""

    def follow(
        self,
        context: TrainingOperationContext,
        session_id: str,
        *,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Follow ``session_id`` to its end and return the run's result."""
        ...


class _Live:
    """In-process state of an operation this orchestrator runs."""

    def __init__(self, context: TrainingOperationContext, channel: OperationChannel) -> None:
        self.context = context
        self.channel = channel
        self.token = CancelToken()
        self.done = threading.Event()
        self.tracker: ProgressTracker | None = None
        self.host_session_id: str | None = None
        # Set for a host run taken over after a restart: its last stored snapshot and start.
        self.resumed_from: ProgressSnapshot | None = None
        self.started_at: str | None = None
        # The stored record as of this orchestrator's last write: only this process changes a
        # live operation, so reads can skip the database.
        self.record: OperationSnapshot | None = None


class OperationHandle:
    """A training operation: its id plus shortcuts to the orchestrator's calls for it."""

    def __init__(self, orchestrator: TrainingOrchestrator, operation_id: str) -> None:
        self._orch = orchestrator
        self.operation_id = operation_id
        self.view: TrainingProgress | None = None  # the view display() opened last

    def __repr__(self) -> str:
        return f"OperationHandle({self.operation_id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        """The current status."""
        return self._orch.get_operation(self.operation_id).status

    def snapshot(self) -> ProgressSnapshot:
        """The latest progress snapshot."""
        return self._orch.get_operation(self.operation_id).progress

    def info(self) -> OperationSnapshot:
        """The whole operation record with its latest progress."""
        return self._orch.get_operation(self.operation_id)

    def cancel(self, *, graceful: bool = False, reason: str | None = None) -> OperationSnapshot:
        """Ask the run to stop (abort by default; ``graceful`` finishes, evaluates, saves)."""
        return self._orch.cancel(self.operation_id, graceful=graceful, reason=reason)

    def wait(self, timeout: float | None = None) -> OperationSnapshot:
        """Block until the operation is final (or ``timeout`` passes) and return it.

        When a progress view is open, also wait for it to draw the final state, so a
        headless notebook records the whole run in the cell that waits.
        """
        record = self._orch.wait(self.operation_id, timeout=timeout)
        if self.view is not None and record.is_final:
            self.view.wait(timeout)
        return record

    def result(self) -> TrainingResult:
        """The TrainingResult; StateConflictError unless the run completed."""
        return self._orch.result(self.operation_id)

    def follow(self, *, after: int = 0, timeout: float | None = None) -> Iterator[ProgressSnapshot]:
        """Live snapshots newer than ``after`` until the final one (see
        :meth:`TrainingOrchestrator.follow`)."""
        return self._orch.follow(self.operation_id, after=after, timeout=timeout)

    def metrics(self) -> OperationMetrics:
        """Epoch history and diagnostics."""
        return self._orch.metrics(self.operation_id)

    def display(self, mode: str = "auto", **options: Any) -> TrainingProgress:
        """Show this run's live progress view and return it (does not block).

        ``mode`` is ``auto``, ``widget``, ``html``, ``text`` or ``off``; ``options`` go to
        :class:`ktrdr_lib.notebook.TrainingProgress`.
        """
        from ktrdr_lib.notebook import TrainingProgress

        self.view = TrainingProgress(self, mode, **options)
        return self.view


class TrainingOrchestrator:
    """Starts, queues, tracks and cancels training operations.

    Args:
        home: state directory (default ``KTRDR_HOME``); the store is ``home/operations.db``.
        store: an OperationStore to use instead (e.g. ``OperationStore(":memory:")``).
        runner: where runs of its mode execute (default: a :class:`LocalTrainingRunner`
            for ``local``).
        host_url: a training host for ``mode="host"`` runs (default ``KTRDR_HOST_URL``).
        host_token: that host's bearer token (default ``KTRDR_HOST_TOKEN``).
        host_runner: a ready host runner instead (e.g. a HostTrainingRunner with a test
            transport or another poll interval); overrides ``host_url``.
        max_concurrent: runs training at once (default 1 on CPU, the GPU count with CUDA).
        progress_interval: seconds between throttled progress snapshots (default 0.2).
        data_dir: OHLCV directory for every run (default ``KTRDR_DATA_DIR`` or the samples).
        models_dir: where models are saved (default ``KTRDR_HOME/models``).
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        store: OperationStore | None = None,
        runner: TrainingRunner | None = None,
        max_concurrent: int | None = None,
        progress_interval: float = 0.2,
        data_dir: str | os.PathLike[str] | None = None,
        models_dir: str | os.PathLike[str] | None = None,
        host_url: str | None = None,
        host_token: str | None = None,
        host_runner: HostRunner | None = None,
    ) -> None:
        self.home = Path(home) if home is not None else ktrdr_home()
        self.store = store or OperationStore(self.home / "operations.db")
        self.runners: dict[str, TrainingRunner] = {"local": LocalTrainingRunner()}
        if runner is not None:
            self.runners[runner.mode] = runner
        if host_runner is None and (host_url or os.environ.get("KTRDR_HOST_URL")):
            from ktrdr_lib.host_runner import host_runner_from_env

            host_runner = host_runner_from_env(host_url, host_token)
        self.host_runner: HostRunner | None = host_runner
        if host_runner is not None:
            self.runners["host"] = host_runner
        # The runner of the default mode (kept for callers that read ``orchestrator.runner``).
        self.runner: TrainingRunner = runner or self.runners["local"]
        self.max_concurrent = max_concurrent or _default_concurrency()
        if self.max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if progress_interval < 0:
            raise ConfigError(f"progress_interval must be >= 0, got {progress_interval}")
        self.progress_interval = progress_interval
        self.data_dir = data_dir
        self.models_dir = Path(models_dir) if models_dir is not None else self.home / "models"
        self._writer = StoreWriter(self.store)
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._latencies: deque[CancelLatency] = deque(maxlen=20)
        self._closed = False
        self._follower: _SessionFollower | None = (
            host_runner if isinstance(host_runner, _SessionFollower) else None
        )
        interrupted = self.store.mark_interrupted(
            mode="local", reason="the process running this operation stopped before it finished"
        )
        # Host sessions keep running when the process following them dies: take them over.
        reattached: list[str] = self._reattach_orphans() if self._follower is not None else []
        interrupted += self.store.mark_interrupted(mode="host", reason=self._orphan_reason())
        if interrupted:
            log.warning("marked %d operation(s) interrupted: %s", len(interrupted), interrupted)
        if reattached:
            log.warning("re-attached to %d host session(s): %s", len(reattached), reattached)

    @property
    def host_url(self) -> str | None:
        """The training host ``mode="host"`` runs go to, or ``None`` when none is configured."""
        runner = self.runners.get("host")
        url = getattr(runner, "host_url", None)
        return url if isinstance(url, str) else None

    # -- starting ----------------------------------------------------------------------------

    def start_training(
        self,
        strategy: str | os.PathLike[str] | StrategySpec,
        *,
        symbols: Sequence[str] | None = None,
        timeframes: Sequence[str] | None = None,
        start_date: str | datetime | None = None,
        end_date: str | datetime | None = None,
        overrides: Mapping[str, Any] | None = None,
        epochs: int | None = None,
        mode: TrainingMode = "local",
        seed: int = 42,
    ) -> OperationHandle:
        """Validate the request, store a ``pending`` operation and queue it; returns at once.

        Raises:
            ConfigError / StrategyNotFoundError: the request is invalid (nothing is stored).
        """
        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        context = build_training_context(
            strategy,
            symbols=symbols,
            timeframes=timeframes,
            start_date=start_date,
            end_date=end_date,
            overrides=overrides,
            epochs=epochs,
            mode=mode,
            seed=seed,
            data_dir=self.data_dir,
            models_dir=self.models_dir,
        )
        return self.submit(context)

    def train(
        self,
        strategy: str | os.PathLike[str] | StrategySpec,
        *,
        symbols: Sequence[str] | None = None,
        timeframes: Sequence[str] | None = None,
        start_date: str | datetime | None = None,
        end_date: str | datetime | None = None,
        overrides: Mapping[str, Any] | None = None,
        epochs: int | None = None,
        mode: TrainingMode = "local",
        seed: int = 42,
        display: str = "auto",
    ) -> OperationHandle:
        """:meth:`start_training`, then show its progress view; returns the handle at once.

        ``display`` is the view's mode (``auto``, ``widget``, ``html``, ``text`` or ``off``;
        see :func:`ktrdr_lib.notebook.detect_display_mode`). The cell returns while the run
        trains in a worker thread, so the view's Cancel button stays live.

        Example:
            >>> op = orch.train("rsi_mean_reversion", epochs=5)     # doctest: +SKIP
        """
        from ktrdr_lib.notebook import detect_display_mode

        detect_display_mode(display)  # a bad display mode raises before anything starts
        handle = self.start_training(
            strategy,
            symbols=symbols,
            timeframes=timeframes,
            start_date=start_date,
            end_date=end_date,
            overrides=overrides,
            epochs=epochs,
            mode=mode,
            seed=seed,
        )
        handle.display(display)
        return handle

    def submit(self, context: TrainingOperationContext) -> OperationHandle:
        """Store and queue an already built context."""
        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        if context.mode not in ("local", "host"):
            raise ConfigError(
                f"mode: {context.mode!r} is not a training mode; use 'local' or 'host'"
            )
        if context.mode not in self.runners:
            if context.mode == "host":
                raise HostUnavailableError(
                    "no training host is configured: set KTRDR_HOST_URL (or pass host_url) "
                    "to train in host mode, or use mode 'local'"
                )
            raise ConfigError(
                f"mode {context.mode!r} is not available here: this orchestrator trains in "
                f"{' and '.join(repr(m) for m in sorted(self.runners))} mode"
            )
        op_id = context.operation_id
        channel = OperationChannel(op_id, on_publish=self._writer.submit)
        live = _Live(context, channel)
        snapshot = ProgressSnapshot(
            operation_id=op_id,
            total_epochs=context.total_epochs,
            message="Queued",
            updated_at=utc_now(),
        )
        live.record = self.store.create(
            op_id,
            mode=context.mode,
            metadata=context.metadata(),
            progress=snapshot,
            context=context,  # lets a later process re-attach to a host session
        )
        with self._lock:
            self._live[op_id] = live
            self._ensure_workers()
        channel.publish(snapshot)
        self._queue.put(op_id)
        return OperationHandle(self, op_id)

    def _orphan_reason(self) -> str:
        """Why a host operation left by a dead process is marked ``interrupted`` here."""
        if self.host_runner is None:
            return (
                "the process following this host session stopped before it finished, and no "
                "training host is configured here to re-attach to it (set KTRDR_HOST_URL or pass "
                "host_url); the session may still run on the host"
            )
        if self._follower is None:
            return (
                "the process following this host session stopped before it finished, and the "
                "configured host runner cannot re-attach to sessions; the session may still run "
                "on the host"
            )
        return (
            "the process following this host operation stopped before the host accepted its "
            "session (or before this version stored what re-attaching needs); start the "
            "training again"
        )

    def _reattach_orphans(self) -> list[str]:
        """Take over host operations whose process died and queue them to be followed."""
        reattached: list[str] = []
        for op_id in self.store.claim_orphans(mode="host"):
            try:
                live = self._rebuild(op_id)
            except KtrdrError as exc:  # e.g. deleted meanwhile: never leave it claimed
                log.warning("operation %s: cannot re-attach: %s", op_id, exc.detail)
                with contextlib.suppress(KtrdrError):
                    self.store.transition(
                        op_id, "interrupted", error_message=f"cannot re-attach: {exc.detail}"
                    )
                continue
            if live is None:
                continue
            with self._lock:
                self._live[op_id] = live
                self._ensure_workers()
            self._queue.put(op_id)
            reattached.append(op_id)
        return reattached

    def _rebuild(self, op_id: str) -> _Live | None:
        """The live entry of a claimed host operation, from its stored record and context.

        An unreadable context marks the operation ``interrupted`` (and returns ``None``).
        """
        record = self.store.get(op_id)
        session_id = record.host_session_id or ""
        raw = self.store.stored_context(op_id) or b""
        try:
            context = msgspec.json.decode(raw, type=TrainingOperationContext)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            with contextlib.suppress(KtrdrError):
                self.store.transition(
                    op_id,
                    "interrupted",
                    error_message=f"the process following host session {session_id} stopped, "
                    f"and its stored context cannot be read by this version ({exc}); the "
                    "session may still run on the host; start the training again",
                )
            return None
        live = _Live(context, OperationChannel(op_id, on_publish=self._writer.submit))
        live.record = record
        live.host_session_id = session_id
        live.resumed_from = record.progress
        live.started_at = record.started_at
        if record.status == "cancelling":  # the cancel was under way: carry it through
            live.token.cancel(reason=record.cancellation_reason or "cancelled by request")
        return live

    def _ensure_workers(self) -> None:
        while len(self._workers) < self.max_concurrent:
            worker = threading.Thread(
                target=self._work, name=f"ktrdr-train-{len(self._workers)}", daemon=True
            )
            self._workers.append(worker)
            worker.start()

    # -- running -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            op_id = self._queue.get()
            if op_id is None:
                return
            live = self._live.get(op_id)
            if live is not None:
                try:
                    self._run(op_id, live)
                except Exception as exc:  # never let one run kill the worker
                    log.exception("operation %s: unexpected error in the worker", op_id)
                    with contextlib.suppress(KtrdrError):
                        self._transition(op_id, "failed", error_message=f"internal error: {exc!r}")
                finally:
                    live.done.set()

    def _run(self, op_id: str, live: _Live) -> None:
        context = live.context
        last = live.channel.latest or live.resumed_from
        tracker = ProgressTracker(
            op_id,
            total_epochs=context.total_epochs,
            publish=live.channel.publish,
            on_epoch=lambda row: self._writer.submit_epoch(op_id, row),
            min_interval=self.progress_interval,
            start_sequence=last.sequence if last else 0,
        )
        live.tracker = tracker
        resumed = live.resumed_from
        if resumed is None:
            try:
                self._transition(op_id, "running")
            except StateConflictError:  # cancelled while queued
                tracker.finish("cancelled", "Cancelled before it started")
                self._writer.flush()
                return
        else:  # re-attaching: carry on from where the stored progress left off
            tracker.forward(
                msgspec.structs.replace(
                    resumed,
                    host_session_id=live.host_session_id,
                    message=f"Re-attached to host session {live.host_session_id} on "
                    f"{self.host_url}",
                )
            )
        if live.token.is_set:
            tracker.set_status("cancelling")
        started = live.started_at or utc_now()
        status, error, result = "failed", None, None
        try:
            if resumed is not None and self._follower is not None and live.host_session_id:
                result = self._follower.follow(
                    context, live.host_session_id, token=live.token, tracker=tracker
                )
            elif context.mode == "host" and self.host_runner is not None:
                result = self.host_runner.run(
                    context,
                    token=live.token,
                    tracker=tracker,
                    on_session=lambda session_id: self._attach_session(op_id, live, session_id),
                )
            else:
                result = self.runners[context.mode].run(context, token=live.token, tracker=tracker)
            status = "completed"
        except OperationCancelled as exc:
            status, error = "cancelled", None
            log.info("operation %s cancelled: %s", op_id, exc.detail)
        except KtrdrError as exc:
            error = exc.detail
        except Exception as exc:
            log.exception("operation %s failed", op_id)
            error = f"{type(exc).__name__}: {exc}"
        if status != "completed":
            history = self._history_safely(op_id)
            result = ResultAggregator.partial(
                context,
                history=history,
                started_at=started,
                finished_at=utc_now(),
                cancellation_reason=live.token.reason if status == "cancelled" else None,
                host_session_id=live.host_session_id,
            )
        message = {
            "completed": "Completed",
            "cancelled": f"Cancelled: {live.token.reason}",
            "failed": f"Failed: {error}",
        }[status]
        # The status first, then the final snapshot: a subscriber that sees the final snapshot
        # must find the operation final when it reads the record.
        try:
            self._transition(
                op_id,
                status,
                error_message=error,
                cancellation_reason=live.token.reason if live.token.is_set else None,
                result=result,
            )
        except StateConflictError:  # marked interrupted at shutdown; that stays
            log.info("operation %s ended %s after it was marked final", op_id, status)
        tracker.finish(status, message)  # type: ignore[arg-type]
        self._writer.flush()
        self._record_latency(op_id, live, status)

    def _attach_session(self, op_id: str, live: _Live, session_id: str) -> None:
        """Remember the host session that runs ``op_id`` (store, record and metadata view)."""
        live.host_session_id = session_id
        self.store.set_host_session(op_id, session_id)
        if live.record is not None:
            live.record = msgspec.structs.replace(live.record, host_session_id=session_id)

    def _transition(self, op_id: str, status: Any, **fields: Any) -> OperationSnapshot:
        """Store a transition and remember the record for in-memory reads."""
        try:
            record = self.store.transition(op_id, status, **fields)
        except StateConflictError:
            live = self._live.get(op_id)
            if live is not None:
                live.record = None  # someone else changed it: read the store from now on
            raise
        live = self._live.get(op_id)
        if live is not None:
            live.record = record
        return record

    def _history_safely(self, op_id: str) -> list[Any]:
        self._writer.flush()
        try:
            return self.store.epoch_history(op_id)
        except KtrdrError:
            return []

    def _record_latency(self, op_id: str, live: _Live, status: str) -> None:
        token = live.token
        if token.requested_at is None:
            return
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
        self._latencies.append(latency)
        log.info(
            "operation %s cancel latency: observed after %s ms, %s after %.1f ms",
            op_id,
            latency.observed_ms,
            status,
            latency.final_ms,
        )

    # -- reading -----------------------------------------------------------------------------

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
        """Block until the operation is final (or ``timeout``) and return it."""
        live = self._live.get(operation_id)
        if live is not None:
            live.done.wait(timeout)
            return self.get_operation(operation_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.get_operation(operation_id)
            if record.is_final or (deadline is not None and time.monotonic() >= deadline):
                return record
            time.sleep(0.2)

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
                final = record.progress
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
        return batch, record.is_final

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
        return _decode_result(record.result, TrainingResult)

    def partial_result(self, operation_id: str) -> TrainingResult | None:
        """Whatever result was stored, also for cancelled and failed runs."""
        record = self.get_operation(operation_id)
        return None if record.result is None else _decode_result(record.result, TrainingResult)

    def metrics(self, operation_id: str) -> OperationMetrics:
        """The epoch history with overfitting/plateau flags."""
        self._writer.flush()
        rows = self.store.epoch_history(operation_id)
        return OperationMetrics(
            operation_id=operation_id, epochs=rows, diagnostics=diagnose_history(rows)
        )

    # -- cancelling --------------------------------------------------------------------------

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """Ask an operation to stop. Idempotent while it is active.

        A queued operation is cancelled at once; a running one becomes ``cancelling`` and
        stops within a batch (abort) or after evaluating and saving (graceful).

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the operation is already final (the message gives its status).
        """
        live = self._live.get(operation_id)
        text = reason or ("graceful stop requested" if graceful else "cancelled by request")
        requested = live is not None and not live.done.is_set()
        if requested and live is not None:
            live.token.cancel(graceful=graceful, reason=text)  # first: every batch counts
        record = self.store.get(operation_id)
        # It ended while we looked, with a cancel on record: most likely this one.
        ended_by_cancel = record.cancellation_reason is not None and record.status in (
            "cancelled",
            "completed",
        )
        if record.is_final and requested and ended_by_cancel:
            return record
        if record.is_final:
            raise StateConflictError(
                f"operation {operation_id} cannot be cancelled: it is already {record.status}"
            )
        if live is None:
            raise StateConflictError(
                f"operation {operation_id} is {record.status} in another process; cancel it "
                "through the process (or API) that runs it"
            )
        live.token.cancel(graceful=graceful, reason=text)
        if record.status == "pending":
            try:
                return self._transition(operation_id, "cancelled", cancellation_reason=text)
            except StateConflictError:
                pass  # the worker just picked it up; it will see the token
        with contextlib.suppress(StateConflictError):  # it may have finished meanwhile
            self._transition(operation_id, "cancelling", cancellation_reason=text)
        if live.tracker is not None and not live.done.is_set():
            live.tracker.set_status("cancelling")
        return self.get_operation(operation_id)

    def forget(self, operation_ids: Sequence[str]) -> list[str]:
        """Delete finished operations from the store and from memory; returns those deleted.

        Operations still active, or whose worker is still finishing, are kept.
        """
        ready = []
        for op_id in operation_ids:
            live = self._live.get(op_id)
            if live is None or live.done.is_set():
                ready.append(op_id)
        if not ready:
            return []
        self._writer.flush()
        final = {r.operation_id for r in self._records(ready) if r.is_final}
        doomed = [op_id for op_id in ready if op_id in final]
        self.store.delete(doomed)
        for op_id in doomed:
            self._live.pop(op_id, None)
        return doomed

    def _records(self, operation_ids: Sequence[str]) -> list[OperationSnapshot]:
        records = []
        for op_id in operation_ids:
            with contextlib.suppress(KtrdrError):
                records.append(self.store.get(op_id))
        return records

    # -- diagnostics -------------------------------------------------------------------------

    def health(self) -> HealthReport:
        """Mode, store, queue, active runs, cancel latencies, versions and device."""
        from ktrdr_lib.diagnostics import device_summary

        active, _ = self.store.list_records(status=sorted(ACTIVE_STATUSES), limit=1000)
        pending = [r for r in active if r.status == "pending"]
        return HealthReport(
            status="ok" if not self._closed else "shut down",
            mode=self.runner.mode if self.host_url is None else "local+host",
            store_path=self.store.path,
            store_size_bytes=self.store.size_bytes(),
            max_concurrent=self.max_concurrent,
            queue_depth=len(pending),
            active_operation_ids=[r.operation_id for r in active],
            host_url=self.host_url,
            host_session_ids=[r.host_session_id for r in active if r.host_session_id],
            last_cancel_latencies=list(self._latencies),
            versions=library_versions(),
            device=device_summary(),
        )

    def shutdown(self, *, cancel_running: bool = False, timeout: float | None = 30.0) -> None:
        """Stop taking work. Queued runs are cancelled; running ones may finish (or are
        cancelled with ``cancel_running``) within ``timeout``; any still running after it is
        marked ``interrupted`` (nothing is cancelled silently) and told to stop."""
        self._closed = True
        for op_id, live in list(self._live.items()):
            if live.done.is_set():
                continue
            record = self.store.get(op_id)
            if record.status == "pending" or cancel_running:
                with contextlib.suppress(StateConflictError):
                    self.cancel(op_id, reason="orchestrator shut down")
        for _ in self._workers:
            self._queue.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            worker.join(left)
        for op_id, live in list(self._live.items()):
            if not live.done.is_set():  # still running after the wait: say so, then stop it
                with contextlib.suppress(KtrdrError):
                    self._transition(
                        op_id,
                        "interrupted",
                        error_message="the process shut down before it finished",
                    )
                live.token.cancel(reason="process shut down")
        self._writer.close()
        for runner in self.runners.values():
            close = getattr(runner, "close", None)
            if callable(close):
                close()  # e.g. a host runner's connection pool

    def __enter__(self) -> TrainingOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_running=True)


def _default_concurrency() -> int:
    import torch

    return max(torch.cuda.device_count(), 1)
