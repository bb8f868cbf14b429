"""Following a stream in a worker thread while the main thread stays free for Ctrl-C.

A progress stream blocks (on a queue, a socket). Were it read on the main thread, Ctrl-C
could land inside a lock or a join; here the main thread only waits on an Event, and each
Ctrl-C is handed to a callback that decides whether to keep waiting (after asking the run to
stop, say) or to give up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["stop_waiting", "watch"]

_T = TypeVar("_T")


def stop_waiting(count: int) -> bool:
    """An ``on_interrupt`` that lets the first Ctrl-C through."""
    return False


def watch(
    source: Iterable[_T],
    handle: Callable[[_T], None],
    *,
    on_interrupt: Callable[[int], bool],
) -> None:
    """Feed ``source`` to ``handle`` in a worker thread until it ends.

    Args:
        source: the stream (iterated in the worker thread).
        handle: called with each item, in the worker thread.
        on_interrupt: called on the main thread with the number of Ctrl-Cs so far; when it
            returns False the KeyboardInterrupt propagates.

    Raises:
        KeyboardInterrupt: ``on_interrupt`` returned False.
        BaseException: whatever the worker raised (re-raised here).

    Example:
        >>> seen = []
        >>> watch(range(3), seen.append, on_interrupt=stop_waiting)
        >>> seen
        [0, 1, 2]
    """
    finished = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in source:
                handle(item)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name="ktrdr-cli-progress", daemon=True).start()
    interrupts = 0
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            interrupts += 1
            if not on_interrupt(interrupts):
                raise
    if failure:
        raise failure[0]
