"""The HTML view over a real run: bar, curve and summary in one block of markup."""

from __future__ import annotations

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
    assert "Completed: 2 epochs, test accuracy" in view.markup
    with pytest.raises(ConfigError):
        _ = view.bar  # no widgets in html mode
