"""LocalBackend: the commands in this process, over the orchestrator, model store and files.

Operations live in the store under ``KTRDR_HOME`` (``operations.db``), so ``ktrdr operations``
also sees the runs of other processes there (a ``ktrdr serve api`` on the same home, say);
only the process that runs an operation can cancel it. The orchestrator is created on first
use: listing models or strategies never opens the store or imports Lightning.

Example:
    >>> from ktrdr_lib.schemas.requests import TrainingRequest
    >>> backend = LocalBackend(data_dir="data")                          # doctest: +SKIP
    >>> op_id = backend.start_training("small_test", TrainingRequest(epochs=1))  # doctest: +SKIP
    >>> backend.wait(op_id).status                                       # doctest: +SKIP
    'completed'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ktrdr_lib.schemas.operations import FinalEvent, OperationSnapshot
from ktrdr_lib.schemas.v1 import OperationListItem, OperationListResponse
from ktrdr_lib.settings import read_str

if TYPE_CHECKING:
    from ktrdr_lib.cli.backend import StreamEvent
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.runners.base import TrainingRunner
    from ktrdr_lib.schemas.models import ModelInfo
    from ktrdr_lib.schemas.requests import TrainingRequest
    from ktrdr_lib.schemas.results import FeatureReport, TrainingAnalytics, TrainingResult
    from ktrdr_lib.schemas.status import TrainingMode
    from ktrdr_lib.schemas.strategies import StrategyCheck, StrategyListing
    from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot

__all__ = ["LocalBackend"]

# ``--status running`` also lists the runs that are stopping (as the API's filter does).
_STATUS_FILTER: dict[str, list[str]] = {"running": ["running", "cancelling"]}


class LocalBackend:
    """The :class:`~ktrdr_lib.cli.backend.Backend` of this process.

    Args:
        orchestrator: the orchestrator to use (tests pass one on an in-memory store); by
            default one is created on first use, on the store under ``KTRDR_HOME``.
        data_dir: OHLCV directory for the trainings it starts (default ``KTRDR_DATA_DIR`` or
            the bundled samples); ignored when ``orchestrator`` is given.
        save_model: whether the trainings it starts save their model (locally and on Ray);
            ignored when ``orchestrator`` is given.
        ray_address: the Ray cluster for ``ray``-mode runs and sweeps (``local`` starts a Ray
            in this process; default ``KTRDR_RAY_ADDRESS``); ignored when ``orchestrator`` is
            given.
    """

    def __init__(
        self,
        orchestrator: TrainingOrchestrator | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        save_model: bool = True,
        ray_address: str | None = None,
    ) -> None:
        self._orchestrator = orchestrator
        self._data_dir = data_dir
        self._save_model = save_model
        self._ray_address = ray_address
        self._started: list[str] = []

    @property
    def location(self) -> str | None:
        """``None``: this process."""
        return None

    @property
    def orchestrator(self) -> TrainingOrchestrator:
        """The orchestrator (created on first use)."""
        if self._orchestrator is None:
            from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
            from ktrdr_lib.runners.local import LocalTrainingRunner

            self._orchestrator = TrainingOrchestrator(
                data_dir=self._data_dir,
                runner=LocalTrainingRunner(save_model=self._save_model),
                ray_runner=self._ray_runner(),
            )
        return self._orchestrator

    def _ray_runner(self) -> TrainingRunner | None:
        """A Ray runner for ``ray_address`` (else ``KTRDR_RAY_ADDRESS``) that saves as this
        backend does, or ``None`` when neither names a cluster."""
        from ktrdr_lib.runners.ray import RAY_ADDRESS_ENV

        address = self._ray_address or read_str(RAY_ADDRESS_ENV)
        if address is None:
            return None
        from ktrdr_lib.runners.ray import RayTrainingRunner

        return RayTrainingRunner(address, save_model=self._save_model)

    # -- trainings ---------------------------------------------------------------------------

    def start_training(
        self, strategy: str, request: TrainingRequest, *, mode: TrainingMode = "local"
    ) -> str:
        """Start a training from this process (in it, on the host, or on Ray); ``strategy``
        is a name or a YAML path."""
        orchestrator = self.orchestrator
        op_id = orchestrator.start_training(strategy, request, mode=mode).operation_id
        self._started.append(op_id)
        return op_id

    # -- sweeps ------------------------------------------------------------------------------

    def start_sweep(self, request: SweepRequest) -> str:
        """Start a sweep from this process on its Ray cluster; ``request.strategy`` is a name
        or a YAML path."""
        from ktrdr_lib.schemas.requests import TrainingRequest

        shared = TrainingRequest(
            **{name: getattr(request, name) for name in TrainingRequest.__struct_fields__}
        )
        handle = self.orchestrator.sweep(
            request.strategy,
            request.space,
            shared,
            metric=request.metric,
            mode=request.mode,
            search=request.search,
            num_samples=request.num_samples,
            max_concurrent=request.max_concurrent,
            early_stop=request.early_stop,
            grace_period=request.grace_period,
            reduction_factor=request.reduction_factor,
            best_model_name=request.best_model_name,
        )
        self._started.append(handle.operation_id)
        return handle.operation_id

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        """The sweep from the store (with its trials' live progress when they run here)."""
        return self.orchestrator.get_sweep(sweep_id)

    def sweep_snapshots(self, sweep_id: str) -> Iterator[SweepSnapshot]:
        """The orchestrator's :meth:`follow_sweep`: each change, then the final sweep."""
        yield from self.orchestrator.follow_sweep(sweep_id)

    def events(self, operation_id: str) -> Iterator[StreamEvent]:
        """The operation's snapshots until the final one, then its :class:`FinalEvent`."""
        yield from self.orchestrator.follow(operation_id)
        record = self.orchestrator.wait(operation_id)
        yield FinalEvent(
            operation_id=operation_id,
            status=record.status,
            error_message=record.error_message,
            cancellation_reason=record.cancellation_reason,
            sequence=record.progress.sequence,
        )

    def result(self, operation_id: str) -> TrainingResult:
        """The result the store holds (partial for a cancelled or failed run)."""
        record = self.orchestrator.get_operation(operation_id)
        if record.result is None:
            return self.orchestrator.result(operation_id)  # raises, saying why there is none
        return record.result

    def analytics(self, operation_id: str) -> TrainingAnalytics:
        """The analytics the stored result carries."""
        from ktrdr_lib.training.analytics import recorded_analytics

        return recorded_analytics(self.orchestrator.get_operation(operation_id))

    def result_document(self, operation_id: str) -> TrainingResult:
        """The TrainingResult of a completed run."""
        return self.orchestrator.result(operation_id)

    # -- operations --------------------------------------------------------------------------

    def forget_finished(
        self, *, keep_days: float | None = None, keep_count: int | None = None
    ) -> list[str]:
        """The retention policy (:mod:`ktrdr_lib.operations.retention`) on this store; the
        arguments replace its settings for this call."""
        from ktrdr_lib.operations.retention import OperationRetention, retention_settings

        keep_s, count = retention_settings()
        keeper = OperationRetention(
            self.orchestrator,
            keep_s=keep_s if keep_days is None else keep_days * 86400.0,
            max_finished=count if keep_count is None else keep_count,
        )
        return keeper.prune()

    def prune_checkpoints(self, *, keep_days: float | None = None) -> tuple[list[str], int]:
        """The orchestrator's :meth:`prune_checkpoints` (``keep_days`` for this call)."""
        orchestrator = self.orchestrator
        if keep_days is not None:
            orchestrator.keep_checkpoints_days = keep_days
        return orchestrator.prune_checkpoints(), orchestrator.checkpoints_bytes()

    def resume(self, operation_id: str) -> str:
        """Continue a stopped run of this machine's store from its checkpoint (in this
        process); the new operation's id."""
        op_id = self.orchestrator.resume(operation_id).operation_id
        self._started.append(op_id)
        return op_id

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """Ask a run of this process to stop (one of another process raises
        StateConflictError, which says where to cancel it)."""
        return self.orchestrator.cancel(operation_id, graceful=graceful, reason=reason)

    def get_operation(self, operation_id: str) -> OperationSnapshot:
        """The stored operation, with live progress when it runs here."""
        return self.orchestrator.get_operation(operation_id)

    def wait(self, operation_id: str, *, timeout: float | None = None) -> OperationSnapshot:
        """The operation once it is final (or after ``timeout`` seconds)."""
        return self.orchestrator.wait(operation_id, timeout=timeout)

    def operation_document(self, operation_id: str) -> OperationSnapshot:
        """The core record, as ``--json`` prints it."""
        return self.get_operation(operation_id)

    def list_operations(self, *, status: str | None, limit: int) -> OperationListResponse:
        """The store's operations as the API's list rows (``status`` stays the precise one)."""
        statuses = None if status is None else _STATUS_FILTER.get(status, [status])
        page = self.orchestrator.list_operations(status=statuses, limit=limit)
        return OperationListResponse(
            success=True,
            total_count=page.total_count,
            active_count=page.active_count,
            data=[_list_row(record) for record in page.items],
        )

    # -- models and strategies ---------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """The model store's versions (the orchestrator's models directory when one was
        given, else ``KTRDR_HOME/models``)."""
        from ktrdr_lib.models.store import ModelStore

        root = self._orchestrator.models_dir if self._orchestrator is not None else None
        return ModelStore(root).list_models()

    def list_strategies(self) -> list[StrategyListing]:
        """``KTRDR_STRATEGIES_DIR`` first, then the shipped examples."""
        from ktrdr_lib.strategy.discovery import list_strategies

        return list_strategies()

    def check_strategy(self, text: str, *, file: str) -> StrategyCheck:
        """Every problem and notice of the text, each naming ``file`` and its line."""
        from ktrdr_lib.strategy.loader import check_strategy

        return check_strategy(text, file=file)

    def migrate_strategy(self, text: str, *, file: str) -> str:
        """The text's v3 YAML (:func:`~ktrdr_lib.strategy.migrate.migrate_strategy`)."""
        from ktrdr_lib.strategy.migrate import migrate_strategy

        return migrate_strategy(text, file=file)

    def check_features(self, strategy: str, request: TrainingRequest) -> FeatureReport:
        """:func:`~ktrdr_lib.pipeline.prepare.check_features` on this backend's data."""
        from ktrdr_lib.pipeline.prepare import check_features

        return check_features(strategy, request, data_dir=self._data_dir)

    def close(self) -> None:
        """Shut the orchestrator down; a training started here and still running is
        cancelled (Ctrl-C or an error must not leave it training after the command)."""
        if self._orchestrator is not None:
            self._orchestrator.shutdown(cancel_running=bool(self._started))


def _list_row(record: OperationSnapshot) -> OperationListItem:
    """A local record in the API's list-row shape, so both print alike."""
    return OperationListItem(
        operation_id=record.operation_id,
        operation_type=record.operation_type,
        status=record.status,
        status_detail=record.status,
        created_at=record.created_at,
        progress_percentage=record.progress.percentage,
        current_step=record.progress.message,
        symbol=str(record.metadata.get("symbol", "")),
        duration_seconds=_seconds_between(record.started_at, record.finished_at),
    )


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start:
        return None
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(UTC)
    return round((finish - begin).total_seconds(), 3)
