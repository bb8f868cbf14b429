"""The HTML view over a real run: bar, curve and summary in one block of markup."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from ktrdr_lib import ConfigError, TrainingOrchestrator

pytest.importorskip("ipywidgets")


def test_html_view_draws_bar_curve_and_summary(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=2)
    view = op.display("html")
    op.wait(timeout=120)
    assert view.wait(timeout=30)
    assert "data-status='completed'" in view.markup
    assert "<svg" in view.markup and "<table" in view.markup
    evaluation = op.result().evaluation
    assert evaluation is not None
    headline = html.escape(evaluation.headline)
    assert f"<b>Completed: 2 epochs, {headline}</b>" in view.markup
    summary = view.markup[view.markup.index("<table") :]
    assert summary.index(f"<td style='text-align:left;overflow-wrap:anywhere'>{headline}</td>") < (
        summary.index(">operation</th>")
    )
    for label in ("baselines", "economics", "buy and hold", "costs", "placebo"):
        assert f">{label}</th>" in summary
    assert "no placebo run: pass placebo_runs=N" in summary
    with pytest.raises(ConfigError):
        _ = view.bar  # no widgets in html mode
