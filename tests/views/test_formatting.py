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
    BaselineFigures,
    ClassificationMetrics,
    EconomicsReport,
    HonestEvaluation,
    PlaceboReport,
    RegressionMetrics,
    ResourceUsage,
    SignalEconomics,
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


# -- the honest comparison -------------------------------------------------------------------

ECONOMICS = EconomicsReport(
    model=SignalEconomics(
        bars=593,
        total_return=0.189,
        annualised_return=0.081,
        sharpe=0.853,
        max_drawdown=0.128,
        hit_rate=0.528,
        turnover=0.17,
        exposure=0.96,
    ),
    buy_and_hold=SignalEconomics(
        bars=593, total_return=0.728, sharpe=1.5, max_drawdown=0.073, hit_rate=0.572, exposure=1
    ),
    strongest_baseline=SignalEconomics(
        bars=593, total_return=-0.05, max_drawdown=0.2, turnover=0.295, exposure=1.0, costs=0.0123
    ),
    cost_source="decisions.cost_model.round_trip_cost = 0.002",
    rules=["BUY +1, SELL −1, HOLD 0", "flat below decisions.confidence_threshold = 0.6"],
)
HEADLINE = (
    "test accuracy 0.730 vs 0.798 for swing_state_retrace (the strongest baseline, no model): "
    "-0.068"
)


def _evaluated(result: TrainingResult, **fields: Any) -> TrainingResult:
    evaluation = HonestEvaluation(
        headline=HEADLINE,
        score_name="accuracy",
        model_score=0.73,
        baselines=[
            BaselineFigures(name="swing_state_retrace", description="", score=0.798, f1=0.524),
            BaselineFigures(name="majority", description="", score=0.6784, f1=0.269),
        ],
        strongest_baseline="swing_state_retrace",
        edge=-0.068,
        economics=ECONOMICS,
        **fields,
    )
    return msgspec.structs.replace(result, evaluation=evaluation)


def test_the_summary_leads_with_the_model_against_its_strongest_baseline() -> None:
    result = _evaluated(_saved(_tested(make_result("op_1", epochs_completed=2), 0.73)))
    rows = fmt.summary_rows(_record("completed", result))
    assert rows[:9] == [
        ("evaluation", HEADLINE),
        (
            "baselines",
            "accuracy (f1): swing_state_retrace 0.798 (0.524) · majority 0.678 (0.269)",
        ),
        (
            "economics",
            (
                "test split, 593 bars: BUY +1, SELL −1, HOLD 0; flat below "
                "decisions.confidence_threshold = 0.6"
            ),
        ),
        (
            "  model",
            (
                "return  +18.9 % · a year   +8.1 % · Sharpe  0.85 · max drawdown -12.8 % · "
                "hit rate  52.8 % · exposure  96.0 % · turnover 0.170"
            ),
        ),
        (
            "  buy and hold",
            (
                "return  +72.8 % · a year        – · Sharpe  1.50 · max drawdown  -7.3 % · "
                "hit rate  57.2 % · exposure 100.0 % · turnover 0.000"
            ),
        ),
        (
            "  baseline",
            (
                "return   -5.0 % · a year        – · Sharpe     – · max drawdown -20.0 % · "
                "hit rate       – · exposure 100.0 % · turnover 0.295 · costs 1.2 % "
                "(swing_state_retrace)"
            ),
        ),
        ("  costs", "decisions.cost_model.round_trip_cost = 0.002"),
        ("placebo", result.evaluation.placebo_note if result.evaluation else ""),
        ("operation", "op_1 (completed, mode local)"),
    ]
    # no placebo ran: the summary says so and how to ask for them
    assert rows[7][1].startswith("no placebo run: pass placebo_runs=N (ktrdr train --placebo N)")
    # the majority class is one more figure of the test row, not the headline
    assert dict(rows)["test"].endswith("majority-class baseline 0.400")
    # figures of the three position series line up in a text table
    lines = fmt.table_text(rows).splitlines()
    series = [line for line in lines if "return " in line]
    assert len(series) == 3
    assert len({line.index("Sharpe") for line in series}) == 1
    assert len({line.index("turnover") for line in series}) == 1
    # the view's headline says the same
    assert fmt.outcome_text(_record("completed", result)) == f"Completed: 2 epochs, {HEADLINE}"
    stopped = _record("completed", result, reason="enough")
    assert fmt.outcome_text(stopped) == (
        f"Stopped after epoch 2 (graceful): model saved, {HEADLINE}"
    )


