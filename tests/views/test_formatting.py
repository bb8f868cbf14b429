"""The shared text pieces: numbers, durations, the progress lines and the one summary table.

These are what every renderer (and the command line) prints, so their exact text is pinned.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot
from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    ClassificationMetrics,
    RegressionMetrics,
    ResourceUsage,
    TrainingResult,
)
from ktrdr_lib.views import formatting as fmt
from tests.builders import make_result, record_of

TRAINING: dict[str, Any] = {
    "operation_id": "op_1",
    "status": "running",
    "phase": "train",
    "percentage": 42.4,
    "epoch": 2,
    "total_epochs": 5,
    "batch": 10,
    "total_batches": 20,
    "elapsed_s": 75.0,
    "eta_s": 42.0,
}


def _record(
    status: str,
    result: TrainingResult | None = None,
    *,
    error: str | None = None,
    reason: str | None = None,
) -> OperationSnapshot:
    return OperationSnapshot(
        operation_id="op_1",
        operation_type="training",
        status=status,  # type: ignore[arg-type]
        mode="local",
        created_at="2025-01-01T00:00:00+00:00",
        started_at=None,
        finished_at=None,
        metadata={},
        progress=ProgressSnapshot(operation_id="op_1"),
        error_message=error,
        cancellation_reason=reason,
        host_session_id=None,
        result=result,
    )


def test_durations_and_numbers() -> None:
    assert fmt.duration_text(75.0) == "1:15"
    assert fmt.duration_text(3725) == "1:02:05"
    assert fmt.duration_text(None) == "–" and fmt.duration_text(float("nan")) == "–"
    assert fmt.number_text(0.81234) == "0.8123"
    assert fmt.number_text(0.61, 3) == "0.610"
    assert fmt.number_text(None) == "–"


def test_the_lines_of_a_training_snapshot() -> None:
    snap = ProgressSnapshot(**TRAINING, metrics={"train_loss": 0.8123, "val_accuracy": 0.61})
    assert fmt.position_text(snap) == "Epoch 2/5 · Batch 10/20"
    assert fmt.times_text(snap) == "elapsed 1:15 · ETA 0:42"
    assert fmt.progress_line(snap) == (
        "[train]  42.4% · Epoch 2/5 · Batch 10/20 · elapsed 1:15 · ETA 0:42"
    )
    assert fmt.epoch_line(snap, 1) == (
        "[train]  42.4% · Epoch 1/5 · train loss 0.8123 acc – · val loss – acc 0.610"
        " · elapsed 1:15 · ETA 0:42"
    )
    loading = ProgressSnapshot(operation_id="op_1", phase="load_data", percentage=5.0, message="L")
    assert fmt.phase_line(loading) == "[load_data]   5.0% · L"
    assert fmt.position_text(loading) == "L"  # outside training: the message
    done = ProgressSnapshot(operation_id="op_1", status="completed", message="Done", elapsed_s=9)
    assert fmt.times_text(done) == "elapsed 0:09"  # no ETA once final
    assert fmt.final_line("completed", done) == "[completed] Done · elapsed 0:09"
    assert fmt.final_line("failed", None) == "[failed] failed · elapsed –"


def test_metrics_fall_back_to_the_batch_loss() -> None:
    assert fmt.metrics_text({}) == ""
    assert fmt.metrics_text({"train_loss_batch": 1.25}) == "batch loss 1.2500"


def test_the_device_line_appears_for_gpu_runs_only() -> None:
    assert fmt.device_line(ProgressSnapshot(operation_id="op_1")) == ""
    gpu = ProgressSnapshot(
        operation_id="op_1",
        resources=DeviceResources(
            gpu_used=True,
            gpu_name="NVIDIA H200",
            gpu_memory_allocated_mb=512.0,
            gpu_utilization_percent=80.0,
        ),
        host_session_id="hs_1",
    )
    assert fmt.device_line(gpu) == (
        "[device] GPU NVIDIA H200 · 512.0 / ? MB · 80.0% busy · host session hs_1"
    )


def test_summary_rows_of_a_completed_run() -> None:
    result = make_result(
        "op_1",
        epochs_completed=3,
        best_epoch=2,
        training_time_s=65.0,
        samples_per_second=1234.5,
        final_train_loss=0.5,
        final_val_accuracy=0.55,
    )
    rows = fmt.summary_rows(_record("completed", result))
    assert rows == [
        ("operation", "op_1 (completed, mode local)"),
        ("strategy", "demo (SYNTH 1h, base 1h)"),
        ("epochs", "3 (best 2, early stop no)"),
        ("training time", "1:05 · 1,234 samples/s"),
        ("train loss / acc", "0.5000 / –"),
        ("val loss / acc", "– / 0.550"),
    ]


def test_summary_rows_show_phase_times_and_peak_memory_when_measured() -> None:
    result = msgspec.structs.replace(
        make_result("op_2"),
        resource_usage=ResourceUsage(
            run_peak_rss_mb=1234.4,
            gpu_memory_peak_mb=2048.0,
            phase_seconds={"load_data": 0.125, "train": 12.5, "save": 0.01},
        ),
    )
    rows = dict(fmt.summary_rows(_record("completed", result)))
    assert rows["phases"] == "load_data 0.12 s · train 12.50 s · save 0.01 s"
    assert rows["memory"] == "peak RSS 1,234 MB · GPU peak 2,048 MB"


def test_summary_rows_of_a_failed_run_and_the_tables() -> None:
    rows = fmt.summary_rows(_record("failed", error="no data for NOPE", reason="a <reason>"))
    assert rows == [
        ("operation", "op_1 (failed, mode local)"),
        ("stop reason", "a <reason>"),
        ("error", "no data for NOPE"),
    ]
    assert fmt.table_text(rows).splitlines() == [
        "─" * 38,
        "operation    op_1 (failed, mode local)",
        "stop reason  a <reason>",
        "error        no data for NOPE",
        "─" * 38,
    ]
    markup = fmt.table_html(rows)
    assert markup.startswith("<table") and markup.endswith("</table>")
    assert markup.count("<tr><th") == 3
    assert "a &lt;reason&gt;" in markup


# -- the outcome -----------------------------------------------------------------------------


def _tested(result: TrainingResult, accuracy: float) -> TrainingResult:
    figures = ClassificationMetrics(
        loss=0.9,
        accuracy=accuracy,
        precision=0.5,
        recall=0.5,
        f1=0.5,
        per_class={},
        confusion_matrix=[],
        samples=100,
        majority_class=1,
        majority_baseline_accuracy=0.4,
    )
    return msgspec.structs.replace(result, test_metrics=figures)


def _saved(result: TrainingResult) -> TrainingResult:
    artifacts = ArtifactsInfo(model_id="demo_v1", model_name="demo", model_version=1)
    return msgspec.structs.replace(result, artifacts=artifacts)


def test_the_outcome_of_a_completed_run_counts_epochs_and_gives_the_test_accuracy() -> None:
    result = _saved(_tested(make_result("op_1", epochs_completed=20), 0.6112))
    assert fmt.outcome_text(_record("completed", result)) == (
        "Completed: 20 epochs, test accuracy 0.61"
    )
    early = make_result("op_1", epochs_completed=1, early_stopped=True)
    assert fmt.outcome_text(_record("completed", early)) == "Completed: 1 epoch (early stop)"


def test_the_outcome_of_a_graceful_stop_says_stopped_and_whether_a_model_was_saved() -> None:
    stopped = make_result("op_1", epochs_completed=5, early_stopped=True)
    record = _record("completed", _saved(stopped), reason="stopped from the notebook")
    assert fmt.outcome_text(record) == "Stopped after epoch 5 (graceful): model saved"
    tested = _record("completed", _saved(_tested(stopped, 0.58)), reason="enough")
    assert fmt.outcome_text(tested) == (
        "Stopped after epoch 5 (graceful): model saved, test accuracy 0.58"
    )
    # The reason may travel only in the result's session info (a host run).
    info = msgspec.structs.replace(stopped.session_info, cancellation_reason="enough")
    unsaved = msgspec.structs.replace(stopped, session_info=info)
    assert fmt.outcome_text(_record("completed", unsaved)) == (
        "Stopped after epoch 5 (graceful): no model saved"
    )


def test_the_outcome_of_a_cancel_a_failure_and_an_interruption_says_where_and_why() -> None:
    partial = make_result("op_1", epochs_completed=3)
    cancelled = _record("cancelled", partial, reason="cancelled from the notebook")
    assert fmt.outcome_text(cancelled) == "Cancelled after epoch 3: cancelled from the notebook"
    early = msgspec.structs.replace(
        _record("cancelled", reason="changed my mind"),
        progress=ProgressSnapshot(operation_id="op_1", phase="indicators"),
    )
    assert fmt.outcome_text(early) == "Cancelled during indicators: changed my mind"
    failed = msgspec.structs.replace(
        _record("failed", error="no data for NOPE\nTraceback ..."),
        progress=ProgressSnapshot(operation_id="op_1", phase="load_data"),
    )
    assert fmt.outcome_text(failed) == "Failed during load_data: no data for NOPE"
    lost = _record("interrupted", make_result("op_1", epochs_completed=2))
    assert fmt.outcome_text(lost) == "Interrupted after epoch 2: the process running it ended"


def test_the_final_line_gives_the_outcome_when_there_is_one() -> None:
    done = ProgressSnapshot(operation_id="op_1", status="completed", message="Done", elapsed_s=9)
    assert fmt.final_line("completed", done, "Completed: 2 epochs") == (
        "[completed] Completed: 2 epochs · elapsed 0:09"
    )


def test_a_regression_summary_shows_its_figures_beside_the_baselines() -> None:
    result = make_result("op_r", final_train_loss=0.0002, final_train_accuracy=0.55)
    figures = RegressionMetrics(
        loss=0.0001,
        mae=0.0123,
        rmse=0.0171,
        directional_accuracy=0.561,
        correlation=None,
        samples=400,
        train_mean=0.0004,
        zero_baseline_mae=0.0131,
        mean_baseline_mae=0.0130,
        mean_baseline_directional_accuracy=0.512,
    )
    result = msgspec.structs.replace(result, test_regression=figures)
    rows = dict(fmt.summary_rows(record_of(result)))
    assert rows["test"] == (
        "mae 0.0123 · rmse 0.0171 · directional accuracy 0.561 · correlation n/a · baselines: "
        "zero mae 0.0131 · train-mean mae 0.0130, directional accuracy 0.512"
    )
    assert rows["train loss / dir. acc"] == "0.0002 / 0.550"
