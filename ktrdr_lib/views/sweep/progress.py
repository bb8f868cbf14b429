"""The live view of one sweep: a widget with a row per trial and Cancel, or text headless.

:class:`SweepProgress` follows a sweep (``orch.follow_sweep``) in a background thread, feeds
each snapshot to one :class:`~ktrdr_lib.views.sweep.state.SweepViewState` and has one renderer
draw it:

* ``widget`` (:mod:`~ktrdr_lib.views.sweep.widget`): the sweep's bar and headline, one row per
  trial (status, epoch bar, metric, settings), **Cancel** (abort every trial) and **Stop after
  this epoch** (graceful); the ranking once it ended. The buttons are disabled once the sweep
  ended; in a kernel they also work while a cell waits (the kernel pump of
  :mod:`~ktrdr_lib.views.kernel_events`).
* ``html`` (:mod:`~ktrdr_lib.views.sweep.html`): the same picture as static HTML, no buttons.
* ``text`` (:mod:`~ktrdr_lib.views.sweep.text`): a line each time a trial moves, then the
  ranked table.
* ``off``: nothing.

The mode is chosen by :func:`~ktrdr_lib.views.display.detect_display_mode`, as for a training.

Example:
    >>> orch = TrainingOrchestrator(ray_address="local")         # doctest: +SKIP
    >>> sweep = orch.sweep("rsi_mean_reversion", {"model.training.learning_rate": [1e-3, 1e-2]},
    ...                    epochs=5)                             # doctest: +SKIP
    >>> view = sweep_view(orch, sweep.operation_id)              # doctest: +SKIP
    >>> view.wait()                                              # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ktrdr_lib.errors import ConfigError, KtrdrError
from ktrdr_lib.operations.waiting import wait_for
from ktrdr_lib.views.display import current_shell, detect_display_mode, optional_module
from ktrdr_lib.views.kernel_events import install_kernel_pump
from ktrdr_lib.views.sweep.html import SweepHtmlRenderer
from ktrdr_lib.views.sweep.renderer import SweepRenderer
from ktrdr_lib.views.sweep.state import SweepViewState
from ktrdr_lib.views.sweep.text import SweepTextRenderer

if TYPE_CHECKING:
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.sweeps import SweepSnapshot
    from ktrdr_lib.views.sweep.widget import SweepWidgetRenderer

__all__ = ["SweepProgress", "SweepSource", "sweep_view"]

log = logging.getLogger(__name__)


class SweepSource(Protocol):
    """Where a sweep is read, followed and cancelled (a TrainingOrchestrator)."""

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        """The sweep as it stands."""
        ...

    def follow_sweep(self, sweep_id: str, *, interval: float = 0.5) -> Iterator[SweepSnapshot]:
        """The sweep each time it changes, until the ended one."""
        ...

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """Cancel the sweep and every trial."""
        ...


class SweepProgress:
    """A live view of one sweep (widget, HTML, text, or nothing).

    Args:
        orch: where the sweep runs (the orchestrator that started it, or one on the same
            store).
        sweep_id: the sweep's operation id.
        mode: ``auto`` (see :func:`~ktrdr_lib.views.display.detect_display_mode`), ``widget``,
            ``html``, ``text`` or ``off``.
        stream: where text goes (default: ``sys.stdout`` at the time of writing).
        interval: seconds between reads of the sweep.
        start: start following at once (else call :meth:`start`).
        show: display the widget in the running notebook at once.

    Raises:
        ConfigError: an unknown mode, ``widget`` without ipywidgets, or ``interval`` <= 0.

    Example:
        >>> view = SweepProgress(orch, sweep_id, "widget")   # doctest: +SKIP
        >>> view.cancel_button.click()                       # doctest: +SKIP
    """

    @classmethod
    def check_mode(cls, mode: str) -> str:
        """The display mode ``mode`` resolves to here (ConfigError for an unknown one)."""
        return detect_display_mode(mode)

    def __init__(
        self,
        orch: SweepSource,
        sweep_id: str,
        mode: str = "auto",
        *,
        stream: TextIO | None = None,
        interval: float = 0.5,
        start: bool = True,
        show: bool = True,
    ) -> None:
        if not interval > 0:
            raise ConfigError(f"interval must be > 0 seconds, got {interval}")
        self.orch = orch
        self.sweep_id = sweep_id
        self.mode = detect_display_mode(mode, hint_stream=stream)
        self.interval = interval
        self.state = SweepViewState(sweep_id)
        self.renders = 0
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._closed = False
        self._shown = False
        self._thread: threading.Thread | None = None
        self._widgets: SweepWidgetRenderer | None = None
        self._renderer: SweepRenderer
        if self.mode == "widget":
            from ktrdr_lib.views.sweep.widget import SweepWidgetRenderer  # the ipywidgets import

            self._widgets = SweepWidgetRenderer(
                sweep_id, on_cancel=self.cancel, on_stop=lambda: self.cancel(graceful=True)
            )
            self._renderer = self._widgets
        elif self.mode == "html":
            self._renderer = SweepHtmlRenderer()
        elif self.mode == "text":
            self._renderer = SweepTextRenderer(stream)
        else:
            self._renderer = SweepRenderer()
        shell = current_shell()
        if self.mode == "widget" and getattr(shell, "kernel", None) is not None:
            install_kernel_pump()  # the buttons work while a cell waits
        if show and self.mode == "widget" and shell is not None:
            self._ipython_display_()
        if start:
            self.start()

    # -- widget parts (widget mode only) ---------------------------------------------------

    def _widget_parts(self) -> SweepWidgetRenderer:
        if self._widgets is None:
            raise ConfigError(f"this view is in {self.mode!r} mode; widgets exist in 'widget' mode")
        return self._widgets

    @property
    def widget(self) -> Any:
        """The root ``ipywidgets.VBox``."""
        return self._widget_parts().root

    @property
    def cancel_button(self) -> Any:
        """The Cancel (abort every trial) button."""
        return self._widget_parts().cancel_button

    @property
    def stop_button(self) -> Any:
        """The "Stop after this epoch" (graceful, every trial) button."""
        return self._widget_parts().stop_button

    @property
    def parts(self) -> SweepWidgetRenderer:
        """All widgets by name (``bar``, ``headline``, ``rows``, ``message``, ``summary``, ...)."""
        return self._widget_parts()

    @property
    def markup(self) -> str:
        """The latest HTML (html mode)."""
        return self._renderer.markup if isinstance(self._renderer, SweepHtmlRenderer) else ""

    @property
    def lines_written(self) -> int:
        """Lines written so far (text mode)."""
        renderer = self._renderer
        return renderer.lines_written if isinstance(renderer, SweepTextRenderer) else 0

    def _ipython_display_(self) -> None:
        if self._shown:
            return
        self._shown = True
        display = optional_module("IPython.display")
        if display is None:
            return
        if self._widgets is not None:
            display.display(self._widgets.root)
        elif isinstance(self._renderer, SweepHtmlRenderer) and self._renderer.markup:
            display.display(display.HTML(self._renderer.markup))

    # -- following -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the sweep in a background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._follow, name=f"ktrdr-sweep-view-{self.sweep_id}", daemon=True
        )
        self._thread.start()

    def _follow(self) -> None:
        try:
            if self.mode != "off":
                for snapshot in self.orch.follow_sweep(self.sweep_id, interval=self.interval):
                    if self._closed:
                        return
                    self.update(snapshot)
            self._finish()
        except Exception:  # a view must never take the kernel down
            log.exception("sweep view of %s stopped", self.sweep_id)
        finally:
            self._done.set()

    def update(self, snapshot: SweepSnapshot) -> None:
        """Take one snapshot; redraws when it changed something."""
        with self._lock:
            changes = self.state.apply(snapshot)
            if not changes:
                return
            self.renders += 1
            self._renderer.render(self.state, changes)

    def _finish(self) -> None:
        final = self.orch.get_sweep(self.sweep_id)
        with self._lock:
            changes = self.state.apply(final)
            if changes:
                self._renderer.render(self.state, changes)
            if not self._closed:
                self._renderer.finish(self.state)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the view has shown the sweep's end; ``False`` if ``timeout`` passed.

        In a kernel the buttons keep working meanwhile (see
        :mod:`ktrdr_lib.operations.waiting`).
        """
        if self._thread is None:
            self.start()
        return wait_for(self._done, timeout)

    # -- controls --------------------------------------------------------------------------

    def cancel(self, *, graceful: bool = False) -> None:
        """What the buttons do: abort every trial, or (``graceful``) let each finish its epoch,
        evaluate and save; either way the sweep then ranks what they reached."""
        reason = "stopped from the notebook" if graceful else "cancelled from the notebook"
        try:
            self.orch.cancel(self.sweep_id, graceful=graceful, reason=reason)
        except KtrdrError as exc:
            with self._lock:
                self._renderer.note(str(exc))
            return
        with self._lock:
            if self._widgets is not None and not self.state.is_final:
                self._widgets.stop_button.disabled = True
                if not graceful:
                    self._widgets.cancel_button.disabled = True
                self._widgets.note(
                    "Stopping every trial after its epoch, then ranking…"
                    if graceful
                    else "Cancelling every trial…"
                )

    def close(self) -> None:
        """Stop redrawing and close the widgets (the sweep goes on)."""
        with self._lock:
            self._closed = True
            self._renderer.close()

    def __repr__(self) -> str:
        return f"SweepProgress({self.sweep_id!r}, mode={self.mode!r}, status={self.state.status!r})"


