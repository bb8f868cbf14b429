"""The widget view of a sweep: a bar for the whole sweep, one row per trial, Cancel and Stop.

The one module of the sweep view that imports ipywidgets; :class:`~ktrdr_lib.views.sweep.
progress.SweepProgress` imports it only in ``widget`` mode. The title, headline and ranking come
from :func:`~ktrdr_lib.views.sweep.html.sweep_html`, so the widget and the HTML view show the
same picture.

Layout (top to bottom): title (sweep id, strategy, metric, search); the sweep's bar (share of
the trials' epoch budget done) with the headline; a grid with one row per trial (trial,
status, a small epoch bar with ``e/E``, the metric's best so far, settings); **Cancel** (abort
every trial) and **Stop after this epoch** (every trial finishes the current epoch, then
evaluates and saves, and the sweep ranks what they reached); a message line; the ranked table
once the sweep ended.
Bars are ``info`` while running, ``success`` on completion, ``danger`` on failure, ``warning``
on cancel (a trial stopped early by the scheduler is ``warning`` too).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from typing_extensions import override

from ktrdr_lib.views.formatting import number_text
from ktrdr_lib.views.html import NOTE
from ktrdr_lib.views.state import BAR_STYLES
from ktrdr_lib.views.sweep.formatting import config_text, trial_status_text
from ktrdr_lib.views.sweep.html import sweep_html
from ktrdr_lib.views.sweep.renderer import SweepRenderer
from ktrdr_lib.views.sweep.state import SweepChanges, SweepViewState

if TYPE_CHECKING:
    from ktrdr_lib.schemas.sweeps import SweepTrial

__all__ = ["SweepWidgetRenderer", "TrialRow"]

_COLUMNS = "auto auto minmax(5em, 10em) auto auto minmax(0, 1fr)"
_HEADER = ("trial", "status", "", "epoch", "metric", "config")


def _cell(value: str = "") -> Any:
    return w.HTML(value, layout=w.Layout(min_width="0", margin="0 0.8em 0 0"))


class TrialRow:
    """The widgets of one trial's row.

    Attributes:
        number, status, epoch, metric, config: ``HTML`` cells; ``bar``: the trial's epochs as a
            ``FloatProgress``.
    """

    def __init__(self, trial: int) -> None:
        self.number = _cell(str(trial))
        self.status = _cell("pending")
        self.bar = w.FloatProgress(
            value=0.0, min=0.0, max=1.0, bar_style="info", layout=w.Layout(width="auto")
        )
        self.epoch = _cell()
        self.metric = _cell("–")
        self.config = _cell()

    @property
    def cells(self) -> list[Any]:
        """The row's widgets, in column order."""
        return [self.number, self.status, self.bar, self.epoch, self.metric, self.config]

    def show(self, trial: SweepTrial) -> None:
        """Draw ``trial``'s state."""
        self.status.value = html.escape(trial_status_text(trial))
        self.bar.max = float(max(trial.total_epochs, 1))
        self.bar.value = float(min(trial.epoch, trial.total_epochs))
        self.bar.bar_style = "warning" if trial.stopped_early else BAR_STYLES.get(trial.status)
        self.epoch.value = f"{trial.epoch}/{trial.total_epochs}"
        self.metric.value = number_text(trial.metric)
        self.config.value = html.escape(config_text(trial.config))


