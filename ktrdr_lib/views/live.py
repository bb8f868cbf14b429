"""What the live views of a training and of a sweep share.

:class:`LiveView` holds the display mode, the one renderer that draws and (in widget mode) its
widgets, and does the parts that do not depend on what is followed: showing the widget or HTML
in a notebook (and the kernel pump that keeps the buttons working while a cell waits), the
background thread that follows the source until its end, waiting for that end, the buttons'
"Cancelling…" state, and closing. A subclass says what it follows (:meth:`LiveView._stream`),
how it takes one item (:meth:`LiveView.update`) and how it draws the end
(:meth:`LiveView._finish`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.waiting import wait_for
from ktrdr_lib.views.display import current_shell, detect_display_mode, optional_module
from ktrdr_lib.views.kernel_events import install_kernel_pump

__all__ = ["LiveView"]

log = logging.getLogger(__name__)


class LiveView:
    """The shared half of a live view; see the module docstring."""

    _renderer: Any
    """The renderer of the mode: ``render``/``finish``/``note``/``close`` (the HTML ones keep
    ``markup``, the text ones count ``lines_written``)."""
    _widgets: Any
    """The widget renderer in ``widget`` mode (also ``_renderer``), else ``None``."""
    state: Any
    """What the view has seen (its ``is_final`` says whether the end is shown)."""

    @classmethod
    def check_mode(cls, mode: str) -> str:
        """The display mode ``mode`` resolves to here (ConfigError for an unknown one)."""
        return detect_display_mode(mode)

    def _begin(self, mode: str, stream: TextIO | None, thread_name: str) -> None:
        """The mode and the follow state (before the subclass makes its renderer)."""
        self.mode = detect_display_mode(mode, hint_stream=stream)
        self.renders = 0
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._closed = False
        self._shown = False
        self._thread: threading.Thread | None = None
        self._thread_name = thread_name
        self._widgets = None

    def _present(self, *, show: bool, start: bool) -> None:
        """Install the kernel pump for widget buttons, show the widget, start following."""
        shell = current_shell()
        if self.mode == "widget" and getattr(shell, "kernel", None) is not None:
            install_kernel_pump()  # the buttons work while a cell waits
        if show and self.mode == "widget" and shell is not None:
            self._ipython_display_()
        if start:
            self.start()

    # -- widget parts (widget mode only) ---------------------------------------------------

    def _widget_parts(self) -> Any:
        if self._widgets is None:
            raise ConfigError(f"this view is in {self.mode!r} mode; widgets exist in 'widget' mode")
        return self._widgets

    @property
    def widget(self) -> Any:
        """The root ``ipywidgets.VBox``."""
        return self._widget_parts().root

    @property
    def cancel_button(self) -> Any:
        """The Cancel (abort) button."""
        return self._widget_parts().cancel_button

    @property
    def stop_button(self) -> Any:
        """The "Stop after this epoch" (graceful) button."""
        return self._widget_parts().stop_button

    @property
    def markup(self) -> str:
        """The latest HTML (html mode)."""
        return str(getattr(self._renderer, "markup", "")) if self.mode == "html" else ""

    @property
    def lines_written(self) -> int:
        """Lines written so far (text mode)."""
        return int(getattr(self._renderer, "lines_written", 0)) if self.mode == "text" else 0

    def _ipython_display_(self) -> None:
        if self._shown:
            return  # already on screen (e.g. ``op.display()`` as a cell's last line)
        self._shown = True
        display = optional_module("IPython.display")
        if display is None:
            return
        if self._widgets is not None:
            display.display(self._widgets.root)
        elif self.markup:
            display.display(display.HTML(self.markup))

    # -- following -------------------------------------------------------------------------

    def _stream(self) -> Iterator[Any]:
        """What the view follows, item by item, until the end."""
        raise NotImplementedError

    def update(self, item: Any) -> None:
        """Take one item of :meth:`_stream`; redraw when due."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Draw the end."""
        raise NotImplementedError

    def start(self) -> None:
        """Follow in a background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name=self._thread_name, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            if self.mode != "off":
                for item in self._stream():
                    if self._closed:
                        return
                    self.update(item)
            self._finish()
        except Exception:  # a view must never take the kernel down
            log.exception("view %s stopped", self._thread_name)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the view has shown the end; ``False`` if ``timeout`` passed.

        In a kernel the buttons keep working meanwhile (see
        :mod:`ktrdr_lib.operations.waiting`).
        """
        if self._thread is None:
            self.start()
        return wait_for(self._done, timeout)

    # -- controls --------------------------------------------------------------------------

    def _cancel_sent(
        self, error: str | None, *, graceful: bool, stopping: str, aborting: str
    ) -> None:
        """After a button's cancel: show ``error`` if it was refused, else disable the buttons
        it ends and say what happens (unless the end is already shown)."""
        with self._lock:
            if error is not None:
                self._renderer.note(error)
                return
            if self._widgets is not None and not self.state.is_final:
                self._widgets.stop_button.disabled = True
                if not graceful:
                    self._widgets.cancel_button.disabled = True
                self._widgets.note(stopping if graceful else aborting)

    def close(self) -> None:
        """Stop redrawing and close the widgets (the work goes on)."""
        with self._lock:
            self._closed = True
            self._renderer.close()