def test_the_summary_gives_the_placebos_figures_when_they_ran() -> None:
    placebo = PlaceboReport(
        runs=3,
        operation_ids=["op_p0", "op_p1", "op_p2"],
        scores=[0.62, 0.71],
        mean=0.665,
        total_returns=[-0.16, 0.202],
        sharpes=[None, 1.1],
        note="placebo 3 failed: no data",
    )
    note = "2 placebo runs on random walks: accuracy 0.665 ± 0.064; edge +0.065, z +1.02"
    result = _evaluated(make_result("op_1"), placebo_runs=3, placebo=placebo, placebo_note=note)
    rows = dict(fmt.summary_rows(_record("completed", result)))
    assert rows["placebo"] == note
    assert rows["  placebos"] == (
        "accuracy 0.620 · 0.710; return -16.0 % · +20.2 %; placebo 3 failed: no data"
    )
    # none completed: the note says why, and there are no figures to give
    none_done = PlaceboReport(runs=2, operation_ids=["op_p0", "op_p1"])
    result = _evaluated(make_result("op_1"), placebo_runs=2, placebo=none_done)
    assert "  placebos" not in dict(fmt.summary_rows(_record("completed", result)))


def test_a_regression_summary_leads_with_its_mae_against_the_better_baseline() -> None:
    evaluation = HonestEvaluation(
        headline="test MAE 0.01230 vs 0.01300 for train_mean (the strongest baseline): "
        "+0.00070 better",
        score_name="mae",
        model_score=0.0123,
        baselines=[
            BaselineFigures(name="train_mean", description="", score=0.013),
            BaselineFigures(name="zero", description="", score=0.0131),
        ],
        strongest_baseline="train_mean",
        edge=0.0007,
    )
    result = msgspec.structs.replace(make_result("op_r"), evaluation=evaluation)
    rows = fmt.summary_rows(record_of(result))
    assert rows[:3] == [
        ("evaluation", evaluation.headline),
        ("baselines", "mae: train_mean 0.01300 · zero 0.01310"),
        ("placebo", evaluation.placebo_note),
    ]  # no economics without next-bar returns


def test_html_tables_indent_sub_rows() -> None:
    markup = fmt.table_html([("economics", "e"), ("  model", "m")])
    assert "<th style='text-align:left;vertical-align:top;padding:1px 1em 1px 0;" in markup
    assert "padding-left:1em;font-weight:normal'>model</th>" in markup
    assert ">economics</th>" in markup and "font-weight:normal'>economics" not in markup


def test_summary_rows_say_why_a_run_saved_no_model() -> None:
    from ktrdr_lib.pipeline.aggregate import no_model_reason
    from ktrdr_lib.schemas.results import ArtifactsInfo

    reason = no_model_reason("cancelled", 0)
    result = msgspec.structs.replace(make_result(), artifacts=ArtifactsInfo(no_model_reason=reason))
    rows = dict(fmt.summary_rows(record_of(result, status="cancelled")))
    assert rows["model"] == reason
    assert reason.startswith("no model was saved: the run was cancelled before completing")
    saved = msgspec.structs.replace(
        make_result(), artifacts=ArtifactsInfo(model_id="m/v1", model_path="/m/v1")
    )
    assert dict(fmt.summary_rows(record_of(saved)))["model"] == "m/v1  /m/v1"
