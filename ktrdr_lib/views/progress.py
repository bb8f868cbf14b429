"""The live view of one training operation: a widget with Cancel, or compact text headless.

:class:`TrainingProgress` follows an operation's snapshot stream (``op.follow()``) in a
background thread, feeds each snapshot to one :class:`~ktrdr_lib.views.state.ViewState` and has
one renderer draw it:

* ``widget`` (:mod:`~ktrdr_lib.views.widget`): a bar with percentage and phase,
  ``Epoch e/E · Batch b/B``, elapsed and ETA, the latest train/val loss and accuracy, a device
  line when a GPU trains, a per-epoch loss/accuracy curve, and two buttons: **Cancel** (abort)
  and **Stop after this epoch** (graceful). The buttons are disabled once the run is final,
  and the headline then says what happened; a run that ended cancelled, failed or interrupted
  gets a **Resume** button, which continues it from its last checkpoint and shows the new
  run's view below. In a kernel the buttons also work while a cell
  waits (``op.wait()``, ``view.wait()``, or Run All queueing the next cells): showing the
  widget installs :func:`~ktrdr_lib.views.kernel_events.install_kernel_pump`, which lets those
  waits handle widget messages.
* ``html`` (:mod:`~ktrdr_lib.views.html`): the same picture as static HTML updated in place
  (no buttons).
* ``text`` (:mod:`~ktrdr_lib.views.text`): a line per phase and per epoch, a progress line
  every ``text_every_percent`` % or ``text_every_s`` seconds, never one per batch; then a
  summary table of the result.
* ``off``: nothing.

The mode is chosen by :func:`~ktrdr_lib.views.display.detect_display_mode`.
``OperationHandle.display()`` finds this class through the ``ktrdr_lib.progress_views`` entry
point, so the core never imports it.

Example:
    >>> from ktrdr_lib import TrainingOrchestrator
    >>> orch = TrainingOrchestrator()
    >>> op = orch.start_training("rsi_mean_reversion", epochs=5)  # doctest: +SKIP
    >>> view = TrainingProgress(op)                              # doctest: +SKIP
    >>> view.wait()                                              # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ktrdr_lib.errors import ConfigError, KtrdrError
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.views.html import HtmlRenderer
from ktrdr_lib.views.live import LiveView
from ktrdr_lib.views.renderer import Renderer
from ktrdr_lib.views.state import ViewState
from ktrdr_lib.views.text import TextRenderer

if TYPE_CHECKING:
    from ktrdr_lib.operations.handle import OperationHandle
    from ktrdr_lib.views.widget import WidgetRenderer

__all__ = ["TrainingProgress"]

log = logging.getLogger(__name__)


class TrainingProgress(LiveView):
    """A live view of one training operation (widget, HTML, text, or nothing).

    Args:
        op: the operation (an :class:`~ktrdr_lib.operations.handle.OperationHandle`).
        mode: ``auto`` (see :func:`~ktrdr_lib.views.display.detect_display_mode`), ``widget``,
            ``html``, ``text`` or ``off``.
        stream: where text goes (default: ``sys.stdout`` at the time of writing).
        interval: seconds between redraws (phase changes, epoch ends and the end always
            redraw at once).
        text_every_percent: text mode prints a progress line each time training passes
            another multiple of this percentage...
        text_every_s: ...or when this many seconds passed since the last line.
        max_epoch_lines: text mode prints every epoch up to this many epochs, then every
            k-th so that about this many epoch lines appear.
        start: start following at once (else call :meth:`start`).
        show: display the widget or HTML in the running notebook at once.

    Raises:
        ConfigError: an unknown mode, ``widget`` without ipywidgets, or an option out of range.

    Example:
        >>> view = TrainingProgress(op)                     # doctest: +SKIP
        >>> view.cancel_button.click()                      # doctest: +SKIP
    """

    def __init__(
        self,
        op: OperationHandle,
        mode: str = "auto",
        *,
        stream: TextIO | None = None,
        interval: float = 0.25,
        text_every_percent: float = 10.0,
        text_every_s: float = 30.0,
        max_epoch_lines: int = 50,
        start: bool = True,
        show: bool = True,
    ) -> None:
        if interval < 0:
            raise ConfigError(f"interval must be >= 0 seconds, got {interval}")
        if not 0 < text_every_percent <= 100:
            raise ConfigError(f"text_every_percent must be in (0, 100], got {text_every_percent}")
        if text_every_s <= 0 or max_epoch_lines < 1:
            raise ConfigError("text_every_s must be > 0 and max_epoch_lines >= 1")
        self.op = op
        self._begin(mode, stream, f"ktrdr-view-{op.operation_id}")
        self.interval = interval
        self.state = ViewState(op.operation_id)
        self._last_render = 0.0
        self._widgets: WidgetRenderer | None = None
        self.resumed: TrainingProgress | None = None  # the view of a run Resume started
        self._renderer: Renderer
        if self.mode == "widget":
            from ktrdr_lib.views.widget import WidgetRenderer  # the one ipywidgets import

            self._widgets = WidgetRenderer(
                op.operation_id,
                on_cancel=self.cancel,
                on_stop=lambda: self.cancel(graceful=True),
                on_resume=self.resume,
            )
            self._renderer = self._widgets
        elif self.mode == "html":
            self._renderer = HtmlRenderer()
        elif self.mode == "text":
            self._renderer = TextRenderer(
                stream,
                every_percent=text_every_percent,
                every_s=text_every_s,
                max_epoch_lines=max_epoch_lines,
            )
        else:
            self._renderer = Renderer()
        self._present(show=show, start=start)

    # -- widget parts (widget mode only) ---------------------------------------------------

    @property
    def bar(self) -> Any:
        """The ``FloatProgress`` bar."""
        return self._widget_parts().bar

    @property
    def parts(self) -> Any:
        """All widgets by name (``headline``, ``times``, ``metrics``, ``device``, ``curve``,
        ``message``, ``summary``, ...)."""
        return self._widget_parts()

    # -- following -------------------------------------------------------------------------

    def _stream(self) -> Iterator[ProgressSnapshot]:
        return self.op.follow()

    def update(self, snap: ProgressSnapshot) -> None:
        """Take one snapshot; redraws when due (throttled) or when something changed."""
        with self._lock:
            events = self.state.apply(snap)
            now = time.monotonic()
            if not events and now - self._last_render < self.interval:
                return
            self._last_render = now
            self.renders += 1
            self._renderer.render(self.state, events)

    def _finish(self) -> None:
        record = self.op.info()
        try:
            rows = self.op.metrics().epochs
        except KtrdrError:
            rows = []
        with self._lock:
            if record.progress.sequence > (self.state.latest.sequence if self.state.latest else 0):
                self.state.apply(record.progress)
            self.state.record = record
            self.state.set_history(rows)
            if not self._closed:
                self._renderer.finish(self.state)

    # -- controls --------------------------------------------------------------------------

    def cancel(self, *, graceful: bool = False) -> None:
        """What the buttons do: abort, or (``graceful``) finish the current epoch, then evaluate
        and save."""
        reason = "stopped from the notebook" if graceful else "cancelled from the notebook"
        error = None
        try:
            self.op.cancel(graceful=graceful, reason=reason)
        except KtrdrError as exc:
            error = str(exc)
        self._cancel_sent(
            error,
            graceful=graceful,
            stopping="Stopping after this epoch, then evaluating and saving…",
            aborting="Cancelling…",
        )

    def resume(self) -> TrainingProgress | None:
        """What **Resume** does: continue the stopped run from its last checkpoint as a new
        operation (see ``OperationHandle.resume``) and show that run's view below this one;
        returns the new view (``None`` when the run cannot resume: the reason is shown)."""
        try:
            handle = self.op.resume()
        except KtrdrError as exc:
            with self._lock:
                self._renderer.note(str(exc))
            return None
        view = TrainingProgress(handle, self.mode, show=False)
        handle.view = view
        self.resumed = view
        with self._lock:
            if self._widgets is not None:
                self._widgets.show_continuation(view.widget)
        return view

    def __repr__(self) -> str:
        return (
            f"TrainingProgress({self.op.operation_id!r}, mode={self.mode!r}, "
            f"status={self.state.status!r})"
        )
