"""One mapping from the core's records to the KTRDR v1 response shapes.

v1 clients poll until they see ``completed``, ``failed`` or ``cancelled``, so the richer
statuses map onto the five v1 ones (``cancelling`` → ``running``, ``interrupted`` → ``failed``
with the reason in ``error_message``); the precise status travels in ``status_detail``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.schemas.models import ModelInfo
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.v1 import (
    ModelListItem,
    OperationInfo,
    OperationListItem,
    OperationProgress,
    PerformanceModelInfo,
    PerformanceResponse,
    Prediction,
    PredictRequest,
    PredictResponse,
    RegressionBlock,
)

if TYPE_CHECKING:
    from ktrdr_lib.inference import SignalPrediction
    from ktrdr_lib.models.predictor import LoadedModel

__all__ = [
    "V1_STATUS",
    "core_statuses",
    "list_item",
    "loaded_model_info",
    "model_list_item",
    "operation_info",
    "performance_response",
    "predict_response",
    "v1_status",
]

V1_STATUS: dict[str, str] = {
    "pending": "pending",
    "running": "running",
    "cancelling": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "interrupted": "failed",
}


_V1_TO_CORE: dict[str, list[str]] = {
    "pending": ["pending"],
    "running": ["running", "cancelling"],
    "completed": ["completed"],
    "failed": ["failed", "interrupted"],
    "cancelled": ["cancelled"],
}


def v1_status(status: str) -> str:
    """The v1 status for a core status."""
    return V1_STATUS.get(status, "failed")


def core_statuses(status: str) -> list[str]:
    """The core statuses a ``status`` filter means: a v1 status stands for every core status
    shown as it (``failed`` is also ``interrupted``); a precise one stands for itself.

    Raises:
        ConfigError: ``status`` is neither.
    """
    if status not in _V1_TO_CORE and status not in ("cancelling", "interrupted"):
        raise ConfigError(
            f"status {status!r} is not a status; use one of "
            "pending, running, completed, failed, cancelled, cancelling, interrupted"
        )
    return _V1_TO_CORE.get(status, [status])


def _progress(record: OperationSnapshot) -> OperationProgress:
    snap = record.progress
    context: dict[str, Any] = msgspec.to_builtins(snap)
    resources: dict[str, Any] = msgspec.to_builtins(snap.resources)
    context.update(
        epoch_index=snap.epoch,
        batch_number=snap.batch,
        batch_total_per_epoch=snap.total_batches,
        epoch_metrics={k: v for k, v in snap.metrics.items() if k != "train_loss_batch"},
        resource_usage={
            "gpu_used": bool(resources.get("gpu_used", False)),
            "gpu_name": resources.get("gpu_name"),
            "gpu_utilization_percent": resources.get("gpu_utilization_percent"),
            **resources,
        },
        host_session_id=snap.host_session_id or record.host_session_id,
    )
    done = (
        snap.epoch - 1 if snap.phase == "train" and snap.batch < snap.total_batches else snap.epoch
    )
    if record.status == "completed":
        done = snap.total_epochs or done
    return OperationProgress(
        percentage=snap.percentage,
        current_step=snap.message,
        steps_completed=max(done, 0),
        steps_total=snap.total_epochs,
        items_processed=snap.items_processed,
        items_total=snap.items_total,
        current_item=f"Batch {snap.batch}/{snap.total_batches}" if snap.total_batches else None,
        context=context,
    )


def _result_summary(record: OperationSnapshot) -> dict[str, Any] | None:
    if record.result is None:
        return None
    tm, test = record.result.training_metrics, record.result.test_metrics
    return {
        "epochs_completed": tm.epochs_completed,
        "final_train_loss": tm.final_train_loss,
        "final_val_loss": tm.final_val_loss,
        "test_accuracy": test.accuracy if test is not None else None,
        "majority_baseline_accuracy": test.majority_baseline_accuracy if test else None,
        "model_id": record.result.artifacts.model_id,
    }


def operation_info(record: OperationSnapshot) -> OperationInfo:
    """The v1 ``OperationInfo`` of an operation."""
    error = record.error_message
    if record.status == "interrupted" and not error:
        error = "interrupted: the process running it stopped"
    metadata = dict(record.metadata)
    parameters = dict(metadata.get("parameters") or {})
    parameters["session_id"] = record.host_session_id
    metadata["parameters"] = parameters
    return OperationInfo(
        operation_id=record.operation_id,
        operation_type=record.operation_type,
        status=v1_status(record.status),
        status_detail=record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        completed_at=record.finished_at,
        progress=_progress(record),
        metadata=metadata,
        error_message=error,
        warnings=[],
        errors=[error] if error and record.status in ("failed", "interrupted") else [],
        result_summary=_result_summary(record),
        cancellation_reason=record.cancellation_reason,
    )


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start:
        return None
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else None
    if finish is None:
        finish = datetime.now(UTC)
    return round((finish - begin).total_seconds(), 3)


def list_item(record: OperationSnapshot) -> OperationListItem:
    """One row of the v1 operations list."""
    return OperationListItem(
        operation_id=record.operation_id,
        operation_type=record.operation_type,
        status=v1_status(record.status),
        status_detail=record.status,
        created_at=record.created_at,
        progress_percentage=record.progress.percentage,
        current_step=record.progress.message,
        symbol=str(record.metadata.get("symbol", "")),
        duration_seconds=_seconds_between(record.started_at, record.finished_at),
    )


def performance_response(
    task_id: str, result: TrainingResult, saved: ModelInfo | None = None
) -> PerformanceResponse:
    """The v1 performance answer of a completed run's TrainingResult (plus the richer figures
    beside the v1 ones, its honest ``evaluation`` among them); ``saved`` is the listing of the
    model version the run saved, which gives ``model_info`` its parameter count and
    architecture."""
    tm = result.training_metrics
    test = result.test_metrics
    training = {
        "final_train_loss": tm.final_train_loss,
        "final_val_loss": tm.final_val_loss,
        "final_train_accuracy": tm.final_train_accuracy,
        "final_val_accuracy": tm.final_val_accuracy,
        "epochs_completed": tm.epochs_completed,
        "early_stopped": tm.early_stopped,
        "training_time_minutes": round(tm.training_time_s / 60.0, 4),
        "best_epoch": tm.best_epoch,
    }
    test_block: dict[str, Any] = {}
    if test is not None:
        test_block = {
            "test_loss": test.loss,
            "test_accuracy": test.accuracy,
            "precision": test.precision,
            "recall": test.recall,
            "f1_score": test.f1,
            "majority_baseline_accuracy": test.majority_baseline_accuracy,
            "per_class": msgspec.to_builtins(test.per_class),
            "confusion_matrix": test.confusion_matrix,
        }
    artifacts = result.artifacts
    model_info = PerformanceModelInfo(
        model_size_bytes=artifacts.size_bytes,
        parameters_count=saved.parameters_count if saved is not None else None,
        architecture=saved.architecture if saved is not None else None,
        model_id=artifacts.model_id,
        model_path=artifacts.model_path,
    )
    validation = (
        None
        if result.validation_metrics is None
        else msgspec.to_builtins(result.validation_metrics)
    )
    return PerformanceResponse(
        success=True,
        task_id=task_id,
        status=v1_status("completed"),
        training_metrics=training,
        test_metrics=test_block,
        model_info=model_info,
        validation_metrics=validation,
        feature_report=result.data_summary.feature_report,
        resource_usage=result.resource_usage,
        evaluation=result.evaluation,
        regression_metrics=(
            None
            if result.validation_regression is None or result.test_regression is None
            else RegressionBlock(
                validation=result.validation_regression, test=result.test_regression
            )
        ),
    )


def model_list_item(model: ModelInfo) -> ModelListItem:
    """One row of the v1 models list; several symbols or timeframes read ``MULTI``."""
    return ModelListItem(
        model_id=model.model_id,
        model_name=model.name,
        symbol=_one_or_multi(model.symbols),
        timeframe=_one_or_multi(model.timeframes),
        created_at=model.created_at or "",
        training_accuracy=model.training_accuracy,
        test_accuracy=model.test_accuracy,
        description=model.description,
        version=model.version,
        selection_value=model.selection_value,
    )


def _one_or_multi(values: list[str]) -> str | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else "MULTI"


def loaded_model_info(model: LoadedModel) -> dict[str, Any]:
    """The v1 ``model_info`` of a model loaded for predictions."""
    return {
        "model_id": model.model_id,
        "name": model.name,
        "version": model.version,
        "path": str(model.path),
        "feature_names": list(model.feature_names),
        "metadata": model.metadata,
    }


def predict_response(
    request: PredictRequest, model: LoadedModel, signal: SignalPrediction
) -> PredictResponse:
    """The v1 answer to ``request``, predicted by ``model``."""
    return PredictResponse(
        success=True,
        model_name=request.model_name,
        symbol=request.symbol,
        test_date=signal.bar_time,
        prediction=Prediction(
            signal=signal.signal,
            confidence=signal.confidence,
            signal_strength=signal.signal_strength,
            fuzzy_outputs=signal.fuzzy_outputs,
            probabilities=signal.probabilities or None,
            predicted_return=signal.predicted_return,
            regime=signal.regime,
        ),
        input_features=signal.input_features,
        timeframe=signal.timeframe,
        model_version=model.version,
    )
