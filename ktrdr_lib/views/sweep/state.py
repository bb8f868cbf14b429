"""What a sweep view knows, apart from how it is drawn.

:class:`SweepViewState` takes the snapshots of one sweep
(:class:`~ktrdr_lib.schemas.sweeps.SweepSnapshot`) and keeps the latest one; each snapshot it
takes says what it brought (:class:`SweepChanges`: the trials whose status, epoch or metric
moved, whether the sweep's own status changed, whether it ended), so a renderer redraws or
prints only that. The notebook widget, the HTML and text views and the command line's table
all draw from this one state.

Example:
    >>> state = SweepViewState("op_sweep_1")
    >>> state.status, state.bar_style, state.percentage
    ('pending', 'info', 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.views.state import BAR_STYLES

if TYPE_CHECKING:
    from ktrdr_lib.schemas.sweeps import SweepSnapshot, SweepTrial

__all__ = ["SweepChanges", "SweepViewState"]


@dataclass(frozen=True)
class SweepChanges:
    """What one snapshot brought.

    Attributes:
        trials: the trials that are new or whose status, epoch, metric or early stop changed,
            in trial order.
        status: the sweep's own status changed (or this is the first snapshot).
        final: the sweep has ended.
    """

    trials: tuple[SweepTrial, ...] = ()
    status: bool = False
    final: bool = False

    def __bool__(self) -> bool:
        return bool(self.trials) or self.status or self.final


def _moved(trial: SweepTrial) -> tuple[object, ...]:
    return (trial.status, trial.epoch, trial.metric, trial.stopped_early, trial.model_version)


class SweepViewState:
    """The latest snapshot of a sweep, and what each new one changed.

    Args:
        sweep_id: the sweep shown.

    Attributes:
        latest: the newest snapshot taken.
        snapshots_seen: how many snapshots were taken.
    """

    def __init__(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id
        self.latest: SweepSnapshot | None = None
        self.snapshots_seen = 0
        self._seen: dict[int, tuple[object, ...]] = {}

    def apply(self, snapshot: SweepSnapshot) -> SweepChanges:
        """Take a snapshot; returns what it changed (nothing for a repeat)."""
        previous = self.latest
        self.latest = snapshot
        self.snapshots_seen += 1
        moved = []
        for trial in snapshot.trials:
            now = _moved(trial)
            if self._seen.get(trial.trial) != now:
                self._seen[trial.trial] = now
                moved.append(trial)
        status = snapshot.operation.status
        return SweepChanges(
            trials=tuple(moved),
            status=previous is None or previous.operation.status != status,
            final=status in FINAL_STATUSES,
        )

    @property
    def status(self) -> str:
        """The sweep's status (``pending`` before the first snapshot)."""
        return self.latest.operation.status if self.latest is not None else "pending"

    @property
    def is_final(self) -> bool:
        """Whether the sweep has ended."""
        return self.status in FINAL_STATUSES

    @property
    def bar_style(self) -> str:
        """The bar's style for :attr:`status` (the training view's colours)."""
        return BAR_STYLES.get(self.status, "info")

    @property
    def percentage(self) -> float:
        """How far the sweep is: each trial counts its completed epochs out of its budget, an
        ended trial counts whole (0–100)."""
        trials = self.latest.trials if self.latest is not None else []
        if not trials:
            return 100.0 if self.is_final else 0.0
        done = 0.0
        for trial in trials:
            if trial.status in FINAL_STATUSES:
                done += 1.0
            elif trial.total_epochs:
                done += min(trial.epoch / trial.total_epochs, 1.0)
        return 100.0 * done / len(trials)
