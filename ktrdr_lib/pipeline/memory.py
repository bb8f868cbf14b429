"""The peak resident memory of a run, sampled while it runs.

``getrusage``'s ``ru_maxrss`` is the peak of the whole process's life, which in a long-lived
server or notebook says nothing about one run. :class:`PeakMemory` samples this process's
resident set size (Linux: ``/proc/self/statm``, one small read) every ``interval`` seconds
on a daemon thread while a run is inside it, and once at entry and exit. Runs that share a
process (``max_concurrent`` > 1 in one orchestrator) see the process's peak during their run.

Example:
    >>> with PeakMemory() as memory:
    ...     blob = bytearray(50 * 2**20)
    >>> memory.peak_mb > 0
    True
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from types import TracebackType

__all__ = ["PeakMemory", "resident_mb"]

_STATM = "/proc/self/statm"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_mb() -> float:
    """This process's resident set size now (where the platform says; else its peak so far)."""
    try:
        with open(_STATM, "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE / 2**20
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 2**20


class PeakMemory:
    """Samples :func:`resident_mb` while inside; ``peak_mb`` is the largest sample."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, resident_mb())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="ktrdr-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
