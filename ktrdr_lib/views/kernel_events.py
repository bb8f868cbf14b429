"""Widget messages handled while a notebook cell waits, through jupyter-ui-poll.

An IPython kernel runs one cell at a time and reads the frontend's widget messages between
cells, so a click on **Cancel** while a cell blocks in ``op.wait()`` (or while Run All has
queued the next cells) used to wait for the whole run. :func:`install_kernel_pump` registers
an event pump with the core's :mod:`~ktrdr_lib.operations.waiting`: every wait of the kernel's
main thread inside a cell then hands control to ``jupyter_ui_poll.ui_events()`` between short
slices, which handles the pending widget messages and holds back the next cells' execute
requests until the waiting cell ends (so Run All keeps its order).

The pump is installed when a live widget view is shown in a kernel. It stays off where it
cannot work, and says why once in the log: without jupyter-ui-poll (install the ``notebook``
extra), or under ipykernel 7, which reads shell messages on a thread of its own that
jupyter-ui-poll 1.1 does not reach (the ``notebook`` extra keeps ipykernel below 7).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ktrdr_lib.operations.waiting import PumpSession, set_event_pump
from ktrdr_lib.views.display import current_shell, optional_module

__all__ = ["EVENTS_PER_SLICE", "install_kernel_pump", "kernel_pump_problem"]

log = logging.getLogger(__name__)

EVENTS_PER_SLICE = 10
"""How many pending kernel messages one round of the pump handles at most."""

_installed = False
_explained = False
_lock = threading.Lock()


def kernel_pump_problem(shell: Any) -> str | None:
    """Why widget messages cannot be handled during a wait in ``shell``'s kernel, or ``None``.

    Args:
        shell: the running IPython shell (``None`` outside IPython).
    """
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return "not running in a Jupyter kernel"
    if optional_module("jupyter_ui_poll") is None:
        return (
            "jupyter-ui-poll is not installed; `pip install 'ktrdr_lib[notebook]'` adds it, so "
            "Cancel and Stop work while a cell waits"
        )
    if not callable(getattr(kernel, "do_one_iteration", None)) or (
        getattr(kernel, "shell_channel_thread", None) is not None
    ):
        ipykernel = optional_module("ipykernel")
        version = getattr(ipykernel, "__version__", "?")
        return (
            f"ipykernel {version} reads widget messages on a thread jupyter-ui-poll does not "
            "reach, so Cancel and Stop act only once the waiting cell ends; "
            "`pip install 'ipykernel<7'` (as the notebook extra does) makes them work while "
            "a cell waits"
        )
    return None


def _in_a_cell(shell: Any) -> bool:
    """Whether the kernel is executing a cell on this (the main) thread right now."""
    if threading.current_thread() is not threading.main_thread():
        return False
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    parent = get_parent() if callable(get_parent) else None
    header = parent.get("header") if isinstance(parent, dict) else None
    # A wait inside a widget's callback (a comm message) must not pump: the cell it would
    # hold the next cells for is not running.
    return isinstance(header, dict) and header.get("msg_type") == "execute_request"


@contextmanager
def _ui_events_session() -> Iterator[Callable[[], None]]:
    from jupyter_ui_poll import ui_events

    with ui_events() as poll:
        yield lambda: poll(EVENTS_PER_SLICE)


def _open_session() -> PumpSession | None:
    shell = current_shell()
    if shell is None or not _in_a_cell(shell):
        return None
    return _ui_events_session()


def install_kernel_pump() -> bool:
    """Let this kernel's waits handle widget messages (once per process; main thread).

    Returns:
        Whether the pump is installed; when it cannot be, the reason is logged once.
    """
    global _installed, _explained
    with _lock:
        if _installed:
            return True
        shell = current_shell()
        if getattr(shell, "kernel", None) is None:
            return False  # plain Python or a terminal: nothing to pump, nothing to say
        problem = kernel_pump_problem(shell)
        if problem is not None:
            if not _explained:
                _explained = True
                log.warning("ktrdr: %s", problem)
            return False
        if threading.current_thread() is not threading.main_thread():
            return False
        set_event_pump(_open_session)
        _installed = True
        return True
