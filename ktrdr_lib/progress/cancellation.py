"""Cancellation: the token a run owns (:mod:`ktrdr_lib.progress.cancel_callback` honours it
in Lightning).

The token, not ``trainer.should_stop`` (which ``fit()`` resets), carries the request. It is
checked before training, between preparation steps and at the start of every batch. An
**abort** raises :class:`~ktrdr_lib.errors.OperationCancelled` through Lightning, so the run
stops within one batch and ends ``cancelled``; a **graceful** stop lets the running epoch
finish, its validation included, skips the remaining epochs, then evaluates and saves what was
learned. A graceful stop escalated to an abort is an abort, with the abort's reason.

Nothing here uses signals or KeyboardInterrupt: Lightning turns those into ``sys.exit``.
"""

from __future__ import annotations

import threading
import time

from ktrdr_lib.errors import OperationCancelled

__all__ = ["CancelToken"]


class CancelToken:
    """A thread-safe, one-way cancel request.

    ``cancel()`` is idempotent: the first call's kind and reason win, except that an abort
    may upgrade an earlier graceful request (its reason then replaces the graceful one's).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._graceful = False
        self._reason: str | None = None
        self._requested_at: float | None = None
        self._observed_at: float | None = None

    def cancel(self, *, graceful: bool = False, reason: str | None = None) -> None:
        """Ask the run to stop (abort by default)."""
        with self._lock:
            if self._event.is_set():
                if self._graceful and not graceful:
                    self._graceful = False
                    self._reason = reason or "cancelled"
                return
            self._graceful = graceful
            self._reason = reason or ("graceful stop requested" if graceful else "cancelled")
            self._requested_at = time.monotonic()
            self._event.set()

    @property
    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self._event.is_set()

    @property
    def aborting(self) -> bool:
        """Whether an abort (not a graceful stop) was requested."""
        return self._event.is_set() and not self._graceful

    @property
    def graceful(self) -> bool:
        """Whether the request is a graceful stop."""
        return self._event.is_set() and self._graceful

    @property
    def reason(self) -> str | None:
        """The reason given with the request."""
        return self._reason

    @property
    def requested_at(self) -> float | None:
        """``time.monotonic()`` when the request arrived."""
        return self._requested_at

    @property
    def observed_at(self) -> float | None:
        """``time.monotonic()`` when the run first acted on the request."""
        return self._observed_at

    def mark_observed(self, at: float | None = None) -> None:
        """Record that the run acted on the request (first call wins).

        ``at`` is a ``time.monotonic()`` reading taken elsewhere (a child process acting on
        the request it was forwarded: the clock is system-wide); default now.
        """
        if self._event.is_set() and self._observed_at is None:
            self._observed_at = time.monotonic() if at is None else at

    def raise_if_aborted(self) -> None:
        """Raise :class:`OperationCancelled` if an abort was requested."""
        if self.aborting:
            self.mark_observed()
            raise OperationCancelled(self._reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a request arrives or ``timeout`` passes; True when requested."""
        return self._event.wait(timeout)
