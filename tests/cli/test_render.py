"""What the command line prints, pinned: progress lines, the run summary, one operation."""

from __future__ import annotations

import io
from typing import Any

import msgspec

from ktrdr_lib.cli.render import (
    ProgressLine,
    figures_text,
    one_line,
    operation_text,
    summary_text,
)
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot
from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    BaselineFigures,
    ClassificationMetrics,
    DataSummary,
    HonestEvaluation,
    ResourceUsage,
    SessionInfo,
    TrainingMetrics,
    TrainingResult,
)
from ktrdr_lib.views.formatting import progress_line


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _snap(sequence: int, **fields: Any) -> ProgressSnapshot:
    return ProgressSnapshot(operation_id="op_1", sequence=sequence, status="running", **fields)


TRAINING = {"phase": "train", "epoch": 1, "total_epochs": 2, "total_batches": 10}
SNAPSHOTS = [
    _snap(1, phase="queued", message="Queued"),
    _snap(2, phase="load_data", message="Loading 1×1 series"),
    _snap(3, phase="train", total_epochs=2, message="Training 2 epochs × 10 batches"),
    _snap(4, **TRAINING, batch=5, percentage=30.0, metrics={"train_loss_batch": 0.7}),
    _snap(5, **TRAINING, batch=6, percentage=32.0, metrics={"train_loss_batch": 0.6}),
    _snap(
        6,
        **TRAINING,
        batch=10,
        percentage=55.0,
        metrics_epoch=1,
        metrics={"train_loss": 0.5, "train_accuracy": None, "val_loss": 0.6},
    ),
    _snap(5, phase="evaluate", message="stale: never shown"),
    _snap(
        7,
        phase="evaluate",
        message="Evaluating",
        resources=DeviceResources(gpu_used=True, gpu_name="H200", gpu_memory_allocated_mb=9.5),
    ),
    _snap(8, phase="evaluate", message="Evaluating", resources=DeviceResources(gpu_name="H200")),
]
LINES = [
    "[load_data] Loading 1×1 series",
    "[train] Training 2 epochs × 10 batches",
    "[train] Epoch 1/2 · train_loss 0.5000 · val_loss 0.6000",
    "[evaluate] Evaluating",
    "[device] GPU H200 · 9.5 / ? MB",
]


def test_a_pipe_gets_a_line_per_phase_and_per_epoch() -> None:
    stream = io.StringIO()
    view = ProgressLine(stream)
    for snap in SNAPSHOTS:
        view.show(snap)
    view.note("[cancel] a note")
    assert stream.getvalue() == "\n".join([*LINES, "[cancel] a note"]) + "\n"


def test_each_placebo_after_the_run_gets_its_line() -> None:
    stream = io.StringIO()
    view = ProgressLine(stream)
    for sequence, message in enumerate(
        ["Evaluating", "Placebo 1 of 2: on a random walk", "Placebo 2 of 2: on a random walk"]
    ):
        view.show(_snap(sequence + 1, phase="evaluate", message=message))
    assert stream.getvalue().splitlines() == [
        "[evaluate] Evaluating",
        "[evaluate] Placebo 1 of 2: on a random walk",
        "[evaluate] Placebo 2 of 2: on a random walk",
    ]


def test_a_terminal_also_gets_a_throttled_live_line() -> None:
    stream, clock = Terminal(), Clock()
    view = ProgressLine(stream, interval=0.25, clock=clock)
    for snap in SNAPSHOTS[:4]:
        view.show(snap)
    clock.now = 0.1
    view.show(SNAPSHOTS[4])  # within the interval: not redrawn
    clock.now = 0.5
    for snap in SNAPSHOTS[5:]:
        view.show(snap)
    live = progress_line(SNAPSHOTS[3]) + " · loss 0.7000"
    assert live.startswith("[train]  30.0% · Epoch 1/2 · Batch 5/10 · elapsed")
    # the live line is drawn in place, then wiped before the next line
    expected = "\n".join(LINES[:2]) + "\n" + live + "\r\x1b[2K" + "\n".join(LINES[2:]) + "\n"
    assert stream.getvalue() == expected


def _result(**session: Any) -> TrainingResult:
    test = ClassificationMetrics(
        loss=0.65,
        accuracy=0.7512,
        precision=0.5,
        recall=0.5,
        f1=0.4899,
        per_class={},
        confusion_matrix=[],
        samples=593,
        majority_class=1,
        majority_baseline_accuracy=0.678,
    )
    return TrainingResult(
        training_metrics=TrainingMetrics(
            final_train_loss=0.74691,
            final_val_loss=None,
            epochs_completed=2,
            best_epoch=2,
            training_time_s=0.66,
        ),
        validation_metrics=None,
        test_metrics=test,
        resource_usage=ResourceUsage(),
        artifacts=ArtifactsInfo(model_id="small_test/v1", model_path="/m/small_test/v1"),
        session_info=SessionInfo(
            operation_id="op_1",
            strategy="small_test",
            symbols=["SYNTH", "SYNTH2"],
            timeframes=["1h"],
            base_timeframe="1h",
            **session,
        ),
        data_summary=DataSummary(
            samples={"train": 1769, "validation": 571, "test": 593},
            label_distribution={"train": {"BUY": 851, "HOLD": 93, "SELL": 825}},
            feature_count=18,
        ),
    )


