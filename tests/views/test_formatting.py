"""The shared text pieces: numbers, durations, the progress lines and the one summary table.

These are what every renderer (and the command line) prints, so their exact text is pinned.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot
from ktrdr_lib.schemas.results import RegressionMetrics, TrainingResult
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
    assert markup.startswith("<table><tr><th") and markup.endswith("</table>")
    assert "a &lt;reason&gt;" in markup


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
