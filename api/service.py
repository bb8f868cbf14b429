"""TrainingApi: what the HTTP API does, as plain methods over the TrainingOrchestrator.

Each method takes and returns the Structs of :mod:`ktrdr_lib.schemas.v1` (or a core Struct for
the routes v1 did not have) and raises the project's errors, which the handlers in
:mod:`web.errors` answer with their status. It is framework free, like the training host's
:class:`~host.service.TrainingHost`, so the routes in :mod:`api.routes` are one line each and
the whole API can be driven, and tested, without a server. Names that arrive in URLs and
bodies are checked here (:func:`api.names.check_name`), and so is a strategy text's length
(:class:`~web.limits.RequestLimits`).

Example:
    >>> api = TrainingApi(TrainingOrchestrator(data_dir=data))  # doctest: +SKIP
    >>> request = TrainingStartRequest(strategy_name="rsi_mean_reversion",
    ...                                symbols=["AAPL"], timeframes=["1d"])  # doctest: +SKIP
    >>> task_id = api.start_training(request).task_id  # doctest: +SKIP
    >>> api.operation(task_id).data.status  # doctest: +SKIP
    'running'
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from api.events import OperationEvent, operation_events
from api.names import check_name
from api.sweeps import SWEEP_POLL_S, SweepApi
from api.v1 import (
    core_statuses,
    list_item,
    loaded_model_info,
    model_list_item,
    operation_info,
    performance_response,
    predict_response,
    v1_status,
)
from ktrdr_lib.errors import ConfigError, StateConflictError
from ktrdr_lib.inference import predict_signal
from ktrdr_lib.models.listing import model_info as saved_model_info
from ktrdr_lib.models.predictor import LoadedModel
from ktrdr_lib.models.store import ModelStore, parse_version
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.schemas.health import (
    HIDDEN_DETAILS_NOTE,
    HealthReport,
    HealthStatus,
    OperationMetrics,
)
from ktrdr_lib.schemas.models import ModelInfo
from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.schemas.v1 import (
    CancelRequest,
    CancelResponse,
    CancelResult,
    ModelDetailResponse,
    ModelLoadResponse,
    ModelSaveRequest,
    ModelSaveResponse,
    ModelsListResponse,
    OperationEnvelope,
    OperationListResponse,
    PerformanceResponse,
    PredictRequest,
    PredictResponse,
    ResumeResponse,
    StrategiesResponse,
    StrategyValidateRequest,
    StrategyValidateResponse,
    TrainingStartRequest,
    TrainingStartResponse,
)
from ktrdr_lib.strategy.discovery import list_strategies, resolve_strategy_name
from ktrdr_lib.strategy.loader import check_strategy
from ktrdr_lib.timestamps import utc_now
from ktrdr_lib.training.analytics import recorded_analytics
from web.limits import RequestLimits

__all__ = ["TrainingApi"]


class TrainingApi:
    """The API's operations on an orchestrator, its model store and the loaded models.

    Args:
        orchestrator: the orchestrator that trains, tracks and cancels the runs.
        loaded_models: models loaded for predictions, by name (kept across app restarts when
            the app passes the same dict).
        sse_poll_s: how often event streams look for new snapshots (a sweep's stream at most
            every ``SWEEP_POLL_S``, 0.5 s: each look reads every trial from the store).
        sse_heartbeat_s: idle seconds between heartbeats on event streams.
        limits: the caps on a request's form (default: :class:`~web.limits.RequestLimits`'s
            defaults; the app passes the ones its settings give).

    Attributes:
        sweeps: the sweep routes' operations (:class:`~api.sweeps.SweepApi`) on the same
            orchestrator.
    """

    def __init__(
        self,
        orchestrator: TrainingOrchestrator,
        *,
        loaded_models: dict[str, LoadedModel] | None = None,
        sse_poll_s: float = 0.1,
        sse_heartbeat_s: float = 15.0,
        limits: RequestLimits | None = None,
    ) -> None:
        if sse_poll_s <= 0:
            raise ConfigError(f"sse_poll_s must be > 0, got {sse_poll_s}")
        if sse_heartbeat_s <= 0:
            raise ConfigError(f"sse_heartbeat_s must be > 0, got {sse_heartbeat_s}")
        self.orchestrator = orchestrator
        self.loaded_models = loaded_models if loaded_models is not None else {}
        self.sse_poll_s = sse_poll_s
        self.sse_heartbeat_s = sse_heartbeat_s
        self.limits = limits or RequestLimits()
        self.sweeps = SweepApi(
            orchestrator,
            poll_s=max(sse_poll_s, SWEEP_POLL_S),
            sse_heartbeat_s=sse_heartbeat_s,
        )

    # -- trainings ---------------------------------------------------------------------------

    def start_training(self, request: TrainingStartRequest) -> TrainingStartResponse:
        """Validate the whole request, store the operation and queue it.

        ``strategy_name`` is a name only (searched in KTRDR_STRATEGIES_DIR, then the shipped
        examples).

        Raises:
            StrategyNotFoundError: no strategy of that name; the detail lists the places
                searched.
            ConfigError / StrategyError: the request or the strategy is invalid, or the run
                asks for more than a cap (``KTRDR_MAX_*``; nothing is stored).
            StateConflictError: ``task_id`` is taken.
            QueueFullError: too many runs wait already (answered 429 with Retry-After).
            HostUnavailableError: ``mode: host`` without a training host.
        """
        if request.task_id is not None:
            check_name("task_id", request.task_id)
        handle = self.orchestrator.start_training(
            resolve_strategy_name(request.strategy_name),
            request.training_request(),
            mode=request.mode,
            operation_id=request.task_id,
        )
        context = self.orchestrator.context_of(handle.operation_id)
        return TrainingStartResponse(
            success=True,
            task_id=handle.operation_id,
            status="training_started",
            message=(
                f"Training of {context.strategy_name} on {', '.join(context.symbols)} "
                f"{', '.join(context.timeframes)} started ({context.total_epochs} epochs)"
            ),
            symbols=context.symbols,
            timeframes=context.timeframes,
            strategy_name=context.strategy_name,
            estimated_duration_minutes=self.estimate_minutes(context),
            mode=context.mode,
        )

    def estimate_minutes(self, context: TrainingOperationContext) -> int:
        """Minutes this run may take, from the seconds per epoch of recent completed runs of
        the same strategy (1 when there is no history yet)."""
        page = self.orchestrator.list_operations(status="completed", limit=50)
        per_epoch: list[float] = []
        for record in page.items:
            if record.result is None:
                continue
            tm = record.result.training_metrics
            if record.result.session_info.strategy == context.strategy_name and tm.epochs_completed:
                per_epoch.append(tm.training_time_s / tm.epochs_completed)
        if not per_epoch:
            return 1
        seconds = sum(per_epoch) / len(per_epoch) * context.total_epochs
        return max(1, math.ceil(seconds / 60.0))

    def performance(self, task_id: str) -> PerformanceResponse:
        """The v1 figures of a completed training.

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the training has not completed.
        """
        result = self.orchestrator.result(check_name("task_id", task_id))
        return performance_response(task_id, result, self._saved_model(result))

    def analytics(self, task_id: str) -> TrainingAnalytics:
        """The detailed analytics a completed training recorded.

        Raises:
            NotFoundError: unknown id, or the run recorded none (not asked for, or it was
                cancelled or failed).
            StateConflictError: the training has not ended yet.
        """
        return recorded_analytics(self.orchestrator.get_operation(check_name("task_id", task_id)))

    @staticmethod
    def _saved_model(result: TrainingResult) -> ModelInfo | None:
        """The listing of the model version ``result`` saved (its small JSON files only), or
        ``None`` when it saved none."""
        artifacts = result.artifacts
        if artifacts.model_name is None or artifacts.model_version is None:
            return None
        if artifacts.model_path is None:
            return None
        return saved_model_info(
            artifacts.model_name, artifacts.model_version, Path(artifacts.model_path)
        )

    # -- operations --------------------------------------------------------------------------

    def list_operations(
        self,
        *,
        status: str | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> OperationListResponse:
        """Operations newest first; ``status`` takes the v1 statuses or the precise ones.

        Raises:
            ConfigError: ``status`` is not a status.
        """
        page = self.orchestrator.list_operations(
            status=None if status is None else core_statuses(status),
            operation_type=operation_type,
            active_only=active_only,
            limit=limit,
            offset=offset,
        )
        return OperationListResponse(
            success=True,
            total_count=page.total_count,
            active_count=page.active_count,
            data=[list_item(record) for record in page.items],
        )

    def operation(self, operation_id: str) -> OperationEnvelope:
        """The v1 OperationInfo, with live progress in ``progress.context``.

        Raises:
            NotFoundError: unknown id.
        """
        record = self.orchestrator.get_operation(check_name("operation id", operation_id))
        return OperationEnvelope(success=True, data=operation_info(record))

    def cancel(self, operation_id: str, request: CancelRequest | None = None) -> CancelResponse:
        """Ask the operation to stop (at once, or ``graceful``: evaluate and save first;
        ``force``: at once, escalating a graceful stop under way). The answer's ``status`` is
        v1's: ``cancelled`` once it stopped, ``cancelling`` while it stops; ``status_detail``
        is the precise one.

        Raises:
            ConfigError: ``force`` together with ``graceful``.
            NotFoundError: unknown id.
            StateConflictError: the operation is already final.
        """
        check_name("operation id", operation_id)
        request = request or CancelRequest()
        if request.force and request.graceful:
            raise ConfigError(
                "force and graceful ask for opposite stops: force stops the run within a batch "
                "(an abort), graceful after its running epoch (then it evaluates and saves); "
                "send one of them"
            )
        record = self.orchestrator.cancel(
            operation_id, graceful=request.graceful, reason=request.reason
        )
        return CancelResponse(
            success=True,
            data=CancelResult(
                operation_id=operation_id,
                status="cancelled" if record.status in FINAL_STATUSES else "cancelling",
                status_detail=record.status,
                cancelled_at=utc_now(),
                cancellation_reason=record.cancellation_reason or request.reason or "cancelled",
                task_cancelled=True,
                training_session_cancelled=record.host_session_id is not None,
                graceful=request.graceful,
            ),
        )

    def resume(self, operation_id: str, fields: Mapping[str, Any] | None = None) -> ResumeResponse:
        """Continue a stopped run from its last checkpoint as a new, linked operation.

        ``fields`` is the request body: a resume takes none (``epochs``, ``symbols``, ``seed``
        and the rest are the run's own, checked against its checkpoint), so any is refused
        rather than ignored.

        Raises:
            NotFoundError: unknown id.
            StateConflictError: it is active or completed, or left no checkpoint.
            ConfigError: the body has fields; or (DataError too) its strategy file or data
                changed since the checkpoint.
        """
        check_name("operation id", operation_id)
        if fields:
            names = ", ".join(sorted(str(name) for name in fields)[:20])
            raise ConfigError(
                f"body field(s) {names}: a resumed run continues with the strategy, symbols, "
                "dates, epochs, seed and options it started with (its checkpoint is checked "
                "against them); send POST /operations/{id}/resume without a body, or start a "
                "new run with them"
            )
        handle = self.orchestrator.resume(operation_id)
        record = handle.info()
        epoch = int(record.metadata.get("resumed_after_epoch", 0))
        return ResumeResponse(
            success=True,
            task_id=handle.operation_id,
            status=v1_status(record.status),
            resumed_from=operation_id,
            from_epoch=epoch,
            message=f"Resuming {operation_id} after epoch {epoch} as {handle.operation_id}",
        )

    def metrics(self, operation_id: str) -> OperationMetrics:
        """One row per epoch, with overfitting and plateau flags.

        Raises:
            NotFoundError: unknown id.
        """
        return self.orchestrator.metrics(check_name("operation id", operation_id))

    def result(self, operation_id: str) -> TrainingResult:
        """The run's TrainingResult: the full one once it completed, the partial one (the
        epochs that ran, no evaluation) when it was cancelled or failed.

        Raises:
            NotFoundError: unknown id.
            StateConflictError: no result yet (the run is still pending, running or
                cancelling), or it ended without one (it stopped before training started).
        """
        record = self.orchestrator.get_operation(check_name("operation id", operation_id))
        if record.result is not None:
            return record.result
        if not record.is_final:
            raise StateConflictError(
                f"operation {operation_id} is {record.status}; its result exists once it has "
                f"ended: follow GET /operations/{operation_id}/events, then ask again"
            )
        detail = f": {record.error_message}" if record.error_message else ""
        raise StateConflictError(
            f"operation {operation_id} is {record.status}{detail}; it ended before training "
            "started, so there is no result"
        )

    def events(
        self, operation_id: str, last_event_id: str | None = None
    ) -> AsyncIterator[OperationEvent]:
        """The operation's progress from after ``last_event_id`` (a snapshot sequence), then
        its final event (see :func:`api.events.operation_events`).

        Checks at once, before any event is sent.

        Raises:
            NotFoundError: unknown id.
            ConfigError: ``last_event_id`` is not a sequence number.
        """
        check_name("operation id", operation_id)
        self.orchestrator.get_operation(operation_id)
        raw = last_event_id or "0"
        try:
            after = int(raw)
        except ValueError as exc:
            raise ConfigError(f"Last-Event-ID {raw!r} is not a sequence number") from exc
        return operation_events(
            self.orchestrator,
            operation_id,
            after,
            poll_s=self.sse_poll_s,
            heartbeat_s=self.sse_heartbeat_s,
        )

    # -- models ------------------------------------------------------------------------------

    @property
    def models(self) -> ModelStore:
        """The orchestrator's model store."""
        return ModelStore(self.orchestrator.models_dir)

    def list_models(self) -> ModelsListResponse:
        """Every saved version, by name then version."""
        items = [model_list_item(model) for model in self.models.list_models()]
        return ModelsListResponse(success=True, models=items)

    def describe_model(self, model_name: str) -> ModelDetailResponse:
        """Every version of a model, with the newest version's metrics and strategy, and
        which version is the newest and which the best.

        Raises:
            NotFoundError: no model of that name.
        """
        detail = self.models.describe(check_name("model name", model_name))
        return ModelDetailResponse(
            success=True,
            model_name=model_name,
            versions=[msgspec.to_builtins(version) for version in detail.versions],
            metrics=detail.metrics,
            strategy=detail.strategy_config,
            latest_version=detail.latest_version,
            best_version=detail.best_version,
        )

    def save_model(self, request: ModelSaveRequest) -> ModelSaveResponse:
        """Publish the model a completed training saved as the next version of
        ``model_name``.

        Raises:
            NotFoundError: unknown ``task_id``.
            StateConflictError: the training has not completed, or saved no model.
        """
        check_name("task_id", request.task_id)
        check_name("model name", request.model_name)
        artifacts = self.orchestrator.result(request.task_id).artifacts
        if artifacts.model_name is None or artifacts.model_version is None:
            why = f" ({artifacts.no_model_reason})" if artifacts.no_model_reason else ""
            raise StateConflictError(
                f"training {request.task_id} did not save a model{why}; nothing to save as "
                f"{request.model_name}"
            )
        saved = self.models.copy_as(
            (artifacts.model_name, artifacts.model_version),
            request.model_name,
            description=request.description,
            extra_metadata={"task_id": request.task_id},
        )
        return ModelSaveResponse(
            success=True,
            model_id=saved.model_id,
            model_name=request.model_name,
            model_path=str(saved.path),
            task_id=request.task_id,
            saved_at=utc_now(),
            model_size_mb=round(saved.size_bytes / 2**20, 4),
        )

    def load_model(self, model_name: str, version: str | None = None) -> ModelLoadResponse:
        """Load a version into memory for predictions: the newest by default, ``best`` (the
        highest validation figure, :meth:`~ktrdr_lib.models.store.ModelStore.best_version`)
        or a number (``3`` or ``v3``).

        Raises:
            ConfigError: ``version`` is none of those.
            NotFoundError: no model of that name, or no such version (the message lists them).
        """
        choice = parse_version(version)
        model = self.models.load(check_name("model name", model_name), choice)
        self.loaded_models[model_name] = model
        return ModelLoadResponse(
            success=True,
            model_name=model_name,
            model_loaded=True,
            model_info=loaded_model_info(model),
        )

    def predict(self, request: PredictRequest) -> PredictResponse:
        """buy/hold/sell for a symbol's bar at ``test_date`` (default: the latest bar), with
        the loaded model (loaded now when it is not).

        Raises:
            NotFoundError: no model of that name.
            DataError: no data for the symbol, or no bar at that date.
        """
        check_name("model name", request.model_name)
        check_name("symbol", request.symbol)
        model = self.loaded_models.get(request.model_name)
        if model is None:
            model = self.models.load(request.model_name)
            self.loaded_models[request.model_name] = model
        data_dir = self.orchestrator.data_dir
        signal = predict_signal(
            model,
            request.symbol,
            timeframe=request.timeframe,
            at=request.test_date,
            data_dir=Path(data_dir) if data_dir else None,
        )
        return predict_response(request, model, signal)

    # -- strategies --------------------------------------------------------------------------

    def list_strategies(self) -> StrategiesResponse:
        """Strategies found by name: KTRDR_STRATEGIES_DIR first, then the shipped examples;
        invalid files included, with their problems."""
        return StrategiesResponse(success=True, strategies=list_strategies())

    def validate_strategy(self, request: StrategyValidateRequest) -> StrategyValidateResponse:
        """Every problem and notice in a strategy's YAML text (any layout), each with its
        field path and line (the YAML is only ever safe-loaded).

        Raises:
            ConfigError: the text is over ``max_strategy_bytes``.
        """
        self.limits.check_strategy_text(request.content, field="content")
        check = check_strategy(request.content, file=request.file_name)
        name = None
        if check.valid:
            loaded = yaml.safe_load(request.content)
            name = loaded.get("name") if isinstance(loaded, dict) else None
        return StrategyValidateResponse(
            success=True,
            valid=check.valid,
            name=name,
            problems=check.problems,
            notices=check.notices,
            layout=check.layout,
        )

    # -- health ------------------------------------------------------------------------------

    def health(self, *, detailed: bool = True) -> HealthReport | HealthStatus:
        """The orchestrator's diagnostics, or (``detailed=False``: for a caller without the
        token) only its status."""
        report = self.orchestrator.health()
        return report if detailed else HealthStatus(status=report.status, note=HIDDEN_DETAILS_NOTE)
