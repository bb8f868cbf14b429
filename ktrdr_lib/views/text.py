"""The text view: a few lines per run, for papermill, plain Python and terminals.

It prints a line when a phase starts (and when its step changes outside training, e.g. each
placebo run after the run), one per epoch (thinned to about ``max_epoch_lines`` on long runs),
the device once for a GPU run, and a progress line each time training passes another
``every_percent`` % or after ``every_s`` quiet seconds: never one per batch. At the end
it prints the final line and the summary table. The lines themselves come from
:mod:`ktrdr_lib.views.formatting`.

Example output::

    [load_data]   1.0% · Loading bars
    [train]  40.0% · Epoch 1/3 · train loss 0.9123 acc 0.512 · ... · elapsed 0:03 · ETA 0:06
    [train]  50.0% · Epoch 2/3 · Batch 5/36 · elapsed 0:04 · ETA 0:04
    ...
    [completed] Completed: 3 epochs, test accuracy 0.52 · elapsed 0:09
    (the summary table)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from typing_extensions import override

from ktrdr_lib.views.formatting import (
    device_line,
    epoch_line,
    final_line,
    outcome_text,
    phase_line,
    progress_line,
    summary_rows,
    table_text,
)
from ktrdr_lib.views.renderer import Renderer

if TYPE_CHECKING:
    from ktrdr_lib.views.state import ViewState

__all__ = ["TextRenderer"]


class TextRenderer(Renderer):
    """Compact lines: per phase, per epoch (thinned past ``max_epoch_lines``), and a
    progress line every ``every_percent`` % or ``every_s`` seconds of training.

    Args:
        stream: where lines go (default: ``sys.stdout``, looked up at each write because
            kernels swap it).
        every_percent: print a progress line each time training passes another multiple of
            this percentage...
        every_s: ...or when this many seconds passed since the last line.
        max_epoch_lines: print every epoch up to this many epochs, then every k-th.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        stream: TextIO | None,
        *,
        every_percent: float,
        every_s: float,
        max_epoch_lines: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.every_percent = every_percent
        self.every_s = every_s
        self.max_epoch_lines = max_epoch_lines
        self._clock = clock
        self._last_line = clock()
        self._next_mark = every_percent
        self._device_shown = False
        self.lines_written = 0

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout  # looked up late: kernels swap sys.stdout
        stream.write(text + "\n")
        stream.flush()
        self.lines_written += 1
        self._last_line = self._clock()

    @override
    def note(self, text: str) -> None:
        self._write(f"[note] {text}")

    def _mark_passed(self, pct: float) -> bool:
        """Whether ``pct`` passed the next ``every_percent`` mark (then the mark moves on)."""
        if pct < self._next_mark:
            return False
        self._next_mark = (math.floor(pct / self.every_percent) + 1) * self.every_percent
        return True

    @override
    def render(self, state: ViewState, events: set[str]) -> None:
        snap = state.latest
        if snap is None or "final" in events:
            return
        if ("phase" in events and snap.phase != "queued") or "step" in events:
            self._write(phase_line(snap))
            self._mark_passed(snap.percentage)
        device = device_line(snap)
        if device and not self._device_shown:
            self._device_shown = True
            self._write(device)
        if "epoch" in events:
            row = state.curve[-1]
            step = max(1, math.ceil(snap.total_epochs / self.max_epoch_lines))
            if row.epoch % step == 0 or row.epoch == snap.total_epochs:
                self._mark_passed(snap.percentage)
                self._write(epoch_line(snap, row.epoch))
                return
        if snap.phase == "train" and snap.batch:
            due = self._clock() - self._last_line >= self.every_s
            if self._mark_passed(snap.percentage) or due:
                self._write(progress_line(snap))

    @override
    def finish(self, state: ViewState) -> None:
        outcome = outcome_text(state.record) if state.record is not None else None
        self._write(final_line(state.status, state.latest, outcome))
        if state.record is not None:
            stream = self._stream or sys.stdout
            text = table_text(summary_rows(state.record))
            stream.write(text)
            stream.flush()
            self.lines_written += text.count("\n")
