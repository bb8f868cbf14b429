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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ktrdr_lib.errors import ConfigError, KtrdrError
from ktrdr_lib.views.live import LiveView
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


class SweepProgress(LiveView):
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
        self._begin(mode, stream, f"ktrdr-sweep-view-{sweep_id}")
        self.interval = interval
        self.state = SweepViewState(sweep_id)
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
        self._present(show=show, start=start)

    # -- widget parts (widget mode only) ---------------------------------------------------

    @property
    def parts(self) -> SweepWidgetRenderer:
        """All widgets by name (``bar``, ``headline``, ``rows``, ``message``, ``summary``, ...)."""
        return self._widget_parts()  # type: ignore[no-any-return]

    # -- following -------------------------------------------------------------------------

    def _stream(self) -> Iterator[SweepSnapshot]:
        return self.orch.follow_sweep(self.sweep_id, interval=self.interval)

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

    # -- controls --------------------------------------------------------------------------

    def cancel(self, *, graceful: bool = False) -> None:
        """What the buttons do: abort every trial, or (``graceful``) let each finish its epoch,
        evaluate and save; either way the sweep then ranks what they reached."""
        reason = "stopped from the notebook" if graceful else "cancelled from the notebook"
        error = None
        try:
            self.orch.cancel(self.sweep_id, graceful=graceful, reason=reason)
        except KtrdrError as exc:
            error = str(exc)
        self._cancel_sent(
            error,
            graceful=graceful,
            stopping="Stopping every trial after its epoch, then ranking…",
            aborting="Cancelling every trial…",
        )

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
