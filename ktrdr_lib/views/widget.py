"""The widget view: an ipywidgets bar, text lines, curve, and the Cancel and Stop buttons.

This is the one module of ``ktrdr_lib`` that imports ipywidgets; the progress view imports it
only in ``widget`` mode, after :func:`~ktrdr_lib.views.display.detect_display_mode` made sure
ipywidgets is installed. The pieces of HTML come from :func:`~ktrdr_lib.views.html.view_html`,
so the widget and the HTML view show the same picture.

Layout (top to bottom): title; bar with percentage and headline; elapsed and ETA; the latest
metrics; the device line (hidden on CPU); the epoch curves; **Cancel** and **Stop after this
epoch**; a message line; the summary table once the run ended. The bar is ``info`` while
running, ``success`` on completion, ``danger`` on failure, ``warning`` on cancel.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w
from typing_extensions import override

from ktrdr_lib.views.curves import curve_svg
from ktrdr_lib.views.formatting import summary_rows, table_html
from ktrdr_lib.views.html import view_html
from ktrdr_lib.views.renderer import Renderer
from ktrdr_lib.views.state import ViewState

__all__ = ["WidgetRenderer"]


class WidgetRenderer(Renderer):
    """ipywidgets: bar, text lines, curve, and the two buttons.

    Args:
        operation_id: the operation shown (in the title).
        on_cancel: what **Cancel** does (abort).
        on_stop: what **Stop after this epoch** does (stop gracefully and save).

    Attributes:
        root: the ``VBox`` holding everything; ``bar``, ``headline``, ``times``, ``metrics``,
            ``device``, ``curve``, ``cancel_button``, ``stop_button``, ``message`` and
            ``summary`` are its parts.
    """

    def __init__(
        self, operation_id: str, *, on_cancel: Callable[[], None], on_stop: Callable[[], None]
    ) -> None:
        self.title = w.HTML(f"<b>Training</b> <code>{html.escape(operation_id)}</code>")
        self.bar = w.FloatProgress(
            value=0.0, min=0.0, max=100.0, description="0%", bar_style="info"
        )
        self.headline = w.HTML("queued")
        self.times = w.HTML("")
        self.metrics = w.HTML("")
        self.device = w.HTML("", layout=w.Layout(display="none"))
        self.curve = w.HTML("")
        self.cancel_button = w.Button(
            description="Cancel",
            button_style="danger",
            icon="stop",
            tooltip="Abort now (within one batch); nothing is saved",
        )
        self.stop_button = w.Button(
            description="Stop after this epoch",
            button_style="warning",
            tooltip="Stop training gracefully: skip the remaining epochs, then evaluate and "
            "save what was learned",
        )
        self.cancel_button.on_click(lambda _button: on_cancel())
        self.stop_button.on_click(lambda _button: on_stop())
        self.message = w.HTML("")
        self.summary = w.HTML("")
        self.root: Any = w.VBox(
            [
                self.title,
                w.HBox([self.bar, self.headline]),
                self.times,
                self.metrics,
                self.device,
                self.curve,
                w.HBox([self.cancel_button, self.stop_button]),
                self.message,
                self.summary,
            ]
        )

    @override
    def render(self, state: ViewState, events: set[str]) -> None:
        snap = state.latest
        if snap is None:
            return
        pieces = view_html(state)
        self.bar.value = snap.percentage
        self.bar.description = f"{snap.percentage:.0f}%"
        self.bar.bar_style = state.bar_style
        self.headline.value = pieces["headline"]
        self.times.value = pieces["times"]
        self.metrics.value = pieces["metrics"]
        if pieces["device"]:
            self.device.value = pieces["device"]
            self.device.layout.display = None
        if "epoch" in events or ("final" in events and pieces["curve"]):
            self.curve.value = pieces["curve"]

    @override
    def finish(self, state: ViewState) -> None:
        self.render(state, {"final"})
        self.bar.bar_style = state.bar_style
        self.cancel_button.disabled = True
        self.stop_button.disabled = True
        if state.curve:
            self.curve.value = curve_svg(state.curve)
        if state.record is not None:
            self.summary.value = table_html(summary_rows(state.record))

    @override
    def note(self, text: str) -> None:
        self.message.value = f"<span style='color:#a60'>{html.escape(text)}</span>"

    @override
    def close(self) -> None:
        self.root.close()
