"""The widget view: an ipywidgets bar, text lines, curve, and the Cancel and Stop buttons.

This and the sweep view's :mod:`ktrdr_lib.views.sweep.widget` are the modules of ``ktrdr_lib``
that import ipywidgets; the progress view imports it
only in ``widget`` mode, after :func:`~ktrdr_lib.views.display.detect_display_mode` made sure
ipywidgets is installed. The pieces of HTML come from :func:`~ktrdr_lib.views.html.view_html`,
so the widget and the HTML view show the same picture.

Layout (top to bottom): title; bar with percentage and headline; elapsed and ETA; the latest
metrics; the device line (hidden on CPU); the epoch curves; the detailed-analytics curves
(gradient norm, validation F1 per class; shown once a run that recorded them ended); **Cancel**
and **Stop after this epoch**; a message line; the summary table once the run ended. The bar is
``info`` while running, ``success`` on completion, ``danger`` on failure, ``warning`` on cancel.

Once the run ended, the headline says what happened (``Completed: 20 epochs, test accuracy
0.61``, ``Cancelled after epoch 3: <reason>``) and the message line's ``Cancelling…`` or
``Stopping…`` is cleared. The rows wrap instead of overflowing: the bar shrinks, the headline
moves under it, the buttons size to their labels and wrap, so the view fits a narrow output
area without a horizontal scrollbar.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w
from typing_extensions import override

from ktrdr_lib.views.curves import curve_svg
from ktrdr_lib.views.formatting import summary_rows, table_html
from ktrdr_lib.views.html import NOTE, view_html
from ktrdr_lib.views.renderer import Renderer
from ktrdr_lib.views.state import ViewState

__all__ = ["WidgetRenderer"]


def _line(**fields: str) -> Any:
    """A line as wide as the view that may shrink (its text wraps instead of overflowing).

    ``auto``, not ``100%``: a widget's margin comes on top of a width of 100 %, and that was
    enough for a horizontal scrollbar.
    """
    return w.Layout(width="auto", max_width="100%", min_width="0", **fields)


def _wrapping_row() -> Any:
    """A row whose items move to the next line when the area is too narrow for them."""
    return w.Layout(flex_flow="row wrap", align_items="center", width="100%", min_width="0")


class WidgetRenderer(Renderer):
    """ipywidgets: bar, text lines, curve, and the two buttons.

    Args:
        operation_id: the operation shown (in the title).
        on_cancel: what **Cancel** does (abort).
        on_stop: what **Stop after this epoch** does (stop gracefully and save).
        on_resume: what **Resume** does (shown once a run ended cancelled, failed or
            interrupted: continue it from its last checkpoint).

    Attributes:
        root: the ``VBox`` holding everything; ``bar``, ``headline``, ``times``, ``metrics``,
            ``device``, ``curve``, ``analytics``, ``cancel_button``, ``stop_button``,
            ``resume_button``, ``message``, ``summary`` and ``continuation`` (where the
            resumed run's view appears) are its parts.
    """

    def __init__(
        self,
        operation_id: str,
        *,
        on_cancel: Callable[[], None],
        on_stop: Callable[[], None],
        on_resume: Callable[[], object] | None = None,
    ) -> None:
        self.title = w.HTML(
            f"<b>Training</b> <code>{html.escape(operation_id)}</code>", layout=_line()
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
        self.times = w.HTML("", layout=_line())
        self.metrics = w.HTML("", layout=_line())
        self.device = w.HTML("", layout=_line(display="none"))
        self.curve = w.HTML("", layout=_line())
        self.analytics = w.HTML("", layout=_line(display="none"))
        self.cancel_button = w.Button(
            description="Cancel",
            button_style="danger",
            icon="stop",
            tooltip="Abort now (within one batch); nothing is saved",
            layout=w.Layout(width="auto", min_width="fit-content"),
        )
        self.stop_button = w.Button(
            description="Stop after this epoch",
            button_style="warning",
            tooltip="Stop gracefully: finish the current epoch, then evaluate and save "
            "(the remaining epochs are skipped)",
            layout=w.Layout(width="auto", min_width="fit-content"),
        )
        self.resume_button = w.Button(
            description="Resume",
            button_style="success",
            icon="play",
            tooltip="Continue this run from its last checkpoint (the epochs it completed are "
            "kept), as a new operation shown below",
            layout=w.Layout(width="auto", min_width="fit-content", display="none"),
        )
        self.cancel_button.on_click(lambda _button: on_cancel())
        self.stop_button.on_click(lambda _button: on_stop())
        self._resumable = on_resume is not None
        if on_resume is not None:
            self.resume_button.on_click(lambda _button: on_resume())
        self.continuation: Any = w.VBox([], layout=_line())
        self.message = w.HTML("", layout=_line())
        self.summary = w.HTML("", layout=_line())
        self.bar_row: Any = w.HBox([self.bar, self.headline], layout=_wrapping_row())
        self.button_row: Any = w.HBox(
            [self.cancel_button, self.stop_button, self.resume_button], layout=_wrapping_row()
        )
        self.root: Any = w.VBox(
            [
                self.title,
                self.bar_row,
                self.times,
                self.metrics,
                self.device,
                self.curve,
                self.analytics,
                self.button_row,
                self.message,
                self.summary,
                self.continuation,
            ],
            layout=w.Layout(width="100%", max_width="100%", min_width="0"),
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
        resumable = state.record is not None and state.record.status in (
            "cancelled",
            "failed",
            "interrupted",
        )
        if self._resumable and resumable:
            self.resume_button.layout.display = None
        self.message.value = ""  # "Cancelling…" is over: the headline says how it ended
        if state.curve:
            self.curve.value = curve_svg(state.curve)
        if state.record is not None:
            self.summary.value = table_html(summary_rows(state.record))
        pieces = view_html(state)
        if pieces["analytics"]:
            self.analytics.value = pieces["analytics"]
            self.analytics.layout.display = None

    @override
    def note(self, text: str) -> None:
        self.message.value = f"<span style='color:{NOTE}'>{html.escape(text)}</span>"

    @override
    def close(self) -> None:
        self.root.close()

    def show_continuation(self, widget: Any) -> None:
        """Show the resumed run's view below this one, and retire the Resume button."""
        self.resume_button.disabled = True
        self.continuation.children = (widget,)
