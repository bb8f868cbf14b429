"""ViewState: what each snapshot brings, stale snapshots, the curve, the status shown."""

from __future__ import annotations

from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.views.state import BAR_STYLES, ViewState


def _snap(sequence: int, **fields: object) -> ProgressSnapshot:
    return ProgressSnapshot(operation_id="op_1", sequence=sequence, **fields)  # type: ignore[arg-type]


def test_snapshots_bring_phase_epoch_and_final_events() -> None:
    state = ViewState("op_1")
    assert state.status == "pending" and not state.is_final
    assert state.apply(_snap(1, status="running", phase="load_data")) == {"phase"}
    assert state.apply(_snap(2, status="running", phase="load_data")) == set()
    events = state.apply(
        _snap(3, status="running", phase="train", metrics={"train_loss": 0.9}, metrics_epoch=1)
    )
    assert events == {"phase", "epoch"}
    assert state.curve == [EpochHistoryRow(epoch=1, train_loss=0.9)]
    assert state.apply(_snap(3, status="completed")) == set()  # stale: ignored
    assert state.snapshots_seen == 3
    assert state.apply(_snap(4, status="completed", phase="train")) == {"final"}
    assert state.status == "completed" and state.is_final
    assert state.bar_style == "success"


def test_a_new_message_within_a_phase_is_a_step_outside_training() -> None:
    state = ViewState("op_1")
    state.apply(_snap(1, status="running", phase="evaluate", message="Evaluating"))
    placebo = "Placebo 1 of 2: the same training on a random walk"
    assert state.apply(_snap(2, status="running", phase="evaluate", message=placebo)) == {"step"}
    assert state.apply(_snap(3, status="running", phase="evaluate", message=placebo)) == set()
    # training and the queue change their message all the time: no step there
    state.apply(_snap(4, status="running", phase="train", message="Epoch 1/2"))
    assert state.apply(_snap(5, status="running", phase="train", message="Epoch 2/2")) == set()
    # nor at the end, which has a line of its own
    state.apply(_snap(6, status="running", phase="save", message="Saving the model"))
    assert state.apply(_snap(7, status="completed", phase="save", message="Done")) == {"final"}


def test_the_stored_history_replaces_a_shorter_curve() -> None:
    state = ViewState("op_1")
    state.apply(_snap(1, metrics_epoch=2))
    state.set_history([])  # shorter: the view keeps what it saw
    assert [row.epoch for row in state.curve] == [2]
    state.set_history([EpochHistoryRow(epoch=1), EpochHistoryRow(epoch=2)])
    assert [row.epoch for row in state.curve] == [1, 2]


def test_bar_styles_cover_every_status() -> None:
    assert BAR_STYLES["failed"] == BAR_STYLES["interrupted"] == "danger"
    assert BAR_STYLES["cancelled"] == "warning"
    state = ViewState("op_1")
    state.apply(_snap(1, status="cancelled"))
    assert state.bar_style == "warning"
