"""Real training runs: bars through indicators and fuzzy sets into a Lightning fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import msgspec
import numpy as np
import pytest

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.errors import DataError, OperationCancelled
from ktrdr_lib.features.labels import zigzag_labels
from ktrdr_lib.models.store import list_models, load_model
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.pipeline.run import prepare_data, run_training_pipeline
from ktrdr_lib.progress.bridge import ProgressBridge
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.progress import EpochHistoryRow
from ktrdr_lib.schemas.results import TrainingResult

RESULT_KEYS = {
    "training_metrics",
    "validation_metrics",
    "test_metrics",
    "resource_usage",
    "artifacts",
    "session_info",
    "data_summary",
    "evaluation",  # the model against its label kind's strongest baseline, and its economics
}


class PhaseRecorder:
    def __init__(self) -> None:
        self.phases: list[str] = []

    def on_phase(self, phase: str, message: str) -> None:
        self.phases.append(phase)


def test_small_strategy_trains_saves_and_reloads(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir)
    recorder = PhaseRecorder()
    result = run_training_pipeline(ctx, observer=recorder)

    assert recorder.phases == [
        "load_data",
        "indicators",
        "fuzzy",
        "labels",
        "train",
        "evaluate",
        "save",
    ]
    assert set(msgspec.to_builtins(result)) == RESULT_KEYS
    tm = result.training_metrics
    assert tm.epochs_completed == 3 and tm.final_train_loss is not None
    assert result.test_metrics is not None and 0.0 <= result.test_metrics.accuracy <= 1.0
    assert result.data_summary.feature_count == 18
    assert (
        sum(result.data_summary.label_distribution["train"].values())
        == (result.data_summary.samples["train"])
    )
    assert result.artifacts.model_id == "small_test/v1"
    assert [m.model_id for m in list_models()] == ["small_test/v1"]
    usage = result.resource_usage
    phases = ["load_data", "indicators", "fuzzy", "labels", "train", "evaluate", "save"]
    assert list(usage.phase_seconds) == phases
    assert all(seconds >= 0 for seconds in usage.phase_seconds.values())
    assert usage.phase_seconds["train"] <= tm.training_time_s * 1.5 + 1.0
    assert usage.run_peak_rss_mb is not None and usage.run_peak_rss_mb > 0
    assert usage.process_peak_rss_mb is not None
    assert usage.run_peak_rss_mb <= usage.process_peak_rss_mb + 1.0  # a part of its life

    # The saved model predicts exactly what the in-memory one did on the same raw features.
    prepared = prepare_data(ctx)
    loaded = load_model("small_test")
    assert loaded.feature_names == prepared.splits.feature_names
    probs = loaded.predict_proba(prepared.splits.x_test)
    assert probs.shape == (len(prepared.splits.y_test), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    predicted = probs.argmax(axis=1)
    accuracy = float((predicted == prepared.splits.y_test).mean())
    assert accuracy == pytest.approx(result.test_metrics.accuracy, abs=1e-6)


def test_same_seed_same_metrics(small_strategy_file: Path, synthetic_data_dir: Path) -> None:
    results: list[TrainingResult] = []
    for _ in range(2):
        ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, epochs=2)
        results.append(run_training_pipeline(ctx, save_model=False))
    a, b = (msgspec.to_builtins(r.test_metrics) for r in results)
    assert a == b
    assert results[0].training_metrics.final_val_loss == results[1].training_metrics.final_val_loss


def test_multiple_symbols_are_joined(small_strategy_file: Path, synthetic_data_dir: Path) -> None:
    ctx = build_training_context(
        small_strategy_file, data_dir=synthetic_data_dir, symbols=["SYNTH", "SYNTH2"], epochs=1
    )
    result = run_training_pipeline(ctx, save_model=False)
    assert {b.symbol for b in result.data_summary.bars} == {"SYNTH", "SYNTH2"}


def test_bundled_example_trains_on_real_aapl() -> None:
    ctx = build_training_context(
        "rsi_mean_reversion", symbols=["AAPL"], timeframes=["1d"], epochs=2
    )
    result = run_training_pipeline(ctx)
    assert result.data_summary.bars[0].symbol == "AAPL"
    assert result.data_summary.bars[0].bars > 3000
    assert result.test_metrics is not None
    assert result.test_metrics.majority_baseline_accuracy > 0


def test_multi_timeframe_example_uses_resampled_weekly_bars() -> None:
    ctx = build_training_context("multi_timeframe_momentum", epochs=1)
    result = run_training_pipeline(ctx, save_model=False)
    weekly = [b for b in result.data_summary.bars if b.timeframe == "1w"]
    assert weekly and weekly[0].resampled_from == "1d"
    assert any(name.startswith("1w_") for name in result.data_summary.feature_names)


def test_abort_before_start_raises_cancelled(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    token = CancelToken()
    token.cancel(reason="user changed their mind")
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir)
    with pytest.raises(OperationCancelled, match="changed their mind"):
        run_training_pipeline(ctx, token=token)
    assert list_models() == []


class CancelAtBatch(pl.Callback):
    def __init__(self, token: CancelToken, batch: int, graceful: bool) -> None:
        self.token, self.batch, self.graceful = token, batch, graceful
        self.batches_after = 0
        self.seen = 0
        self.requested_in_epoch: int | None = None
        self.batches_per_epoch = 0
        self.validated_epochs = 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.seen += 1
        self.batches_per_epoch = int(trainer.num_training_batches)
        if self.token.is_set:
            self.batches_after += 1
        elif self.seen >= self.batch:
            self.token.cancel(graceful=self.graceful, reason="test stop")
            self.requested_in_epoch = trainer.current_epoch

    def on_validation_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.validated_epochs += 1


def test_abort_mid_epoch_stops_within_a_batch(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    token = CancelToken()
    stopper = CancelAtBatch(token, batch=5, graceful=False)
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, epochs=50)
    with pytest.raises(OperationCancelled):
        run_training_pipeline(ctx, token=token, callbacks=[stopper])
    assert stopper.batches_after == 0


def test_graceful_stop_finishes_the_running_epoch_then_evaluates_and_saves(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    token = CancelToken()
    stopper = CancelAtBatch(token, batch=5, graceful=True)
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, epochs=50)
    rows: list[EpochHistoryRow] = []
    tracker = ProgressTracker(
        ctx.operation_id, total_epochs=50, publish=lambda snap: None, on_epoch=rows.append
    )
    result = run_training_pipeline(
        ctx, observer=tracker, token=token, callbacks=[ProgressBridge(tracker), stopper]
    )
    assert stopper.requested_in_epoch is not None
    epochs = stopper.requested_in_epoch + 1
    assert stopper.batches_per_epoch > 5  # the request came mid-epoch
    # The whole epoch of the request ran, its validation too, and nothing after it.
    assert stopper.seen == epochs * stopper.batches_per_epoch
    assert stopper.validated_epochs == epochs
    tm = result.training_metrics
    assert tm.epochs_completed == epochs
    assert tm.early_stopped and tm.stop_reason == "stopped_by_callback"
    assert [row.epoch for row in rows] == list(range(1, epochs + 1))
    assert result.session_info.cancellation_reason == "test stop"
    assert result.artifacts.model_id is not None
    assert result.test_metrics is not None


def test_a_graceful_stop_escalated_to_an_abort_is_an_abort_with_its_reason(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    token = CancelToken()
    stopper = CancelAtBatch(token, batch=3, graceful=True)

    class Escalate(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            if stopper.batches_after == 2:
                token.cancel(reason="user pressed Abort")

    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, epochs=50)
    with pytest.raises(OperationCancelled, match="user pressed Abort"):
        run_training_pipeline(ctx, token=token, callbacks=[stopper, Escalate()])
    assert stopper.batches_after == 2  # stopped at the next batch, mid-epoch
    assert token.reason == "user pressed Abort"
    assert list_models() == []


def test_missing_data_fails_at_the_start_listing_every_file_looked_for(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    with pytest.raises(DataError) as info:
        build_training_context(
            small_strategy_file,
            data_dir=synthetic_data_dir,
            symbols=["NOPE", "SYNTH", "GONE"],
            timeframes=["1h", "4h"],  # SYNTH's 4h bars come from its 1h file
        )
    message = str(info.value)
    assert message.startswith("4 series have no data")
    for wanted in ("NOPE_1h{", "NOPE_4h{", "GONE_1h{", "GONE_4h{"):
        assert f"looked for {wanted}.csv,.csv.gz,.parquet}}" in message
    assert "data for SYNTH" not in message
    assert "KTRDR_DATA_DIR" in message


def test_a_series_too_short_fails_the_run_while_loading(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, symbols=["TINY"])
    with pytest.raises(DataError, match="too few bars for TINY 1h"):
        run_training_pipeline(ctx)


def test_each_symbol_is_labelled_on_its_own_bars(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    ctx = build_training_context(
        small_strategy_file, data_dir=synthetic_data_dir, symbols=["SYNTH", "SYNTH2"]
    )
    prepared = prepare_data(ctx)
    splits, offset = prepared.splits, 0
    threshold = ctx.strategy.training.labels.zigzag_threshold  # type: ignore[union-attr]
    for summary in prepared.split_summaries:
        bars = load_ohlcv(summary.symbol, "1h", data_dir=synthetic_data_dir)
        labels = zigzag_labels(bars["close"].to_numpy(), threshold).labels
        rows = bars.index.get_indexer(splits.train_index[offset : offset + summary.train])
        assert (rows >= 0).all()
        np.testing.assert_array_equal(splits.y_train[offset : offset + summary.train], labels[rows])
        offset += summary.train
    assert offset == len(splits.y_train)
    assert [s.symbol for s in prepared.split_summaries] == ["SYNTH", "SYNTH2"]
