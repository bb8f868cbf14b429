"""The sweep view: its state, the text it shares with the command line, and each renderer
(text, HTML, widget) over a scripted sweep; the Cancel and Stop buttons cancel the sweep.

The view reads a sweep through its :class:`~ktrdr_lib.views.sweep.progress.SweepSource` seam;
here a scripted source plays a sweep's snapshots and records the cancels it is asked for.
tests/views/test_sweep_widget_ray.py follows a real sweep on a local Ray.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from ktrdr_lib.errors import ConfigError, StateConflictError
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.sweeps import SweepResult, SweepSnapshot
from ktrdr_lib.views.sweep import SweepProgress, sweep_view
from ktrdr_lib.views.sweep.formatting import (
    best_trial,
    config_text,
    ranked_rows,
    sweep_headline,
)
from ktrdr_lib.views.sweep.state import SweepViewState
from tests.builders import make_sweep, make_trial

START = make_sweep([make_trial(0, "pending"), make_trial(1, "pending")], "pending")
RUNNING = make_sweep([make_trial(0, epoch=1, metric=0.9), make_trial(1, epoch=1, metric=0.7)])
ENDED_TRIALS = [
    make_trial(1, "completed", epoch=2, metric=0.65, best_epoch=2, test_accuracy=0.6),
    make_trial(0, "completed", epoch=1, metric=0.9, best_epoch=1, stopped_early=True),
]
ENDED = make_sweep(
    sorted(ENDED_TRIALS, key=lambda t: t.trial),
    "completed",
    result=SweepResult(
        metric="val_loss",
        mode="min",
        trials=ENDED_TRIALS,
        best_trial=1,
        best_operation_id="op_trial_1",
        best_model_name="small_test_sweep_best",
        best_model_version=3,
        early_stopped=1,
    ),
)


class ScriptedSweeps:
    """A sweep source that plays ``snapshots`` and then answers the last one; records cancels."""

    def __init__(self, snapshots: list[SweepSnapshot], *, refuse: str | None = None) -> None:
        self.snapshots = snapshots
        self.refuse = refuse
        self.cancels: list[dict[str, Any]] = []

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        return self.snapshots[-1]

    def follow_sweep(self, sweep_id: str, *, interval: float = 0.5) -> Iterator[SweepSnapshot]:
        yield from self.snapshots

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        if self.refuse is not None:
            raise StateConflictError(self.refuse)
        self.cancels.append({"id": operation_id, "graceful": graceful, "reason": reason})
        return self.snapshots[-1].operation


# -- state and text ------------------------------------------------------------------------


def test_the_state_says_which_trials_moved() -> None:
    state = SweepViewState("op_sweep_1")
    first = state.apply(START)
    assert [t.trial for t in first.trials] == [0, 1] and first.status and not first.final
    assert not state.apply(START)  # a repeat changes nothing
    moved = state.apply(RUNNING)
    assert [t.trial for t in moved.trials] == [0, 1] and moved.status
    assert state.percentage == pytest.approx(50.0)  # each trial 1 of 2 epochs
    assert state.bar_style == "info"
    ended = state.apply(ENDED)
    assert ended.final and [t.trial for t in ended.trials] == [0, 1]
    assert (state.status, state.bar_style, state.percentage) == ("completed", "success", 100.0)


def test_headlines_and_the_best_trial() -> None:
    assert sweep_headline(START) == "0 of 2 trials done · 0 running"
    assert (
        sweep_headline(RUNNING) == "0 of 2 trials done · 2 running · best val_loss 0.7000 (trial 1)"
    )
    assert sweep_headline(ENDED) == (
        "Completed: 2 trials (1 stopped early), best val_loss 0.6500 (trial 1), model "
        "small_test_sweep_best v3"
    )
    failed = make_sweep([make_trial(0, "failed")], "failed", error_message="no data\nTraceback")
    assert sweep_headline(failed) == "Failed: no data"
    maximised = msgspec.structs.replace(RUNNING, mode="max", metric="val_accuracy")
    best = best_trial(maximised)
    assert best is not None and best.trial == 0
    assert [row[1] for row in ranked_rows(maximised)[1:]] == ["0", "1"]


def test_config_text_uses_short_names_unless_they_clash() -> None:
    assert config_text({"model.training.learning_rate": 0.001, "seed": True}) == (
        "learning_rate=0.001 · seed=true"
    )
    assert config_text({"a.dropout": 0.1, "b.dropout": 0.2}) == "a.dropout=0.1 · b.dropout=0.2"


def test_text_mode_prints_moves_then_the_ranking() -> None:
    stream = io.StringIO()
    view = sweep_view(ScriptedSweeps([START, RUNNING, ENDED]), "op_sweep_1", "text", stream=stream)
    assert view.wait(timeout=10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[sweep] pending · 2 trials · val_loss (min) · grid"
    assert "[trial 1] running · epoch 1/2 · val_loss 0.7000 · learning_rate=0.001" in lines
    assert lines.count("[trial 0] pending · epoch 0/2 · learning_rate=0.01") == 1
    ranking = lines.index("[completed] " + sweep_headline(ENDED))
    assert lines[ranking + 1].split()[:5] == ["rank", "trial", "status", "epochs", "val_loss"]
    assert lines[ranking + 3].split()[:2] == ["1", "1"]  # best first
    assert view.lines_written == len(lines)


def test_off_draws_nothing_and_bad_modes_are_refused() -> None:
    view = sweep_view(ScriptedSweeps([START, ENDED]), "op_sweep_1", "off")
    assert view.wait(timeout=10)
    assert view.renders == 0 and view.lines_written == 0
    with pytest.raises(ConfigError, match="display mode 'fancy' is unknown"):
        sweep_view(ScriptedSweeps([ENDED]), "op_sweep_1", "fancy")
    with pytest.raises(ConfigError, match="interval must be > 0"):
        SweepProgress(ScriptedSweeps([ENDED]), "op_sweep_1", "text", interval=0)
    with pytest.raises(ConfigError, match="widgets exist in 'widget' mode"):
        _ = view.cancel_button


def test_html_mode_keeps_a_table_per_trial_then_the_ranking() -> None:
    view = SweepProgress(ScriptedSweeps([START, RUNNING, ENDED]), "op_sweep_1", "html", start=False)
    view.update(START)
    assert view.markup.count("<tr>") == 3  # header + a row per trial
    assert "data-status='pending'" in view.markup
    view.start()
    assert view.wait(timeout=10)
    assert "data-status='completed'" in view.markup
    assert "small_test_sweep_best v3" in view.markup
    assert "<th style='text-align:left;padding:1px 1em 1px 0;white-space:nowrap'>rank" in (
        view.markup
    )


# -- the widget ----------------------------------------------------------------------------


def test_the_widget_has_a_row_per_trial_and_ends_with_the_ranking() -> None:
    pytest.importorskip("ipywidgets")
    source = ScriptedSweeps([START, RUNNING, ENDED])
    view = SweepProgress(source, "op_sweep_1", "widget", start=False)
    parts = view.parts
    view.update(RUNNING)
    assert sorted(parts.rows) == [0, 1]
    row = parts.rows[1]
    assert (row.status.value, row.epoch.value, row.metric.value) == ("running", "1/2", "0.7000")
    assert (row.bar.value, row.bar.max, row.bar.bar_style) == (1.0, 2.0, "info")
    assert row.config.value == "learning_rate=0.001"
    assert parts.bar.value == pytest.approx(50.0) and parts.bar.description == "50%"
    assert "best val_loss 0.7000 (trial 1)" in parts.headline.value
    assert len(parts.grid.children) == 6 * 3  # header + two rows of six cells

    view.start()
    assert view.wait(timeout=10)
    assert parts.bar.bar_style == "success" and parts.bar.value == 100.0
    assert view.cancel_button.disabled and view.stop_button.disabled
    assert parts.rows[0].status.value == "stopped early"
    assert parts.rows[0].bar.bar_style == "warning"
    assert parts.headline.value.startswith("<b>Completed: 2 trials (1 stopped early)")
    assert "<b>Ranking</b>" in parts.summary.value and "test acc" in parts.summary.value
    assert source.cancels == []


def test_cancel_and_stop_buttons_cancel_the_whole_sweep() -> None:
    pytest.importorskip("ipywidgets")
    source = ScriptedSweeps([START, RUNNING])
    view = SweepProgress(source, "op_sweep_1", "widget", start=False)
    view.update(RUNNING)
    view.stop_button.click()
    assert source.cancels == [
        {"id": "op_sweep_1", "graceful": True, "reason": "stopped from the notebook"}
    ]
    assert view.stop_button.disabled and not view.cancel_button.disabled  # abort still possible
    assert "Stopping every trial after its epoch" in view.parts.message.value
    view.cancel_button.click()
    assert source.cancels[-1] == {
        "id": "op_sweep_1",
        "graceful": False,
        "reason": "cancelled from the notebook",
    }
    assert view.cancel_button.disabled and "Cancelling every trial" in view.parts.message.value


def test_a_refused_cancel_is_shown_not_raised() -> None:
    pytest.importorskip("ipywidgets")
    view = SweepProgress(
        ScriptedSweeps([RUNNING], refuse="operation op_sweep_1 is completed"),
        "op_sweep_1",
        "widget",
        start=False,
    )
    view.cancel_button.click()
    assert "op_sweep_1 is completed" in view.parts.message.value
    assert not view.cancel_button.disabled


class ScriptedSweepOrchestrator(ScriptedSweeps):
    """The scripted source as an orchestrator an OperationHandle can point at."""

    def get_operation(self, operation_id: str) -> OperationSnapshot:
        return self.snapshots[-1].operation


def test_a_sweep_handle_displays_the_sweep_view() -> None:
    from ktrdr_lib.operations.handle import OperationHandle

    source = ScriptedSweepOrchestrator([START, RUNNING, ENDED])
    handle = OperationHandle(source, "op_sweep_1")  # type: ignore[arg-type]
    stream = io.StringIO()
    view = handle.display("text", stream=stream, interval=0.01)
    assert isinstance(view, SweepProgress)
    assert view.wait(5)
    assert handle.view is view
    assert "small_test_sweep_best" in stream.getvalue()


def test_table_cells_keep_to_one_line_but_the_settings_wrap() -> None:
    """In a narrow notebook a status broke mid-word ("compl/eted"); only the last column, the
    trial's settings, may wrap."""
    from ktrdr_lib.views.sweep.formatting import grid_html

    markup = grid_html(
        [["rank", "status", "config"], ["1", "completed", "learning_rate=0.01, dropout=0.2"]]
    )
    body = markup.split("</tr>", 1)[1]
    cells = body.split("<td ")[1:]
    assert len(cells) == 3
    assert all("white-space:nowrap" in cell for cell in cells[:2])
    assert "overflow-wrap:anywhere" in cells[2] and "nowrap" not in cells[2]
