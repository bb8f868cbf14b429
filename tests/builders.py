"""Small real objects that several test modules build."""

from __future__ import annotations

from typing import Any

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
