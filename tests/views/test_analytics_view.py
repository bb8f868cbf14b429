"""The notebook view's analytics curves: gradient norm and validation F1 per class (a
regression's MAE), shown once a run that recorded analytics ended, and only then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.schemas.results import (
    EpochAnalytics,
    RegressionEpochFigures,
    TrainingAnalytics,
)
from ktrdr_lib.views.curves import analytics_svg

pytest.importorskip("ipywidgets")


def _regression(epochs: int) -> TrainingAnalytics:
    return TrainingAnalytics(
        task="regression",
        confidence_threshold=0.6,
        epochs=[
            EpochAnalytics(
                epoch=epoch,
                learning_rate=0.01,
                gradient_norm=1.0 / epoch,
                parameters={},
                regression=RegressionEpochFigures(
                    mae=0.02 / epoch,
                    rmse=0.03,
                    directional_accuracy=0.5,
                    prediction_mean=0.0,
                    prediction_std=0.01,
                ),
            )
            for epoch in range(1, epochs + 1)
        ],
        fuzzy_active_level=0.01,
        stop_reason="max_epochs",
    )


def test_a_regression_draws_gradient_norm_and_validation_mae() -> None:
    svg = analytics_svg(_regression(3))
    assert svg.count("<polyline") == 2
    assert "gradient norm per epoch" in svg and "validation MAE" in svg
    assert analytics_svg(_regression(1)).count("<circle") == 2  # one epoch: dots
    assert analytics_svg(_regression(0)) == ""


def test_the_widget_shows_analytics_curves_of_a_run_that_recorded_them(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    plain = orch.start_training(small_strategy_file, epochs=1)
    plain_view: Any = plain.display("widget")
    assert plain.wait(timeout=120).status == "completed"
    assert plain_view.wait(timeout=30)
    assert plain_view.parts.analytics.value == ""
    assert plain_view.parts.analytics.layout.display == "none"

    op = orch.start_training(small_strategy_file, epochs=2, detailed_analytics=True)
    view: Any = op.display("widget")
    html_view: Any = op.display("html")
    assert op.wait(timeout=120).status == "completed"
    assert view.wait(timeout=30) and html_view.wait(timeout=30)
    shown = view.parts.analytics.value
    assert view.parts.analytics.layout.display is None
    assert "gradient norm per epoch" in shown and "validation F1 per class" in shown
    assert shown.count("<polyline") == 4  # the gradient norm and F1 of BUY, HOLD and SELL
    assert "— BUY" in shown and "— SELL" in shown
    assert "validation F1 per class" in html_view.markup
