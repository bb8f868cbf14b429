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
