"""Small real objects that several test modules build."""

from __future__ import annotations

from typing import Any

from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    DataSummary,
    ResourceUsage,
    SessionInfo,
    TrainingMetrics,
    TrainingResult,
)
from ktrdr_lib.schemas.sweeps import SweepResult, SweepSnapshot, SweepTrial


def make_result(operation_id: str = "op", **training: Any) -> TrainingResult:
    """The smallest complete TrainingResult (store and view tests need one to keep)."""
    return TrainingResult(
        training_metrics=TrainingMetrics(**training),
        validation_metrics=None,
        test_metrics=None,
        resource_usage=ResourceUsage(),
        artifacts=ArtifactsInfo(),
        session_info=SessionInfo(
            operation_id=operation_id,
            strategy="demo",
            symbols=["SYNTH"],
            timeframes=["1h"],
            base_timeframe="1h",
        ),
        data_summary=DataSummary(),
    )


def record_of(result: TrainingResult, status: str = "completed") -> OperationSnapshot:
    """A final record holding ``result``."""
    op_id = result.session_info.operation_id
    return OperationSnapshot(
        operation_id=op_id,
        operation_type="training",
        status=status,  # type: ignore[arg-type]
        mode="local",
        created_at="2026-01-01T00:00:00Z",
        started_at=None,
        finished_at=None,
        metadata={},
        progress=ProgressSnapshot(operation_id=op_id),
        error_message=None,
        cancellation_reason=None,
        host_session_id=None,
        result=result,
    )


def make_trial(trial: int, status: str = "running", **fields: Any) -> SweepTrial:
    """A sweep's trial ``trial`` over ``model.training.learning_rate`` (2 epochs)."""
    fields.setdefault("config", {"model.training.learning_rate": [0.01, 0.001, 0.1][trial % 3]})
    fields.setdefault("total_epochs", 2)
    return SweepTrial(
        trial=trial,
        operation_id=f"op_trial_{trial}",
        status=status,  # type: ignore[arg-type]
        **fields,
    )


def make_sweep(
    trials: list[SweepTrial],
    status: str = "running",
    *,
    result: SweepResult | None = None,
    **record: Any,
) -> SweepSnapshot:
    """A sweep of ``small_test`` by ``val_loss`` (min), grid search, holding ``trials``."""
    return SweepSnapshot(
        operation=OperationSnapshot(
            operation_id="op_sweep_1",
            operation_type="sweep",
            status=status,  # type: ignore[arg-type]
            mode="ray",
            created_at="2026-01-01T00:00:00Z",
            started_at=None,
            finished_at=None,
            metadata={},
            progress=ProgressSnapshot(operation_id="op_sweep_1"),
            error_message=record.get("error_message"),
            cancellation_reason=record.get("cancellation_reason"),
            host_session_id=None,
            result=None,
        ),
        strategy="small_test",
        space={"model.training.learning_rate": [0.01, 0.001, 0.1]},
        metric="val_loss",
        mode="min",
        search="grid",
        early_stop=record.get("early_stop"),
        max_concurrent=2,
        trials=trials,
        result=result,
    )
