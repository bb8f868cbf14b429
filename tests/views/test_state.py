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
