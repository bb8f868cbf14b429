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
worker thread (:mod:`ktrdr_lib.operations.live`). At most ``max_concurrent`` runs train at
once; the rest wait ``pending``.

Each run goes to the runner of its mode: ``local`` in this process (or a child of it),
``host`` on a training host (``host_url`` / ``KTRDR_HOST_URL``, see
:mod:`ktrdr_lib.runners.host`); the host session id is stored on the operation and carried by
its snapshots.

Restarts: local runs found active at start-up are marked ``interrupted``; host runs whose
process died are taken over (:mod:`ktrdr_lib.operations.reattach`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.environment import device_summary, library_versions
from ktrdr_lib.errors import (
    ConfigError,
    HostUnavailableError,
    KtrdrError,
    QueueFullError,
    StateConflictError,
)
from ktrdr_lib.operations.handle import OperationHandle, progress_view_class
from ktrdr_lib.operations.live import LiveOperation, OperationExecutor, remove_checkpoints
from ktrdr_lib.operations.owner import owner_alive
from ktrdr_lib.operations.reads import OperationReads
from ktrdr_lib.operations.reattach import claim_orphans, orphan_reason
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.paths import ktrdr_home
from ktrdr_lib.pipeline.context import TrainingOperationContext, build_training_context
from ktrdr_lib.progress.sinks import OperationChannel, StoreWriter
from ktrdr_lib.progress.tracker import PHASE_SPANS
from ktrdr_lib.runners.base import TrainingRunner
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.schemas.health import HealthReport
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.status import ACTIVE_STATUSES, CancelKind, TrainingMode
from ktrdr_lib.schemas.sweeps import SweepSnapshot
from ktrdr_lib.settings import read_float, read_int, read_str
from ktrdr_lib.strategy.spec import StrategySpec
from ktrdr_lib.timestamps import utc_now
from ktrdr_lib.training.loggers import check_loggers, loggers_from_env

__all__ = ["CANCEL_WATCH_INTERVAL", "KEEP_ENDED", "TrainingOrchestrator"]

KEEP_ENDED = 16
"""Ended operations whose in-memory state (live snapshots) is kept; older ones are read from
the store."""
CANCEL_WATCH_INTERVAL = 0.5
"""Seconds between looks for cancels another process stored for this one's runs."""

log = logging.getLogger(__name__)

StrategyRef = str | os.PathLike[str] | StrategySpec


class TrainingOrchestrator(OperationReads):
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
        loggers: experiment loggers for runs whose request names none (``csv``,
            ``tensorboard``, ``mlflow``; default ``KTRDR_LOGGERS``, else none); file-based ones
            write under ``home/runs`` (see :mod:`ktrdr_lib.training.loggers`).
        checkpoint_every: completed epochs between a run's checkpoints (default
            ``KTRDR_CHECKPOINT_EVERY`` or 1; 0 turns checkpoints off). They live in
            ``home/checkpoints/<operation id>`` and are what :meth:`resume` continues from.
        keep_checkpoints_days: how long a completed run's checkpoints are kept (default
            ``KTRDR_CHECKPOINT_KEEP_DAYS`` or 0: removed when the run completes).
        ray_address: a Ray cluster for ``mode="ray"`` runs and sweeps (default
            ``KTRDR_RAY_ADDRESS``; ``local`` starts a Ray in this process). Needs the ``ray``
            extra.
        ray_runner: a ready :class:`~ktrdr_lib.runners.ray.RayTrainingRunner` instead
            (other options); overrides ``ray_address``.
        max_pending: runs that may wait for a free slot here (default ``KTRDR_MAX_PENDING`` or
            100); one more is refused with :class:`~ktrdr_lib.errors.QueueFullError` (HTTP 429)
            and nothing is stored. Ray runs wait on the cluster, not here.
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
        host_runner: TrainingRunner | None = None,
        loggers: Sequence[str] | None = None,
        checkpoint_every: int | None = None,
        keep_checkpoints_days: float | None = None,
        ray_address: str | None = None,
        ray_runner: TrainingRunner | None = None,
        max_pending: int | None = None,
    ) -> None:
        self.home = Path(home) if home is not None else ktrdr_home()
        self.checkpoints_dir = self.home / "checkpoints"
        self.checkpoint_every = (
            read_int("KTRDR_CHECKPOINT_EVERY") if checkpoint_every is None else checkpoint_every
        )
        self.keep_checkpoints_days = (
            read_float("KTRDR_CHECKPOINT_KEEP_DAYS")
            if keep_checkpoints_days is None
            else keep_checkpoints_days
        )
        if self.checkpoint_every < 0 or self.keep_checkpoints_days < 0:
            raise ConfigError(
                "checkpoint_every and keep_checkpoints_days must be >= 0; got "
                f"{self.checkpoint_every} and {self.keep_checkpoints_days}"
            )
        self.loggers = loggers_from_env() if loggers is None else check_loggers(loggers)
        self.max_pending = read_int("KTRDR_MAX_PENDING") if max_pending is None else max_pending
        if self.max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {self.max_pending}")
        self.store = store or OperationStore(self.home / "operations.db")
        self.runners: dict[str, TrainingRunner] = {"local": LocalTrainingRunner()}
        if runner is not None:
            self.runners[runner.mode] = runner
        if host_runner is None and (host_url or read_str("KTRDR_HOST_URL")):
            from ktrdr_lib.runners.host import host_runner_from_env

            host_runner = host_runner_from_env(host_url, host_token)
        self.host_runner = host_runner
        if host_runner is not None:
            self.runners["host"] = host_runner
        if ray_runner is None and (ray_address or read_str("KTRDR_RAY_ADDRESS")):
            from ktrdr_lib.runners.ray import ray_runner_from_env

            ray_runner = ray_runner_from_env(ray_address)
        self.ray_runner = ray_runner
        if ray_runner is not None:
            self.runners["ray"] = ray_runner
        # The runner of the default mode (kept for callers that read ``orchestrator.runner``).
        self.runner: TrainingRunner = runner or self.runners["local"]
        if max_concurrent is not None and max_concurrent < 0:
            raise ConfigError(f"max_concurrent must be >= 1, got {max_concurrent}")
        # None: the GPU count, found when first needed (that imports torch, which a reading
        # command such as `ktrdr operations list` never needs)
        self._max_concurrent = max_concurrent or None
        if progress_interval < 0:
            raise ConfigError(f"progress_interval must be >= 0, got {progress_interval}")
        self.progress_interval = progress_interval
        self.data_dir = data_dir
        self.models_dir = Path(models_dir) if models_dir is not None else self.home / "models"
        for each in self.runners.values():  # e.g. a process runner's warm workers
            warm_up = getattr(each, "warm_up", None)
            if callable(warm_up):
                warm_up()
        self._writer = StoreWriter(self.store)
        self._executor = OperationExecutor(
            self.store, self._writer, self.runners, progress_interval=progress_interval
        )
        self._executor.keep_completed_checkpoints_days = self.keep_checkpoints_days
        self._executor.register = self._adopt
        self._executor.on_done = self._release
        self._live: dict[str, LiveOperation] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._followers: list[threading.Thread] = []  # one per ray-mode run
        self._ended: collections.deque[str] = collections.deque()
        self._cancel_watcher = threading.Thread(
            target=self._watch_cancels, name="ktrdr-cancel-watch", daemon=True
        )
        self._closed = False
        interrupted = self.store.mark_interrupted(
            mode="local", reason="the process running this operation stopped before it finished"
        )
        self._cancel_watcher.start()
        # Host sessions and Ray actors keep running when the process following them dies:
        # take them over.
        reattached: list[str] = []
        for mode, remote in (("host", host_runner), ("ray", ray_runner)):
            if remote is not None and remote.can_reattach:
                for live in claim_orphans(self.store, self._writer, mode):
                    self._enqueue(live)
                    reattached.append(live.context.operation_id)
            interrupted += self.store.mark_interrupted(
                mode=mode, reason=orphan_reason(remote, mode)
            )
        if interrupted:
            log.warning("marked %d operation(s) interrupted: %s", len(interrupted), interrupted)
        if reattached:
            log.warning("re-attached to %d remote run(s): %s", len(reattached), reattached)

    @property
    def host_url(self) -> str | None:
        """The training host ``mode="host"`` runs go to, or ``None`` when none is configured."""
        url = getattr(self.runners.get("host"), "host_url", None)
        return url if isinstance(url, str) else None

    # -- starting ----------------------------------------------------------------------------

    def start_training(
        self,
        strategy: StrategyRef,
        request: TrainingRequest | None = None,
        *,
        mode: TrainingMode = "local",
        operation_id: str | None = None,
        **fields: Any,
    ) -> OperationHandle:
        """Validate the request, store a ``pending`` operation and queue it; returns at once.

        Args:
            strategy: a strategy name, a path to its YAML file, or a loaded StrategySpec.
            request: what to train on (see :class:`~ktrdr_lib.schemas.TrainingRequest`).
            mode: ``local`` or ``host``.
            operation_id: use this id (must be new) instead of a fresh one.
            fields: :class:`~ktrdr_lib.schemas.TrainingRequest` fields, instead of or on top
                of ``request`` (``symbols=["AAPL"], epochs=5``).

        Raises:
            ConfigError / StrategyNotFoundError: the request is invalid (nothing is stored).
            StateConflictError: ``operation_id`` is taken.
        """
        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        if (
            self.loggers
            and "loggers" not in fields
            and (request is None or request.loggers is None)
        ):
            fields["loggers"] = list(self.loggers)
        context = build_training_context(
            strategy,
            request,
            mode=mode,
            data_dir=self.data_dir,
            models_dir=self.models_dir,
            operation_id=operation_id,
            runs_dir=self.home / "runs",
            checkpoints_dir=self.checkpoints_dir,
            checkpoint_every=self.checkpoint_every,
            **fields,
        )
        return self.submit(context)

    def resume(self, operation_id: str) -> OperationHandle:
        """Continue a ``cancelled``, ``failed`` or ``interrupted`` run from its last checkpoint.

        The continuation is a new operation linked to the stopped one (``resumed_from`` in its
        context and metadata; the stopped one stays as it ended: a final status is never
        rewritten). It starts with the stopped run's completed epochs in its history and its
        percentage, and trains the remaining epochs exactly as the uninterrupted run would
        have (same weights, optimiser, shuffling, RNG and early-stopping state).

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the operation is active or completed, or left no checkpoint.
            ConfigError / DataError: the strategy file or the data changed since the
                checkpoint (the message names what).
        """
        from ktrdr_lib.pipeline.context import new_operation_id
        from ktrdr_lib.pipeline.resume import check_resumable

        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        record = self.store.get(operation_id)
        if record.operation_type == "sweep":
            raise StateConflictError(
                f"operation {operation_id} is a sweep: a sweep cannot be resumed; resume its "
                "trials one by one, or start the sweep again"
            )
        if record.status not in ("cancelled", "failed", "interrupted"):
            raise StateConflictError(
                f"operation {operation_id} is {record.status}: only a cancelled, failed or "
                "interrupted run can be resumed"
            )
        raw = self.store.stored_context(operation_id)
        if raw is None:
            raise StateConflictError(
                f"operation {operation_id} was stored by a version that kept no context; "
                "start the training again"
            )
        stopped = msgspec.json.decode(raw, type=TrainingOperationContext)
        new_id = new_operation_id()
        if stopped.mode == "host":  # its checkpoint is on the host, which checks it there
            if record.host_session_id is None:
                raise StateConflictError(
                    f"operation {operation_id} stopped before the training host accepted it: "
                    "it has no session (and no checkpoint) to resume; start it again"
                )
            history = self.store.epoch_history(operation_id)
            start_epoch = history[-1].epoch if history else 0
            context = msgspec.structs.replace(
                stopped,
                operation_id=new_id,
                resume_from=record.host_session_id,
                resumed_from=operation_id,
                created_at=utc_now(),
            )
        else:
            start_epoch = check_resumable(stopped).epoch
            history = self.store.epoch_history(operation_id)
            context = msgspec.structs.replace(
                stopped,
                operation_id=new_id,
                resume_from=stopped.checkpoint_dir,
                resumed_from=operation_id,
                checkpoint_dir=str(self.checkpoints_dir / new_id),
                created_at=utc_now(),
            )
        return self.submit(
            context,
            history=[row for row in history if row.epoch <= start_epoch],
            start_epoch=start_epoch,
            message=f"Resuming {operation_id} after epoch {start_epoch}",
        )

    def sweep(
        self,
        strategy: StrategyRef,
        space: Mapping[str, Any],
        request: TrainingRequest | None = None,
        *,
        metric: str = "val_loss",
        mode: str | None = None,
        search: str = "grid",
        num_samples: int | None = None,
        max_concurrent: int | None = None,
        early_stop: str | None = None,
        grace_period: int = 1,
        reduction_factor: float = 2.0,
        best_model_name: str | None = None,
        sweep_id: str | None = None,
        **fields: Any,
    ) -> OperationHandle:
        """Train ``strategy`` over a space of settings on Ray; returns the sweep's handle at
        once (see :mod:`ktrdr_lib.operations.sweep`).

        Args:
            strategy: a strategy name, a path to its YAML file, or a loaded StrategySpec.
            space: dotted override paths (as ``overrides`` takes them) → the values to try
                (lists; with ``search="random"`` also Ray Tune domains such as
                ``tune.loguniform(1e-4, 1e-2)``).
            request: what every trial trains on (symbols, dates, epochs, seed, ...).
            metric: what ranks the trials: ``val_loss``, ``val_accuracy``, ``train_loss`` or
                ``train_accuracy`` (the best value over a trial's epochs).
            mode: ``min`` or ``max`` (default: the metric's natural direction).
            search: ``grid`` (every combination, ``num_samples`` times) or ``random``
                (``num_samples`` draws, seeded by the request's ``seed``).
            num_samples: see ``search`` (default 1 for grid, 8 for random).
            max_concurrent: trials training at once (default: as many as the cluster's CPUs
                hold at each trial's ``num_cpus``).
            early_stop: ``"asha"``: Ray Tune's ASHA scheduler stops trials that fall behind
                (gracefully, after the epoch under way), or ``None``.
            grace_period: epochs every trial trains before ASHA may stop it.
            reduction_factor: ASHA's halving rate.
            best_model_name: the name the best trial's model is saved under again (default
                ``<strategy>_sweep_best``).
            sweep_id: use this id (must be new) instead of a fresh one.
            fields: :class:`~ktrdr_lib.schemas.TrainingRequest` fields for every trial.

        Raises:
            ConfigError: the space, a trial's settings, the metric or another option is
                wrong (named), Ray is not installed or no cluster is configured; nothing is
                stored.
            StateConflictError: ``sweep_id`` is taken.
        """
        from ktrdr_lib.operations.sweep import SweepRun, plan_sweep
        from ktrdr_lib.pipeline.context import new_operation_id, training_request
        from ktrdr_lib.strategy.discovery import resolve_strategy
        from ktrdr_lib.strategy.loader import load_strategy

        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        self._require_mode("ray")
        runner = self.runners["ray"]
        if (
            self.loggers
            and "loggers" not in fields
            and (request is None or request.loggers is None)
        ):
            fields["loggers"] = list(self.loggers)
        base = training_request(request, fields)
        if isinstance(strategy, StrategySpec):
            spec, label = strategy, strategy.name
        else:
            spec = load_strategy(resolve_strategy(strategy))
            label = str(strategy) if not str(strategy).endswith((".yaml", ".yml")) else spec.name
        sweep_id = sweep_id or new_operation_id().replace("op_training_", "op_sweep_", 1)
        if self.store.exists(sweep_id):
            raise StateConflictError(f"operation id {sweep_id} is taken; use a new one")

        def build(overrides: dict[str, Any], operation_id: str) -> TrainingOperationContext:
            trial_request = msgspec.structs.replace(base, overrides=overrides, epochs=None)
            return build_training_context(
                spec,
                trial_request,
                mode="ray",
                data_dir=self.data_dir,
                models_dir=self.models_dir,
                operation_id=operation_id,
                runs_dir=self.home / "runs",
            )

        def concurrency(context: TrainingOperationContext) -> int:
            cpus, _ = runner.resources(context)  # type: ignore[attr-defined]
            total = runner.connect().cluster_resources().get("CPU", 1.0)  # type: ignore[attr-defined]
            return max(int(total // max(cpus, 1e-9)), 1)

        plan = plan_sweep(
            sweep_id,
            label,
            space,
            metric=metric,
            mode=mode,
            search=search,
            num_samples=num_samples,
            max_concurrent=max_concurrent,
            early_stop=early_stop,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            best_model_name=best_model_name,
            seed=base.seed,
            base_overrides=base.merged_overrides(),
            build=build,
            new_id=new_operation_id,
            default_concurrency=concurrency,
        )
        runner.resources(plan.contexts[0])  # type: ignore[attr-defined]
        record = self.store.create(
            sweep_id,
            operation_type="sweep",
            mode="ray",
            metadata=plan.metadata(),
            progress=ProgressSnapshot(
                operation_id=sweep_id,
                phase="queued",
                message=f"Queued: {len(plan.contexts)} trials",
                items_total=len(plan.contexts),
                updated_at=utc_now(),
            ),
        )
        trials = []
        trial_configs = plan.metadata()["trial_configs"]
        for index, (context, config) in enumerate(zip(plan.contexts, trial_configs, strict=True)):
            op_id = context.operation_id
            snapshot = ProgressSnapshot(
                operation_id=op_id,
                total_epochs=context.total_epochs,
                message=f"Queued: trial {index} of sweep {sweep_id}",
                updated_at=utc_now(),
            )
            live = LiveOperation(context, OperationChannel(op_id, on_publish=self._writer.submit))
            live.record = self.store.create(
                op_id,
                mode="ray",
                metadata={
                    **context.metadata(),
                    "sweep_id": sweep_id,
                    "sweep_trial": index,
                    "trial_config": config,
                },
                progress=snapshot,
                context=context,
            )
            live.channel.publish(snapshot)
            trials.append(live)
        template = msgspec.structs.replace(plan.contexts[0], operation_id=sweep_id)
        sweep_live = LiveOperation(
            template, OperationChannel(sweep_id, on_publish=self._writer.submit)
        )
        sweep_live.record = record
        run = SweepRun(self, plan, sweep_live, trials)
        with self._lock:
            self._live[sweep_id] = sweep_live
            self._followers.append(run.thread)
            for live in trials:
                self._live[live.context.operation_id] = live
        run.start()
        return OperationHandle(self, sweep_id)

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        """A sweep as it stands: its record, settings, every trial and, once ended, the
        ranked result.

        Raises:
            NotFoundError: unknown id, or an operation that is not a sweep.
        """
        from ktrdr_lib.operations.sweep import read_sweep

        return read_sweep(self, sweep_id)

    def follow_sweep(
        self, sweep_id: str, *, interval: float = 0.5, timeout: float | None = None
    ) -> Iterator[SweepSnapshot]:
        """Yield the sweep each time it changes (at most every ``interval`` s) until it ends;
        the last one has the result. ``timeout`` bounds the whole follow."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: bytes | None = None
        while True:
            snapshot = self.get_sweep(sweep_id)
            encoded = msgspec.json.encode(
                [snapshot.trials, snapshot.operation.status, snapshot.operation.progress.message]
            )
            if encoded != last:
                last = encoded
                yield snapshot
            if snapshot.operation.is_final:
                live = self._live.get(sweep_id)
                if live is None or live.done.is_set():
                    final = self.get_sweep(sweep_id)
                    if msgspec.json.encode(final) != msgspec.json.encode(snapshot):
                        yield final
                    return
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(interval)

    def train(
        self,
        strategy: StrategyRef,
        request: TrainingRequest | None = None,
        *,
        mode: TrainingMode = "local",
        display: str = "auto",
        **fields: Any,
    ) -> OperationHandle:
        """:meth:`start_training`, then show its progress view; returns the handle at once.

        ``display`` is the view's mode (``auto``, ``widget``, ``html``, ``text`` or ``off``).
        The cell returns while the run trains in a worker thread, so the view's Cancel button
        stays live.

        Example:
            >>> op = orch.train("rsi_mean_reversion", epochs=5)     # doctest: +SKIP
        """
        progress_view_class().check_mode(display)  # a bad mode raises before anything starts
        handle = self.start_training(strategy, request, mode=mode, **fields)
        handle.display(display)
        return handle

    def submit(
        self,
        context: TrainingOperationContext,
        *,
        history: Sequence[EpochHistoryRow] = (),
        start_epoch: int = 0,
        message: str = "Queued",
    ) -> OperationHandle:
        """Store and queue an already built context (a resumed run's with the epochs it
        continues and the history rows of those)."""
        if self._closed:
            raise StateConflictError("this orchestrator is shut down; create a new one")
        self._require_mode(context.mode)
        self._check_queue(context.mode)
        op_id = context.operation_id
        if self.store.exists(op_id):
            raise StateConflictError(f"operation id {op_id} is taken; use a new one")
        check_resources = getattr(self.runners[context.mode], "resources", None)
        if callable(check_resources):  # a Ray run the cluster can never place: refuse now
            check_resources(context)
        live = LiveOperation(context, OperationChannel(op_id, on_publish=self._writer.submit))
        start, end = PHASE_SPANS["train"]
        live.start_percentage = (
            round(start + (end - start) * start_epoch / context.total_epochs, 2)
            if start_epoch
            else 0.0
        )
        snapshot = ProgressSnapshot(
            operation_id=op_id,
            total_epochs=context.total_epochs,
            epoch=start_epoch,
            metrics_epoch=start_epoch,
            percentage=live.start_percentage,
            message=message,
            updated_at=utc_now(),
        )
        live.record = self.store.create(
            op_id,
            mode=context.mode,
            metadata={
                **context.metadata(),
                **({"resumed_after_epoch": start_epoch} if start_epoch else {}),
            },
            progress=snapshot,
            context=context,  # lets a later process re-attach or resume
        )
        for row in history:
            self.store.append_epoch(op_id, row)
        live.channel.publish(snapshot)
        self._enqueue(live)
        return OperationHandle(self, op_id)

    def _check_queue(self, mode: str) -> None:
        """Refuse a run that would wait behind ``max_pending`` others here."""
        if mode == "ray":
            return
        with self._lock:
            waiting = sum(
                1
                for live in self._live.values()
                if live.context.mode != "ray"
                and live.record is not None
                and live.record.status == "pending"
            )
        if waiting >= self.max_pending:
            raise QueueFullError(
                f"{waiting} runs already wait to start here (max_pending {self.max_pending}, "
                "KTRDR_MAX_PENDING); nothing was stored. Try again once some have started, "
                "or cancel queued runs.",
                retry_after_s=30.0,
            )

    def _release(self, operation_id: str) -> None:
        """An operation ended: keep its in-memory state (its snapshots, for a stream that
        resumes after a dropped connection) only for the last :data:`KEEP_ENDED` that
        ended; the store answers for the rest (a long-lived server keeps no record of
        every run it ever ran)."""
        with self._lock:
            self._ended.append(operation_id)
            while len(self._ended) > KEEP_ENDED:
                self._live.pop(self._ended.popleft(), None)

    def _adopt(self, live: LiveOperation) -> None:
        """Know a child operation a run started (a placebo): reads and cancel find it."""
        with self._lock:
            self._live[live.context.operation_id] = live

    def _require_mode(self, mode: str) -> None:
        """Raise unless a runner for ``mode`` is configured (the error says how to get one)."""
        if mode in self.runners:
            return
        if mode == "ray":
            from ktrdr_lib.runners.ray import import_ray

            import_ray()  # without the extra: the error names it
            raise ConfigError(
                "no Ray cluster is configured: set KTRDR_RAY_ADDRESS (a cluster address, or "
                "'local' for a Ray on this machine) or pass ray_address, to train in ray mode"
            )
        if mode == "host":
            raise HostUnavailableError(
                "no training host is configured: set KTRDR_HOST_URL (or pass host_url) "
                "to train in host mode, or use mode 'local'"
            )
        raise ConfigError(
            f"mode {mode!r} is not available here: this orchestrator trains in "
            f"{' and '.join(repr(m) for m in sorted(self.runners))} mode"
        )

    def _enqueue(self, live: LiveOperation) -> None:
        op_id = live.context.operation_id
        if live.context.mode == "ray":  # Ray queues on the cluster's resources, not here
            with self._lock:
                self._live[op_id] = live
            follower = threading.Thread(
                target=self._run_one, args=(live,), name=f"ktrdr-ray-{op_id}", daemon=True
            )
            with self._lock:
                self._followers.append(follower)
            follower.start()
            return
        with self._lock:
            self._live[op_id] = live
            while len(self._workers) < self.max_concurrent:
                worker = threading.Thread(
                    target=self._work, name=f"ktrdr-train-{len(self._workers)}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
        self._queue.put(op_id)

    def _work(self) -> None:
        while (op_id := self._queue.get()) is not None:
            live = self._live.get(op_id)
            if live is not None:
                self._run_one(live)

    def _run_one(self, live: LiveOperation) -> None:
        if live.context.mode == "ray":
            message = f"Re-attached to Ray actor {live.host_session_id}"
        else:
            message = f"Re-attached to host session {live.host_session_id} on {self.host_url}"
        self._executor.run_safely(live, reattach_message=message)

    def _transition(self, op_id: str, status: Any, **fields: Any) -> OperationSnapshot:
        return self._executor.transition(self._live.get(op_id), op_id, status, **fields)

    # -- cancelling --------------------------------------------------------------------------

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """Ask an operation to stop. Idempotent while it is active.

        A queued operation is cancelled at once; a running one becomes ``cancelling`` and
        stops within a batch (abort, ends ``cancelled``) or finishes its running epoch, its
        validation included, then evaluates and saves (graceful, ends ``completed`` with the
        reason on record). An abort after a graceful request escalates it: the run stops
        within a batch and ends ``cancelled`` with the abort's reason.

        An operation another process runs (sharing this store: a terminal and a notebook on
        one ``KTRDR_HOME``) is cancelled through the store: its process honours the request
        within a second (see :meth:`_watch_cancels`).

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the operation is already final (the message gives its status).
        """
        live = self._live.get(operation_id)
        text = reason or ("graceful stop requested" if graceful else "cancelled by request")
        # Only the first request of a run still in hand can be the one a final state answers.
        first_request = live is not None and not live.done.is_set() and not live.token.is_set
        if first_request and live is not None:
            live.token.cancel(graceful=graceful, reason=text)  # first: every batch counts
        record = self.store.get(operation_id)
        # It ended while we looked, with a cancel on record: most likely this one.
        ended_by_cancel = record.cancellation_reason is not None and record.status in (
            "cancelled",
            "completed",
        )
        if record.is_final and first_request and ended_by_cancel:
            return record
        if record.is_final:
            raise StateConflictError(
                f"operation {operation_id} cannot be cancelled: it is already {record.status}"
            )
        if live is None:
            return self._cancel_elsewhere(record, graceful=graceful, reason=text)
        live.token.cancel(graceful=graceful, reason=text)
        kind = "graceful" if live.token.graceful else "abort"
        if record.status == "pending":
            try:
                cancelled = self._transition(
                    operation_id, "cancelled", cancellation_reason=text, cancel_kind=kind
                )
            except StateConflictError:
                pass  # the worker just picked it up; it will see the token
            else:  # it never ran: acted on and ended by this very call
                live.token.mark_observed()
                self._executor.record_latency(live, "cancelled")
                return cancelled
        with contextlib.suppress(StateConflictError):  # it may have finished meanwhile
            # Stored with its kind: a restart that finds a graceful stop under way (a host
            # run re-attached) completes it as graceful; an abort escalates it, reason too.
            self._transition(
                operation_id, "cancelling", cancellation_reason=live.token.reason, cancel_kind=kind
            )
        if live.tracker is not None and not live.done.is_set():
            live.tracker.set_status("cancelling")
        return self.get_operation(operation_id)

    def _cancel_elsewhere(
        self, record: OperationSnapshot, *, graceful: bool, reason: str
    ) -> OperationSnapshot:
        """Cancel an operation another process runs, through the shared store: a queued one
        at once; a running one is marked ``cancelling`` with its kind and reason, and the
        owning process's watcher stops it within a second. One whose process died is
        ``interrupted`` (a remote run's next orchestrator carries the cancel through)."""
        op_id = record.operation_id
        kind: CancelKind = "graceful" if graceful else "abort"
        if record.status == "pending":
            with contextlib.suppress(StateConflictError):  # its owner just started it
                return self.store.transition(
                    op_id, "cancelled", cancellation_reason=reason, cancel_kind=kind
                )
        if not owner_alive(self.store.owner(op_id)) and record.mode == "local":
            with contextlib.suppress(StateConflictError):
                return self.store.transition(
                    op_id,
                    "interrupted",
                    error_message="the process running this operation stopped before it "
                    f"finished (found while cancelling it: {reason})",
                )
        with contextlib.suppress(StateConflictError):  # it may have ended meanwhile
            return self.store.transition(
                op_id, "cancelling", cancellation_reason=reason, cancel_kind=kind
            )
        return self.store.get(op_id)

    def _watch_cancels(self) -> None:
        """Thread: honour cancels other processes stored for operations this one runs (a
        terminal's ``ktrdr operations cancel`` for a notebook's run), within ``interval``."""
        while not self._closed:
            time.sleep(CANCEL_WATCH_INTERVAL)
            with self._lock:
                watched = [  # started here (a queued one cancelled elsewhere never starts)
                    live
                    for live in self._live.values()
                    if live.tracker is not None
                    and not live.done.is_set()
                    and (not live.token.is_set or live.token.graceful)
                ]
            for live in watched:
                op_id = live.context.operation_id
                try:
                    record = self.store.get(op_id)
                except KtrdrError:
                    continue
                if record.status != "cancelling" or record.cancel_kind is None:
                    continue
                graceful = record.cancel_kind == "graceful"
                if live.token.is_set and (graceful or not live.token.graceful):
                    continue  # already asked for as much
                log.info(
                    "operation %s: cancel from another process: %s",
                    op_id,
                    record.cancellation_reason,
                )
                live.record = None  # read the store: another process changed the record
                live.token.cancel(
                    graceful=graceful, reason=record.cancellation_reason or "cancelled by request"
                )
                if live.tracker is not None and not live.done.is_set():
                    live.tracker.set_status("cancelling")

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
            remove_checkpoints(str(self.checkpoints_dir / op_id))
        return doomed

    def prune_checkpoints(self) -> list[str]:
        """Remove checkpoints nobody can resume from any more: those of completed runs older
        than ``keep_checkpoints_days`` and those of operations no longer stored. Returns the
        operation ids whose checkpoints went."""
        if not self.checkpoints_dir.is_dir():
            return []
        cutoff = time.time() - self.keep_checkpoints_days * 86400
        removed = []
        for directory in sorted(self.checkpoints_dir.iterdir()):
            if not directory.is_dir():
                continue
            try:
                record = self.store.get(directory.name)
            except KtrdrError:
                record = None
            stale = record is None or (
                record.status == "completed" and directory.stat().st_mtime <= cutoff
            )
            if stale:
                remove_checkpoints(str(directory))
                removed.append(directory.name)
        return removed

    def checkpoints_bytes(self) -> int:
        """Disk space the checkpoints use."""
        if not self.checkpoints_dir.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.checkpoints_dir.rglob("*") if f.is_file())

    def _records(self, operation_ids: Sequence[str]) -> list[OperationSnapshot]:
        records = []
        for op_id in operation_ids:
            with contextlib.suppress(KtrdrError):
                records.append(self.store.get(op_id))
        return records

    # -- diagnostics -------------------------------------------------------------------------

    def health(self) -> HealthReport:
        """Mode, store, queue, active runs, cancel latencies, versions and device."""

        active, _ = self.store.list_records(status=sorted(ACTIVE_STATUSES), limit=1000)
        pending = [r for r in active if r.status == "pending"]
        return HealthReport(
            status="ok" if not self._closed else "shut down",
            mode="+".join(mode for mode in ("local", "host", "ray") if mode in self.runners),
            store_path=self.store.path,
            store_size_bytes=self.store.size_bytes(),
            max_concurrent=self.max_concurrent,
            queue_depth=len(pending),
            active_operation_ids=[r.operation_id for r in active],
            host_url=self.host_url,
            host_session_ids=[r.host_session_id for r in active if r.host_session_id],
            last_cancel_latencies=list(self._executor.latencies),
            versions=library_versions(),
            device=device_summary(),
            checkpoints_path=str(self.checkpoints_dir),
            checkpoints_bytes=self.checkpoints_bytes(),
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
        for worker in [*self._workers, *self._followers]:
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

    @property
    def max_concurrent(self) -> int:
        """Runs that train at once (default 1 on CPU, the GPU count with CUDA)."""
        if self._max_concurrent is None:
            self._max_concurrent = _default_concurrency()
        return self._max_concurrent

    def __enter__(self) -> TrainingOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_running=True)


def _default_concurrency() -> int:  # torch's CUDA count (at least 1)
    import torch

    return max(torch.cuda.device_count(), 1)