class SweepWidgetRenderer(SweepRenderer):
    """ipywidgets: the sweep's bar and headline, a row per trial, and the two buttons.

    Args:
        sweep_id: the sweep shown.
        on_cancel: what **Cancel** does (abort every trial).
        on_stop: what **Stop after this epoch** does (every trial stops gracefully).

    Attributes:
        root: the ``VBox`` holding everything; ``title``, ``bar``, ``headline``, ``grid``,
            ``rows`` (trial number → :class:`TrialRow`), ``metric_header``,
            ``cancel_button``, ``stop_button``, ``message`` and ``summary`` are its parts.
    """

    def __init__(
        self,
        sweep_id: str,
        *,
        on_cancel: Callable[[], None],
        on_stop: Callable[[], None],
    ) -> None:
        self.title = w.HTML(
            f"<b>Sweep</b> <code>{html.escape(sweep_id)}</code>", layout=w.Layout(width="auto")
        )
        self.bar = w.FloatProgress(
            value=0.0,
            min=0.0,
            max=100.0,
            description="0%",
            bar_style="info",
            layout=w.Layout(flex="0 1 300px", width="auto", min_width="10em"),
        )
        self.headline = w.HTML("queued", layout=w.Layout(flex="1 1 16em", min_width="0"))
        header = [_cell(f"<b>{name}</b>") for name in _HEADER]
        self.metric_header = header[4]
        self._header = header
        self.rows: dict[int, TrialRow] = {}
        self.grid: Any = w.GridBox(
            header, layout=w.Layout(grid_template_columns=_COLUMNS, width="100%")
        )
        self.cancel_button = w.Button(
            description="Cancel",
            button_style="danger",
            icon="stop",
            tooltip="Abort every trial now (within one batch); the sweep ranks what they reached",
            layout=w.Layout(width="auto", min_width="fit-content"),
        )
        self.stop_button = w.Button(
            description="Stop after this epoch",
            button_style="warning",
            tooltip="Every running trial: finish the current epoch, then evaluate and save; "
            "trials not started yet are skipped; then the sweep ranks them",
            layout=w.Layout(width="auto", min_width="fit-content"),
        )
        self.cancel_button.on_click(lambda _button: on_cancel())
        self.stop_button.on_click(lambda _button: on_stop())
        self.message = w.HTML("", layout=w.Layout(width="auto"))
        self.summary = w.HTML("", layout=w.Layout(width="auto"))
        row_layout = w.Layout(flex_flow="row wrap", align_items="center", width="100%")
        self.root: Any = w.VBox(
            [
                self.title,
                w.HBox([self.bar, self.headline], layout=row_layout),
                self.grid,
                w.HBox([self.cancel_button, self.stop_button], layout=row_layout),
                self.message,
                self.summary,
            ],
            layout=w.Layout(width="100%", max_width="100%", min_width="0"),
        )

    def _show_trials(self, trials: tuple[SweepTrial, ...] | list[SweepTrial]) -> None:
        added = False
        for trial in trials:
            row = self.rows.get(trial.trial)
            if row is None:
                row = self.rows[trial.trial] = TrialRow(trial.trial)
                added = True
            row.show(trial)
        if added:
            cells = [cell for number in sorted(self.rows) for cell in self.rows[number].cells]
            self.grid.children = (*self._header, *cells)

    @override
    def render(self, state: SweepViewState, changes: SweepChanges) -> None:
        snapshot = state.latest
        if snapshot is None:
            return
        pieces = sweep_html(state)
        self.title.value = pieces["title"]
        self.metric_header.value = f"<b>{html.escape(snapshot.metric)}</b>"
        self.bar.value = state.percentage
        self.bar.description = f"{state.percentage:.0f}%"
        self.bar.bar_style = state.bar_style
        self.headline.value = pieces["headline"]
        self._show_trials(changes.trials)

    @override
    def finish(self, state: SweepViewState) -> None:
        snapshot = state.latest
        if snapshot is not None:
            self.render(state, SweepChanges(trials=tuple(snapshot.trials), final=True))
            self.summary.value = "<b>Ranking</b>" + sweep_html(state)["table"]
        self.cancel_button.disabled = True
        self.stop_button.disabled = True
        self.message.value = ""  # "Cancelling…" is over: the headline says how it ended

    @override
    def note(self, text: str) -> None:
        self.message.value = f"<span style='color:{NOTE}'>{html.escape(text)}</span>"

    @override
    def close(self) -> None:
        self.root.close()