def sweep_view(
    orch: SweepSource, sweep_id: str, display: str = "auto", **options: Any
) -> SweepProgress:
    """Show a sweep's live view (a row per trial, Cancel) and return it; does not block.

    Args:
        orch: the orchestrator the sweep runs on.
        sweep_id: the sweep's operation id (``orch.sweep(...).operation_id``).
        display: ``auto``, ``widget``, ``html``, ``text`` or ``off``.
        options: :class:`SweepProgress` options (``stream``, ``interval``, ...).

    Raises:
        ConfigError: an unknown display mode, or ``widget`` without ipywidgets.
    """
    return SweepProgress(orch, sweep_id, display, **options)


class SweepHandleView:
    """What the ``sweep`` progress-view entry point names: opens a :class:`SweepProgress` for
    an :class:`~ktrdr_lib.operations.handle.OperationHandle` of a sweep
    (``orch.sweep(...).display()``)."""

    @staticmethod
    def check_mode(mode: str) -> str:
        """The display mode ``mode`` resolves to here (ConfigError for an unknown one)."""
        return SweepProgress.check_mode(mode)

    def __call__(self, handle: Any, mode: str, **options: Any) -> SweepProgress:
        """Open the sweep view of ``handle``'s sweep."""
        return SweepProgress(handle.orchestrator, handle.operation_id, mode, **options)


sweep_handle_view = SweepHandleView()
"""The instance the entry point loads."""
