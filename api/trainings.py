"""Training routes: v1 start and performance."""

from __future__ import annotations

import math

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.names import check_name
from api.v1 import performance_blocks, v1_status
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.schemas.v1 import PerformanceResponse, TrainingStartRequest, TrainingStartResponse
from ktrdr_lib.strategy.discovery import resolve_strategy_name
from web.errors import ERROR_RESPONSES

__all__ = ["TrainingsController", "estimate_minutes"]


def estimate_minutes(orchestrator: TrainingOrchestrator, context: TrainingOperationContext) -> int:
    """Minutes this run may take, from the seconds per epoch of recent completed runs of the
    same strategy (1 when there is no history yet)."""
    page = orchestrator.list_operations(status="completed", limit=50)
    per_epoch: list[float] = []
    for record in page.items:
        params = record.metadata.get("parameters") or {}
        if record.result is None:
            continue
        tm = record.result.training_metrics
        if params.get("strategy_name") == context.strategy_name and tm.epochs_completed:
            per_epoch.append(tm.training_time_s / tm.epochs_completed)
    if not per_epoch:
        return 1
    seconds = sum(per_epoch) / len(per_epoch) * context.total_epochs
    return max(1, math.ceil(seconds / 60.0))


class TrainingsController(Controller):
    """``/trainings``."""

    path = "/trainings"
    tags = ["trainings"]  # noqa: RUF012

    @post(
        "/start",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Start a training (v1)",
    )
    def start(
        self,
        orchestrator: NamedDependency[TrainingOrchestrator],
        data: JSONBody[TrainingStartRequest],
    ) -> TrainingStartResponse:
        """Validate the whole request, store the operation and queue it.

        ``strategy_name`` is a name only (searched in KTRDR_STRATEGIES_DIR, then the shipped
        examples); a missing strategy is a 400 listing the places searched.
        """
        if data.task_id is not None:
            check_name("task_id", data.task_id)
        handle = orchestrator.start_training(
            resolve_strategy_name(data.strategy_name),
            data.training_request(),
            mode=data.mode,
            operation_id=data.task_id,
        )
        context = orchestrator.context_of(handle.operation_id)
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
            estimated_duration_minutes=estimate_minutes(orchestrator, context),
            mode=context.mode,
        )

    @get(
        "/{task_id:str}/performance",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Training performance (v1)",
    )
    def performance(
        self, orchestrator: NamedDependency[TrainingOrchestrator], task_id: FromPath[str]
    ) -> PerformanceResponse:
        """Final figures of a completed training; 409 while it is not completed."""
        check_name("task_id", task_id)
        result = orchestrator.result(task_id)
        blocks = performance_blocks(result)
        return PerformanceResponse(
            success=True,
            task_id=task_id,
            status=v1_status("completed"),
            training_metrics=blocks["training_metrics"],
            test_metrics=blocks["test_metrics"],
            model_info=blocks["model_info"],
            validation_metrics=blocks["validation_metrics"],
        )
