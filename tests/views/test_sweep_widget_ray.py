"""The sweep widget over a real sweep on a local Ray (2 CPUs): its rows follow the trials, and
Cancel stops every one of them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.views.sweep import sweep_view
from tests.integration.ray_support import local_ray, ray_orch

__all__ = ["local_ray", "ray_orch"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]

pytest.importorskip("ipywidgets")


def test_cancel_button_cancels_every_trial_of_a_running_sweep(
    ray_orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    handle = ray_orch.sweep(
        small_strategy_file,
        {"model.training.learning_rate": [0.01, 0.001]},
        epochs=200,
        overrides={"model.training.batch_size": 8},  # ~220 batches an epoch
    )
    view = sweep_view(ray_orch, handle.operation_id, "widget", interval=0.1)
    deadline = time.monotonic() + 120

    def both_train_and_one_finished_an_epoch() -> bool:
        rows = view.parts.rows.values()
        return (
            len(rows) == 2
            and all(row.status.value == "running" for row in rows)
            and any(row.epoch.value.split("/")[0] not in ("", "0") for row in rows)
        )

    while not both_train_and_one_finished_an_epoch():
        shown = [(row.status.value, row.epoch.value) for row in view.parts.rows.values()]
        assert time.monotonic() < deadline, f"no trial finished an epoch in 120 s: {shown}"
        assert not view.state.is_final, view.state.status
        time.sleep(0.1)

    view.cancel_button.click()
    assert view.cancel_button.disabled and view.stop_button.disabled  # at once
    assert view.wait(timeout=90)
    final = ray_orch.get_sweep(handle.operation_id)
    assert final.operation.status == "cancelled"
    assert final.operation.cancellation_reason == "cancelled from the notebook"
    assert {trial.status for trial in final.trials} == {"cancelled"}
    assert all(trial.epoch < 200 for trial in final.trials)
    parts = view.parts
    assert parts.bar.bar_style == "warning"
    assert {row.status.value for row in parts.rows.values()} == {"cancelled"}
    assert parts.headline.value.startswith("<b>Cancelled: 0 of 2 trials completed; cancelled from")
    assert parts.message.value == ""  # "Cancelling…" gave way to how it ended
    assert "<b>Ranking</b>" in parts.summary.value
