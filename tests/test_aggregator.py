"""ResultAggregator: the same keys whichever way a run ends."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ktrdr_lib.pipeline.aggregate import ResultAggregator
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.schemas.progress import EpochHistoryRow
from ktrdr_lib.schemas.results import ArtifactsInfo, TrainingResult

KEYS = {
    "training_metrics",
    "validation_metrics",
    "test_metrics",
    "resource_usage",
    "artifacts",
    "session_info",
    "data_summary",
}


@pytest.fixture
def context(small_strategy_file: Path, synthetic_data_dir: Path):
    return build_training_context(small_strategy_file, data_dir=synthetic_data_dir)


def test_partial_result_of_a_cancelled_run(context) -> None:
    history = [
        EpochHistoryRow(epoch=1, train_loss=1.0, val_loss=0.9, duration_s=0.5),
        EpochHistoryRow(epoch=2, train_loss=0.8, val_loss=0.95, duration_s=0.5),
    ]
    result = ResultAggregator.partial(
        context,
        history=history,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        cancellation_reason="user",
    )
    data = msgspec.to_builtins(result)
    assert set(data) == KEYS
    assert data["test_metrics"] is None and data["validation_metrics"] is None
    tm = result.training_metrics
    assert tm.epochs_completed == 2 and tm.best_epoch == 1 and tm.final_val_loss == 0.95
    assert tm.stop_reason == "cancelled" and tm.training_time_s == 1.0
    assert result.session_info.cancellation_reason == "user"
    assert result.session_info.operation_id == context.operation_id


def test_partial_result_with_no_epochs(context) -> None:
    result = ResultAggregator.partial(context, history=[], started_at=None, finished_at=None)
    assert result.training_metrics.epochs_completed == 0
    assert result.training_metrics.final_train_loss is None
    assert result.training_metrics.stop_reason == "failed"


def test_host_result_gets_session_and_local_artifacts(context) -> None:
    remote = ResultAggregator.partial(context, history=[], started_at=None, finished_at=None)
    payload = msgspec.json.encode(remote)
    local = ArtifactsInfo(model_id="small_test/v3", model_path="/models/small_test/v3")
    for form in (payload, msgspec.json.decode(payload), remote):
        result = ResultAggregator.from_host(form, host_session_id="sess-1", artifacts=local)
        assert isinstance(result, TrainingResult)
        assert result.session_info.mode == "host"
        assert result.session_info.host_session_id == "sess-1"
        assert result.artifacts.model_id == "small_test/v3"
        assert set(msgspec.to_builtins(result)) == KEYS
