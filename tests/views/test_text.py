"""The text view: a bounded number of lines per run, thinned epoch lines, the summary table."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.views.formatting import summary_rows
from ktrdr_lib.views.progress import TrainingProgress
from ktrdr_lib.views.state import ViewState
from ktrdr_lib.views.text import TextRenderer

pytest.importorskip("ipywidgets")


def test_text_mode_writes_a_bounded_number_of_lines(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    stream = io.StringIO()
    op = orch.start_training(small_strategy_file, epochs=3, overrides={"batch_size": 8})
    view = op.display("text", stream=stream)
    op.wait(timeout=120)
    assert view.wait(timeout=30)

    final = op.snapshot()
    batches = final.total_batches * final.total_epochs
    assert batches >= 600  # many batches...
    lines = stream.getvalue().splitlines()
    summary = summary_rows(op.info())
    # ...few lines: phases, epochs, every 10 %, then the summary table (its rows, two rules)
    assert len(lines) - (len(summary) + 2) <= 20
    assert len(lines) == view.lines_written
    assert len([line for line in lines if re.search(r"Epoch \d/3 · train loss", line)]) == 3
    assert len([line for line in lines if "· Batch " in line]) <= 10
    evaluation = op.result().evaluation
    assert evaluation is not None
    [ended] = [line for line in lines if line.startswith("[completed]")]
    assert f"Completed: 3 epochs, {evaluation.headline} · elapsed" in ended
    # the summary leads with the model against its strongest baseline, then its economics
    table = lines[lines.index(ended) + 1 :]
    assert table[1].split(maxsplit=1) == ["evaluation", evaluation.headline]
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in table[1:-1]]
    assert labels[:8] == [
        "evaluation",
        "baselines",
        "economics",
        "model",
        "buy and hold",
        "baseline",
        "costs",
        "placebo",
    ]
    assert table[8].split(maxsplit=1)[1].startswith("no placebo run")
    assert any(line.startswith("test ") for line in lines)


def test_text_mode_thins_epoch_lines_of_long_runs(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=1)
    stream = io.StringIO()
    view = TrainingProgress(op, "text", stream=stream, start=False, max_epoch_lines=20)
    for epoch in range(1, 401):
        view.update(
            ProgressSnapshot(
                operation_id=op.operation_id,
                sequence=epoch,
                status="running",
                phase="train",
                percentage=10 + 85 * epoch / 400,
                epoch=epoch,
                total_epochs=400,
                batch=5,
                total_batches=5,
                metrics={"train_loss": 1.0 / epoch},
                metrics_epoch=epoch,
            )
        )
    lines = stream.getvalue().splitlines()
    assert len(view.state.curve) == 400
    epoch_lines = [line for line in lines if "train loss" in line]
    assert len(epoch_lines) == 20  # every 20th epoch...
    assert len(lines) <= 1 + 20 + 10  # ...plus the phase line and the 10 % marks
    assert epoch_lines[-1].startswith("[train]  95.0% · Epoch 400/400")
    op.wait(timeout=60)


def test_each_placebo_after_the_run_gets_its_line() -> None:
    stream = io.StringIO()
    view = TextRenderer(stream, every_percent=10, every_s=30, max_epoch_lines=20)
    state = ViewState("op_1")
    for sequence, message in enumerate(["Evaluating", "Placebo 1 of 2", "Placebo 2 of 2"]):
        snap = ProgressSnapshot(
            operation_id="op_1",
            sequence=sequence + 1,
            status="running",
            phase="evaluate",
            percentage=95.0,
            message=message,
        )
        view.render(state, state.apply(snap))
    assert stream.getvalue().splitlines() == [
        "[evaluate]  95.0% · Evaluating",
        "[evaluate]  95.0% · Placebo 1 of 2",
        "[evaluate]  95.0% · Placebo 2 of 2",
    ]
