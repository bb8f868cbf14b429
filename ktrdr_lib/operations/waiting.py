"""Blocking waits that leave room for the caller's own events (a notebook's button clicks).

A Jupyter kernel handles widget messages, such as a click on **Cancel**, only while no cell
runs: a cell blocked in ``op.wait()`` would hold the click until the run ended by itself. A
front end that can process its events from inside a blocking call registers an
:data:`EventPump` with :func:`set_event_pump`; :func:`wait_for` and :func:`wait_until` then
wait in slices of :data:`SLICE_S` seconds and let the pump handle what arrived between them.

The core does not know what a pump does (the notebook view registers one built on
jupyter-ui-poll, see :mod:`ktrdr_lib.views.kernel_events`). Without one, on any other thread
than the one that registered it, or inside a wait the pump itself started (a click handler
that waits), a wait blocks plainly.

Example:
    >>> import threading
    >>> done = threading.Event()
    >>> done.set()
    >>> wait_for(done, timeout=1.0)
    True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["SLICE_S", "EventPump", "PumpSession", "set_event_pump", "wait_for", "wait_until"]

log = logging.getLogger(__name__)

SLICE_S = 0.05
"""How long a pumped wait blocks between two rounds of the pump (seconds)."""

PumpSession = AbstractContextManager[Callable[[], None]]
"""A pump's session for one wait: entering it gives the function that handles pending events."""

EventPump = Callable[[], PumpSession | None]
"""Opens a session for one wait, or returns ``None`` when it cannot pump here and now."""

_pump: EventPump | None = None
_pump_thread: int | None = None
_local = threading.local()


def set_event_pump(pump: EventPump | None) -> EventPump | None:
    """Let waits on the calling thread run ``pump`` while they block (``None``: stop that).

    Args:
        pump: opens a session for one wait (see :data:`EventPump`).

    Returns:
        The pump registered before.
    """
    global _pump, _pump_thread
    previous = _pump
    _pump, _pump_thread = pump, (threading.get_ident() if pump is not None else None)
    return previous


def _open_session() -> PumpSession | None:
    pump = _pump
    if pump is None or _pump_thread != threading.get_ident() or getattr(_local, "busy", False):
        return None
    try:
        return pump()
    except Exception:  # a broken pump must not break the wait
        log.exception("the event pump could not start; waiting without it")
        return None


def _wait(
    ready: Callable[[], bool], block: Callable[[float], object], timeout: float | None
) -> bool:
    """Block in ``block(seconds)`` slices until ``ready()`` or ``timeout``, pumping if we can."""
    deadline = None if timeout is None else time.monotonic() + timeout
    session = _open_session()
    if session is None:
        while not ready():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            block(remaining if remaining is not None else 3600.0)
        return True
    _local.busy = True
    try:
        with session as handle_events:
            while True:
                handle_events()
                if ready():
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                block(SLICE_S if remaining is None else min(SLICE_S, remaining))
    finally:
        _local.busy = False


def wait_for(event: threading.Event, timeout: float | None = None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds passed; the registered pump runs
    meanwhile.

    Args:
        event: what to wait for.
        timeout: seconds; ``None`` waits as long as it takes.

    Returns:
        Whether the event is set.
    """
    return _wait(event.is_set, event.wait, timeout)


def wait_until(ready: Callable[[], bool], timeout: float | None = None, *, every: float) -> bool:
    """Ask ``ready()`` every ``every`` seconds until it is true or ``timeout`` passed; the
    registered pump runs meanwhile (for waits that poll, e.g. a record in the store).

    Args:
        ready: the condition; called from the waiting thread.
        timeout: seconds; ``None`` waits as long as it takes.
        every: seconds between two questions.

    Returns:
        Whether ``ready()`` came true.
    """
    next_ask = time.monotonic()

    def due() -> bool:
        nonlocal next_ask
        now = time.monotonic()
        if now < next_ask:
            return False
        next_ask = now + every
        return ready()

    def block(seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, next_ask - time.monotonic())))

    return _wait(due, block, timeout)
