"""What a progress view knows, apart from how it is drawn.

:class:`ViewState` takes the snapshots of one operation and keeps the latest one, the
per-epoch curve, how many snapshots arrived and, at the end, the operation's final record.
Each snapshot it takes says what it brought (a new phase, a finished epoch, the end), so a
renderer redraws only what changed. Every renderer (widget, HTML, text) draws from this one
state; none keeps its own copy of the run.

Example:
    >>> from ktrdr_lib.schemas.progress import ProgressSnapshot
    >>> state = ViewState("op_1")
    >>> sorted(state.apply(ProgressSnapshot(operation_id="op_1", sequence=1, phase="train")))
    ['phase']
    >>> state.status, state.bar_style
    ('pending', 'info')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import FINAL_STATUSES

if TYPE_CHECKING:
    from ktrdr_lib.schemas.operations import OperationSnapshot

__all__ = ["BAR_STYLES", "ViewState"]

BAR_STYLES: dict[str, str] = {
    "pending": "info",
    "running": "info",
    "cancelling": "warning",
    "completed": "success",
    "failed": "danger",
    "cancelled": "warning",
    "interrupted": "danger",
}
"""The bar's style per status (ipywidgets' names): blue while running, green on success, red
on failure, amber on cancel."""


class ViewState:
    """What the view knows: the latest snapshot, the epoch curve, and what just changed.

    Args:
        operation_id: the operation shown.

    Attributes:
        latest: the newest snapshot taken (older or repeated ones are ignored).
        curve: one :class:`EpochHistoryRow` per finished epoch.
        snapshots_seen: how many snapshots were taken.
        record: the operation's final record, once the view has read it.
    """

    def __init__(self, operation_id: str) -> None:
        self.operation_id = operation_id
        self.latest: ProgressSnapshot | None = None
        self.curve: list[EpochHistoryRow] = []
        self.snapshots_seen = 0
        self.record: OperationSnapshot | None = None

    def apply(self, snap: ProgressSnapshot) -> set[str]:
        """Take a snapshot.

        Args:
            snap: the next snapshot of the operation.

        Returns:
            The events it brings: ``phase`` (a new phase), ``step`` (a new message within a
            phase outside training, e.g. ``Placebo 2 of 3`` while placebos train after the
            run), ``epoch`` (an epoch finished: the curve grew), ``final`` (the run ended);
            empty for a stale snapshot.
        """
        previous = self.latest
        if previous is not None and snap.sequence <= previous.sequence:
            return set()
        self.latest = snap
        self.snapshots_seen += 1
        events: set[str] = set()
        if previous is None or snap.phase != previous.phase:
            events.add("phase")
        elif (
            snap.message != previous.message
            and snap.phase not in ("queued", "train")
            and snap.status not in FINAL_STATUSES  # the end has its own line
        ):
            events.add("step")
        last_epoch = self.curve[-1].epoch if self.curve else 0
        if snap.metrics_epoch > last_epoch:
            m = snap.metrics
            self.curve.append(
                EpochHistoryRow(
                    epoch=snap.metrics_epoch,
                    train_loss=m.get("train_loss"),
                    train_accuracy=m.get("train_accuracy"),
                    val_loss=m.get("val_loss"),
                    val_accuracy=m.get("val_accuracy"),
                )
            )
            events.add("epoch")
        if snap.status in FINAL_STATUSES:
            events.add("final")
        return events

    def set_history(self, rows: Sequence[EpochHistoryRow]) -> None:
        """Replace the curve with the stored epoch history (when it has at least as much)."""
        if len(rows) >= len(self.curve):
            self.curve = list(rows)

    @property
    def status(self) -> str:
        """The status shown: the final record's when known, else the latest snapshot's."""
        if self.record is not None:
            return self.record.status
        return self.latest.status if self.latest is not None else "pending"

    @property
    def is_final(self) -> bool:
        """Whether the view has shown the run's end."""
        return self.status in FINAL_STATUSES

    @property
    def bar_style(self) -> str:
        """The bar's style for :attr:`status` (see :data:`BAR_STYLES`)."""
        return BAR_STYLES.get(self.status, "info")
