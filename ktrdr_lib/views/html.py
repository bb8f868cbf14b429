"""The HTML view, and the HTML pieces it shares with the widget.

:func:`view_html` turns a :class:`~ktrdr_lib.views.state.ViewState` into the pieces of the
picture (headline, times, metrics, device line, curve); the widget puts them into its
ipywidgets, :class:`HtmlRenderer` into one static block of HTML that it updates in place
through an IPython display handle (no buttons: for frontends that show HTML but no widgets).
Outside IPython the renderer only keeps the markup (see ``TrainingProgress.markup``).
"""

from __future__ import annotations

import html
from typing import Any

from typing_extensions import override

from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.views.curves import curve_svg
from ktrdr_lib.views.display import current_shell, optional_module
from ktrdr_lib.views.formatting import (
    device_text,
    metrics_text,
    position_text,
    summary_rows,
    table_html,
    times_text,
)
from ktrdr_lib.views.renderer import Renderer
from ktrdr_lib.views.state import ViewState

__all__ = ["BAR_COLOURS", "HtmlRenderer", "view_html"]

BAR_COLOURS: dict[str, str] = {
    "info": "#5bc0de",
    "success": "#5cb85c",
    "danger": "#d9534f",
    "warning": "#f0ad4e",
}
"""The bar's colour per bar style (the colours ipywidgets uses for the same styles)."""


def view_html(state: ViewState) -> dict[str, str]:
    """The HTML pieces of the picture (shared by the widget and the static HTML view).

    Args:
        state: what the view knows.

    Returns:
        ``headline`` (phase, percentage, position, status), ``times``, ``metrics``,
        ``device`` (empty on CPU) and ``curve`` (an SVG; empty before the first epoch ends),
        all escaped and ready to insert.
    """
    snap = state.latest or ProgressSnapshot(operation_id=state.operation_id)
    headline = (
        f"<b>{html.escape(snap.phase)}</b> · {snap.percentage:.1f}% · "
        f"{html.escape(position_text(snap))} <span style='color:#888'>({state.status})</span>"
    )
    metrics = metrics_text(snap.metrics)
    return {
        "headline": headline,
        "times": html.escape(times_text(snap)),
        "metrics": html.escape(metrics) if metrics else "<span style='color:#888'>–</span>",
        "device": html.escape(device_text(snap)),
        "curve": curve_svg(state.curve) if state.curve else "",
    }


class HtmlRenderer(Renderer):
    """Static HTML updated in place through an IPython display handle (no buttons).

    Attributes:
        markup: the latest HTML drawn.
    """

    def __init__(self) -> None:
        self.markup = ""
        self._handle: Any | None = None
        self._note = ""

    def _draw(self, state: ViewState, summary: str = "") -> None:
        snap = state.latest
        pct = snap.percentage if snap is not None else 0.0
        colour = BAR_COLOURS.get(state.bar_style, BAR_COLOURS["info"])
        pieces = view_html(state)
        device = f"<div>{pieces['device']}</div>" if pieces["device"] else ""
        note = f"<div style='color:#a60'>{html.escape(self._note)}</div>" if self._note else ""
        self.markup = (
            f"<div class='ktrdr-progress' data-status='{state.status}'>"
            f"<div style='background:#eee;width:100%;max-width:560px;height:14px'>"
            f"<div style='background:{colour};width:{pct:.1f}%;height:14px'></div></div>"
            f"<div>{pieces['headline']}</div><div>{pieces['times']}</div>"
            f"<div>{pieces['metrics']}</div>{device}{pieces['curve']}{note}{summary}</div>"
        )
        display = optional_module("IPython.display")
        if display is None or current_shell() is None:
            return
        if self._handle is None:
            self._handle = display.display(display.HTML(self.markup), display_id=True)
        else:
            self._handle.update(display.HTML(self.markup))

    @override
    def render(self, state: ViewState, events: set[str]) -> None:
        self._draw(state)

    @override
    def finish(self, state: ViewState) -> None:
        summary = table_html(summary_rows(state.record)) if state.record is not None else ""
        self._draw(state, summary)

    @override
    def note(self, text: str) -> None:
        self._note = text