def test_the_summary_of_a_run() -> None:
    record = OperationSnapshot(
        operation_id="op_1",
        operation_type="training",
        status="completed",
        mode="local",
        created_at="2026-01-01T00:00:00Z",
        started_at=None,
        finished_at=None,
        metadata={},
        progress=_snap(9, phase="save", percentage=100.0),
        error_message=None,
        cancellation_reason="graceful stop requested",
        host_session_id=None,
        result=_result(cancellation_reason="graceful stop requested"),
    )
    assert summary_text(record).splitlines() == [
        "operation       op_1 (completed, mode local)",
        "strategy        small_test (SYNTH, SYNTH2 1h, base 1h)",
        "samples         train 1,769 · validation 571 · test 593 · features 18",
        "labels (train)  BUY 851 · HOLD 93 · SELL 825",
        "epochs          2 (best 2, early stop no)",
        "training time   0:01",
        "train loss / acc 0.7469 / –",
        "val loss / acc  – / –",
        "test            accuracy 0.751 · f1 0.490 · loss 0.6500 · majority-class baseline 0.678",
        "model           small_test/v1  /m/small_test/v1",
        "stop reason     graceful stop requested",
    ]


def test_one_operation() -> None:
    record = OperationSnapshot(
        operation_id="op_1",
        operation_type="training",
        status="failed",
        mode="host",
        created_at="2026-01-01T00:00:00Z",
        started_at="2026-01-01T00:00:01Z",
        finished_at=None,
        metadata={"parameters": {"strategy_name": "demo", "symbols": ["A", "B"], "epochs": 3}},
        progress=_snap(9, phase="train", percentage=42.0, message="Epoch 2/3", metrics_epoch=1),
        error_message="data is bad:\n  row 3: NaN\n  row 9: NaN",
        cancellation_reason=None,
        host_session_id=None,
        result=_result(),
    )
    assert operation_text(record).splitlines() == [
        "operation   op_1  (training, mode host)",
        "status      failed",
        "strategy    demo  A,B   epochs 3",
        "created     2026-01-01T00:00:00Z",
        "started     2026-01-01T00:00:01Z",
        "finished    -",
        "progress    42.0%  Epoch 2/3",
        "epoch 1     ",
        "error       data is bad: row 3: NaN; row 9: NaN",
        "result      test accuracy 0.751  model small_test/v1",
    ]


def test_one_operation_gives_its_honest_headline() -> None:
    evaluation = HonestEvaluation(
        headline="test accuracy 0.751 vs 0.798 for swing_state_retrace (the strongest "
        "baseline, no model): -0.047",
        score_name="accuracy",
        model_score=0.7512,
        baselines=[BaselineFigures(name="swing_state_retrace", description="", score=0.798)],
        strongest_baseline="swing_state_retrace",
        edge=-0.047,
    )
    result = msgspec.structs.replace(_result(), evaluation=evaluation)
    record = OperationSnapshot(
        operation_id="op_1",
        operation_type="training",
        status="completed",
        mode="local",
        created_at="2026-01-01T00:00:00Z",
        started_at=None,
        finished_at=None,
        metadata={},
        progress=_snap(9, phase="save", percentage=100.0, message="Done"),
        error_message=None,
        cancellation_reason=None,
        host_session_id=None,
        result=result,
    )
    assert operation_text(record).splitlines()[-3:] == [
        "result      test accuracy 0.751  model small_test/v1",
        f"evaluation  {evaluation.headline}",
        f"placebo     {evaluation.placebo_note}",
    ]
    # and the run's summary leads with it
    assert summary_text(record).splitlines()[0] == f"evaluation      {evaluation.headline}"


def test_small_pieces() -> None:
    assert figures_text({"train_loss": 0.5, "train_loss_batch": 0.1, "val_loss": None}) == (
        "train_loss 0.5000"
    )
    assert one_line("a:\n  b\n  c") == "a: b; c"


def test_a_model_row_shows_the_figure_best_ranks_by_and_test_accuracy() -> None:
    from ktrdr_lib.cli.render import model_row
    from ktrdr_lib.schemas.models import ModelInfo

    info = ModelInfo(
        name="m",
        version=2,
        model_id="m/v2",
        path="/x",
        created_at="2026-01-01T00:00:00Z",
        size_bytes=1,
        test_accuracy=0.5,
        selection_metric="validation_accuracy",
        selection_value=0.61,
    )
    assert model_row(info).split() == [
        *("m/v2", "2026-01-01T00:00:00Z"),
        *("val", "0.610", "test", "acc", "0.500"),
    ]
    unranked = ModelInfo(
        name="m", version=1, model_id="m/v1", path="/x", created_at=None, size_bytes=1
    )
    assert model_row(unranked).strip() == "m/v1"
