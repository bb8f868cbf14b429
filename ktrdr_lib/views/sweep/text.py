"""The text view of a sweep: a line each time a trial moves, then the ranking.

For papermill, plain Python and terminals (the command line prints the same lines when its
output is not a terminal). A line when the sweep starts, one per trial each time its status,
epoch or metric changes (never one per batch), and at the end the headline and the ranked
table.

Example output::

    [sweep] running · 2 trials · val_loss (min) · grid
    [trial 0] running · epoch 1/2 · val_loss 0.9123 · learning_rate=0.01
    [trial 0] completed · epoch 2/2 · val_loss 0.9011 (best epoch 2) · test accuracy 0.412 · ...
    [completed] Completed: 2 trials, best val_loss 0.9011 (trial 0), model small_test_sweep_best v1
    (the ranked table)
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from typing_extensions import override

from ktrdr_lib.views.sweep.formatting import (
    grid_text,
    ranked_rows,
    sweep_headline,
    trial_line,
)
from ktrdr_lib.views.sweep.renderer import SweepRenderer

if TYPE_CHECKING:
    from ktrdr_lib.schemas.sweeps import SweepSnapshot
    from ktrdr_lib.views.sweep.state import SweepChanges, SweepViewState

__all__ = ["SweepTextRenderer", "sweep_opening_line"]


def sweep_opening_line(snapshot: SweepSnapshot) -> str:
    """``[sweep] running · 4 trials · val_loss (min) · grid · asha``."""
    parts = [
        f"[sweep] {snapshot.operation.status}",
        f"{len(snapshot.trials)} trial{'s' * (len(snapshot.trials) != 1)}",
        f"{snapshot.metric} ({snapshot.mode})",
        snapshot.search,
    ]
    if snapshot.early_stop:
        parts.append(snapshot.early_stop)
    return " · ".join(parts)


class SweepTextRenderer(SweepRenderer):
    """Lines: the sweep's status, each trial that moved, then the ranking.

    Args:
        stream: where lines go (default: ``sys.stdout``, looked up at each write because
            kernels swap it).
        ranking: print the headline and the ranked table at the end (the command line prints
            them on stdout itself).
    """

    def __init__(self, stream: TextIO | None, *, ranking: bool = True) -> None:
        self._stream = stream
        self._ranking = ranking
        self.lines_written = 0

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout  # looked up late: kernels swap sys.stdout
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
        self.lines_written += text.rstrip("\n").count("\n") + 1

    @override
    def note(self, text: str) -> None:
        self._write(f"[note] {text}")

    @override
    def render(self, state: SweepViewState, changes: SweepChanges) -> None:
        snapshot = state.latest
        if snapshot is None:
            return
        if changes.status and not changes.final:
            self._write(sweep_opening_line(snapshot))
        for trial in changes.trials:
            self._write(trial_line(trial, snapshot.metric))

    @override
    def finish(self, state: SweepViewState) -> None:
        snapshot = state.latest
        if snapshot is None or not self._ranking:
            return
        self._write(f"[{snapshot.operation.status}] {sweep_headline(snapshot)}")
        self._write(grid_text(ranked_rows(snapshot)))
