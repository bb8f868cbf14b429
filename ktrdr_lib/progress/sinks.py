"""Where progress snapshots go: live subscribers and the operation store.

The training thread only calls :meth:`OperationChannel.publish`, an O(1) append under a lock.
Subscribers (``follow()``, SSE streams, notebook views) wait on the channel; a single
:class:`StoreWriter` thread persists the newest snapshot of each operation and its epoch rows,
coalescing bursts so a slow disk never slows training.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from functools import partial

from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import FINAL_STATUSES

__all__ = ["OperationChannel", "StoreWriter"]

log = logging.getLogger(__name__)


class OperationChannel:
    """The recent snapshots of one live operation, for any number of subscribers.

    Args:
        operation_id: whose snapshots these are.
        history: how many recent snapshots to keep for late or resuming subscribers.
        on_publish: also called with every snapshot (e.g. the store writer's ``submit``);
            must not block.
    """

    def __init__(
        self,
        operation_id: str,
        *,
        history: int = 512,
        on_publish: Callable[[ProgressSnapshot], None] | None = None,
    ) -> None:
        self.operation_id = operation_id
        self._recent: deque[ProgressSnapshot] = deque(maxlen=history)
        self._cond = threading.Condition()
        self._on_publish = on_publish
        self._closed = False

    def publish(self, snapshot: ProgressSnapshot) -> None:
        """Add a snapshot and wake the subscribers."""
        with self._cond:
            self._recent.append(snapshot)
            if snapshot.status in FINAL_STATUSES:
                self._closed = True
            self._cond.notify_all()
        if self._on_publish is not None:
            self._on_publish(snapshot)

    @property
    def latest(self) -> ProgressSnapshot | None:
        """The newest snapshot, if any."""
        with self._cond:
            return self._recent[-1] if self._recent else None

    @property
    def closed(self) -> bool:
        """Whether a final snapshot was published."""
        return self._closed

    def after(self, sequence: int, timeout: float | None = None) -> list[ProgressSnapshot]:
        """Snapshots newer than ``sequence``, waiting up to ``timeout`` for one to arrive.

        If the subscriber fell behind the kept history, it gets what is kept (the newest
        snapshots), never a repeat. An empty list means the wait timed out.
        """
        with self._cond:
            if not self._newer(sequence) and not self._closed:
                self._cond.wait_for(lambda: self._newer(sequence) or self._closed, timeout)
            return [s for s in self._recent if s.sequence > sequence]

    def _newer(self, sequence: int) -> bool:
        return bool(self._recent) and self._recent[-1].sequence > sequence


class StoreWriter:
    """A background thread that writes snapshots and epoch rows to the store.

    Only the newest pending snapshot of each operation is written; epoch rows are all
    written, in order. :meth:`flush` blocks until everything submitted so far is stored.
    """

    def __init__(self, store: OperationStore) -> None:
        self.store = store
        self._pending: dict[str, ProgressSnapshot] = {}
        self._epochs: list[tuple[str, EpochHistoryRow]] = []
        self._cond = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ktrdr-store-writer", daemon=True)
        self._thread.start()

    def submit(self, snapshot: ProgressSnapshot) -> None:
        """Queue a snapshot (replacing an unwritten older one of the same operation)."""
        with self._cond:
            if self._stopping:  # a run outlived its orchestrator; nothing left to write to
                return
            pending = self._pending.get(snapshot.operation_id)
            if pending is None or pending.sequence < snapshot.sequence:
                self._pending[snapshot.operation_id] = snapshot
            self._submitted += 1
            self._cond.notify_all()

    def submit_epoch(self, operation_id: str, row: EpochHistoryRow) -> None:
        """Queue an epoch history row."""
        with self._cond:
            if self._stopping:
                return
            self._epochs.append((operation_id, row))
            self._submitted += 1
            self._cond.notify_all()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is pending and stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._epochs or self._stopping)
                if self._stopping and not self._pending and not self._epochs:
                    return
                snapshots, self._pending = self._pending, {}
                epochs, self._epochs = self._epochs, []
                target = self._submitted
            for operation_id, row in epochs:
                self._guard(partial(self.store.append_epoch, operation_id, row))
            for snapshot in snapshots.values():
                self._guard(partial(self.store.save_progress, snapshot))
            with self._cond:
                self._written = max(self._written, target)
                self._cond.notify_all()

    @staticmethod
    def _guard(write: Callable[[], object]) -> None:
        try:
            write()
        except Exception:  # the writer must outlive a bad write; the error is logged
            log.exception("could not store progress")
