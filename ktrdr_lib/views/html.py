"""The HTML view, and the HTML pieces it shares with the widget.

:func:`view_html` turns a :class:`~ktrdr_lib.views.state.ViewState` into the pieces of the
picture (headline, times, metrics, device line, curve); the widget puts them into its
ipywidgets, :class:`HtmlRenderer` into one static block of HTML that it updates in place
through an IPython display handle (no buttons: for frontends that show HTML but no widgets).
Outside IPython the renderer only keeps the markup (see ``TrainingProgress.markup``).

Once the run ended, the headline says what happened (:func:`~ktrdr_lib.views.formatting.
outcome_text`) instead of the last phase. The markup fits narrow output areas (relative
widths, wrapping text, an SVG that scales) and takes its text, border and background colours
from JupyterLab's theme variables (``--jp-ui-font-color1`` and friends, with light-theme
fallbacks), so it reads in the dark theme too.
"""

from __future__ import annotations

import html
from typing import Any

from typing_extensions import override

from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.views.curves import analytics_svg, curve_svg
from ktrdr_lib.views.display import current_shell, optional_module
from ktrdr_lib.views.formatting import (
    device_text,
    metrics_text,
    outcome_text,
    position_text,
    summary_rows,
    table_html,
    times_text,
)
from ktrdr_lib.views.renderer import Renderer
from ktrdr_lib.views.state import ViewState

__all__ = ["BAR_COLOURS", "MUTED", "NOTE", "TEXT", "HtmlRenderer", "view_html"]

BAR_COLOURS: dict[str, str] = {
    "info": "#5bc0de",
    "success": "#5cb85c",
    "danger": "#d9534f",
    "warning": "#f0ad4e",
}
"""The bar's colour per bar style (the colours ipywidgets uses for the same styles)."""

TEXT = "var(--jp-ui-font-color1, #212121)"
"""Body text: the theme's main font colour."""
MUTED = "var(--jp-ui-font-color2, #616161)"
"""Secondary text (the status beside the headline, an empty figure)."""
NOTE = "var(--jp-warn-color0, #a65e00)"
"""A one-off message (why a cancel was refused, ``Cancelling…``)."""
_TRACK = "var(--jp-layout-color2, #eee)"
_BORDER = "var(--jp-border-color1, #bdbdbd)"


def view_html(state: ViewState) -> dict[str, str]:
    """The HTML pieces of the picture (shared by the widget and the static HTML view).

    Args:
        state: what the view knows.

    Returns:
        ``headline`` (phase, percentage, position, status), ``times``, ``metrics``,
        ``device`` (empty on CPU), ``curve`` (an SVG; empty before the first epoch ends) and
        ``analytics`` (an SVG of the detailed analytics once a run that recorded them ended;
        empty otherwise), all escaped and ready to insert.
    """
    snap = state.latest or ProgressSnapshot(operation_id=state.operation_id)
    if state.record is not None and state.record.is_final:
        headline = f"<b>{html.escape(outcome_text(state.record))}</b>"
    else:
        headline = (
            f"<b>{html.escape(snap.phase)}</b> · {snap.percentage:.1f}% · "
            f"{html.escape(position_text(snap))} "
            f"<span style='color:{MUTED}'>({state.status})</span>"
        )
    metrics = metrics_text(snap.metrics)
    result = state.record.result if state.record is not None else None
    analytics = result.analytics if result is not None else None
    return {
        "headline": headline,
        "times": html.escape(times_text(snap)),
        "metrics": html.escape(metrics) if metrics else f"<span style='color:{MUTED}'>–</span>",
        "device": html.escape(device_text(snap)),
        "curve": curve_svg(state.curve) if state.curve else "",
        "analytics": analytics_svg(analytics) if analytics is not None else "",
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
        note = f"<div style='color:{NOTE}'>{html.escape(self._note)}</div>" if self._note else ""
        self.markup = (
            f"<div class='ktrdr-progress' data-status='{state.status}' style='color:{TEXT};"
            "max-width:100%;box-sizing:border-box;overflow-wrap:anywhere'>"
            f"<div style='background:{_TRACK};border:1px solid {_BORDER};box-sizing:border-box;"
            "width:100%;max-width:560px;height:14px'>"
            f"<div style='background:{colour};width:{pct:.1f}%;height:100%'></div></div>"
            f"<div>{pieces['headline']}</div><div>{pieces['times']}</div>"
            f"<div>{pieces['metrics']}</div>{device}{pieces['curve']}{pieces['analytics']}{note}"
            f"{summary}</div>"
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
        self._note = ""  # "Cancelling…" is over: the headline says how it ended
        summary = table_html(summary_rows(state.record)) if state.record is not None else ""
        self._draw(state, summary)

    @override
    def note(self, text: str) -> None:
        self._note = text
