"""The HTML view of a sweep, and the HTML pieces it shares with the widget.

:func:`sweep_html` turns a :class:`~ktrdr_lib.views.sweep.state.SweepViewState` into the pieces
of the picture (title, headline, the trial table: one row per trial while the sweep runs, the
ranking once it ended); the widget puts them into its ipywidgets, :class:`SweepHtmlRenderer`
into one static block of HTML updated in place through an IPython display handle (no buttons:
for frontends that show HTML but no widgets). Colours come from JupyterLab's theme variables,
as in the training view.
"""

from __future__ import annotations

import html
from typing import Any

from typing_extensions import override

from ktrdr_lib.views.display import current_shell, optional_module
from ktrdr_lib.views.html import BAR_COLOURS, MUTED, NOTE, TEXT
from ktrdr_lib.views.sweep.formatting import (
    best_trial,
    grid_html,
    live_rows,
    ranked_rows,
    sweep_headline,
)
from ktrdr_lib.views.sweep.renderer import SweepRenderer
from ktrdr_lib.views.sweep.state import SweepChanges, SweepViewState

__all__ = ["SweepHtmlRenderer", "sweep_html"]

_TRACK = "var(--jp-layout-color2, #eee)"
_BORDER = "var(--jp-border-color1, #bdbdbd)"


def sweep_html(state: SweepViewState) -> dict[str, str]:
    """The HTML pieces of a sweep's picture.

    Returns:
        ``title`` (id, metric, search), ``headline`` (:func:`sweep_headline` with the status),
        ``table`` (the live rows; the ranking once the sweep ended, best trial bold), all
        escaped and ready to insert.
    """
    snapshot = state.latest
    title = f"<b>Sweep</b> <code>{html.escape(state.sweep_id)}</code>"
    if snapshot is None:
        return {"title": title, "headline": "queued", "table": ""}
    early = f" · {html.escape(snapshot.early_stop)}" if snapshot.early_stop else ""
    title += (
        f" <span style='color:{MUTED}'>{html.escape(snapshot.strategy)} · "
        f"{html.escape(snapshot.metric)} ({snapshot.mode}) · {snapshot.search}{early}</span>"
    )
    headline = f"<b>{html.escape(sweep_headline(snapshot))}</b>"
    if not state.is_final:
        headline += f" <span style='color:{MUTED}'>({state.status})</span>"
        table = grid_html(live_rows(snapshot))
    else:
        best = best_trial(snapshot)
        table = grid_html(ranked_rows(snapshot), highlight=0 if best is not None else None)
    return {"title": title, "headline": headline, "table": table}


class SweepHtmlRenderer(SweepRenderer):
    """Static HTML updated in place through an IPython display handle (no buttons).

    Attributes:
        markup: the latest HTML drawn.
    """

    def __init__(self) -> None:
        self.markup = ""
        self._handle: Any | None = None
        self._note = ""

    def _draw(self, state: SweepViewState) -> None:
        colour = BAR_COLOURS.get(state.bar_style, BAR_COLOURS["info"])
        pieces = sweep_html(state)
        note = f"<div style='color:{NOTE}'>{html.escape(self._note)}</div>" if self._note else ""
        self.markup = (
            f"<div class='ktrdr-sweep-progress' data-status='{state.status}' "
            f"style='color:{TEXT};max-width:100%;box-sizing:border-box;overflow-wrap:anywhere'>"
            f"<div>{pieces['title']}</div>"
            f"<div style='background:{_TRACK};border:1px solid {_BORDER};box-sizing:border-box;"
            "width:100%;max-width:560px;height:14px'>"
            f"<div style='background:{colour};width:{state.percentage:.1f}%;height:100%'></div>"
            f"</div><div>{pieces['headline']}</div>{pieces['table']}{note}</div>"
        )
        display = optional_module("IPython.display")
        if display is None or current_shell() is None:
            return
        if self._handle is None:
            self._handle = display.display(display.HTML(self.markup), display_id=True)
        else:
            self._handle.update(display.HTML(self.markup))

    @override
    def render(self, state: SweepViewState, changes: SweepChanges) -> None:
        self._draw(state)

    @override
    def finish(self, state: SweepViewState) -> None:
        self._note = ""  # "Cancelling…" is over: the headline says how it ended
        self._draw(state)

    @override
    def note(self, text: str) -> None:
        self._note = text
