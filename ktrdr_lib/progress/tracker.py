"""Progress bookkeeping: phases, percentage, ETA and throttled snapshots.

:class:`ProgressTracker` turns a run's events (phase changes from the pipeline, batch and epoch
ends from Lightning via :class:`~ktrdr_lib.progress.bridge.ProgressBridge`) into
:class:`~ktrdr_lib.schemas.progress.ProgressSnapshot`\\ s. It does no I/O: every snapshot goes to a
``publish`` function that must be an O(1) hand-off (the orchestrator's hub queues it for the
store writer and the subscribers).

Percentage: the preparation phases own the first 10 % (split by their typical share of the
work), training owns 10-95 % counted across epochs as ``((epoch-1)*B + batch) / (E*B)`` so it
never resets per epoch, evaluate and save own the tail. It never decreases. The ETA is the
batches left divided by the training throughput: an exponentially weighted batches-per-second
rate over training-step time only, skipping each run's first batches (warm-up) and each epoch's
first batch (which would include validation and epoch set-up). Each step's rate counts by how
long the step took (so the estimate is batches over seconds across the last ~``_RATE_SPAN_S``
/ ``_RATE_WEIGHT`` seconds of training, whatever the batch size), and no single step counts for
more than ``_RATE_WEIGHT``: one stalled batch moves the ETA by about a tenth, not tenfold, while
a lasting change of pace takes over within a minute or so.

State is updated on every event; snapshots are emitted at most every ``min_interval`` seconds,
and always at a phase change, an epoch end and the finish.

A run on a training host is tracked by the host's own tracker; :meth:`ProgressTracker.forward`
republishes each host snapshot under the local operation id and sequence numbering, keeping the
figures the host computed, so percentage, ETA and metrics mean the same in both modes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ktrdr_lib.schemas.progress import DeviceResources, EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import FINAL_STATUSES, OperationStatus, Phase
from ktrdr_lib.timestamps import iso_utc

__all__ = ["PHASE_SPANS", "ProgressTracker"]

PHASE_SPANS: dict[str, tuple[float, float]] = {
    "queued": (0.0, 0.0),
    "load_data": (0.0, 4.0),
    "indicators": (4.0, 7.0),
    "fuzzy": (7.0, 8.5),
    "labels": (8.5, 10.0),
    "train": (10.0, 95.0),
    "evaluate": (95.0, 98.0),
    "save": (98.0, 100.0),
    "remote": (0.0, 100.0),
}
_WARMUP_BATCHES = 3
_RATE_WEIGHT = 0.1
"""The most one training step can move the throughput estimate (a fraction of it)."""
_RATE_SPAN_S = 2.0
"""A step this long (or longer) counts with the full ``_RATE_WEIGHT``; shorter ones count in
proportion to their duration."""


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such figures travel as ``None``."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class ProgressTracker:
    """Bookkeeping for one run's progress.

    Args:
        operation_id: whose progress this is.
        total_epochs: the epoch budget.
        publish: receives each emitted snapshot; must not block.
        on_epoch: receives each finished epoch's history row; must not block.
        min_interval: seconds between throttled emits (default 0.2, i.e. 5 Hz).
        clock: monotonic seconds (injectable for tests).
        start_sequence: the sequence the first emitted snapshot follows (for resumed runs).
        start_percentage: the percentage to start from (a resumed run: where the run it
            continues stopped); it never goes below it.
    """

    def __init__(
        self,
        operation_id: str,
        *,
        total_epochs: int,
        publish: Callable[[ProgressSnapshot], None],
        on_epoch: Callable[[EpochHistoryRow], None] | None = None,
        min_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        start_sequence: int = 0,
        start_percentage: float = 0.0,
    ) -> None:
        if total_epochs < 1:
            raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval}")
        self.operation_id = operation_id
        self.total_epochs = total_epochs
        self._publish = publish
        self._on_epoch = on_epoch
        self.min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_emit = -float("inf")
        self._sequence = start_sequence
        self._status: OperationStatus = "running"
        self._phase: Phase = "queued"
        self._phase_seconds: dict[str, float] = {}
        self._phase_since: float | None = None
        self._message = ""
        self._percentage = float(start_percentage)  # a resumed run starts where its first stopped
        self._epoch = 0
        self._batch = 0
        self._total_batches = 0
        self._batches_seen = 0
        self._last_batch_at: float | None = None
        self._rate_sum = 0.0  # exponentially weighted sum of step rates (batches/s)...
        self._rate_weight = 0.0  # ...and of their weights: the rate is their ratio
        self._epoch_started: float | None = None
        self._metrics: dict[str, float | None] = {}
        self._metrics_epoch = 0
        self._resources = DeviceResources()
        self._host_session_id: str | None = None
        self._forwarded = False  # figures come from a host's tracker (see forward)
        self._host_eta: float | None = None
        self._items: tuple[int, int] | None = None
        self.emitted = 0

    # -- events --------------------------------------------------------------------------

    def on_phase(self, phase: Phase, message: str) -> None:
        """A pipeline phase started (forces an emit)."""
        with self._lock:
            self._enter_phase(phase)
            self._phase = phase
            self._message = message
            self._raise_to(PHASE_SPANS.get(phase, (self._percentage, 0.0))[0])
            self._emit_locked()

    def set_resources(self, resources: DeviceResources) -> None:
        """Device and memory figures shown with every snapshot."""
        with self._lock:
            self._resources = resources

    def set_status(self, status: OperationStatus) -> None:
        """The operation's status as views should show it (e.g. ``cancelling``).

        Ignored once :meth:`finish` has emitted the final snapshot: a cancel that races the
        run's end must not publish a ``cancelling`` snapshot after the final one.
        """
        with self._lock:
            if self._status in FINAL_STATUSES:
                return
            self._status = status
            self._emit_locked()

    def start_epoch(self, epoch: int, total_batches: int) -> None:
        """Epoch ``epoch`` (1-based) of ``total_batches`` batches begins."""
        with self._lock:
            self._phase = "train"
            self._epoch = epoch
            self._batch = 0
            self._total_batches = max(int(total_batches), 0)
            self._last_batch_at = None
            self._epoch_started = self._clock()

    def due(self) -> bool:
        """Whether the next throttled event would emit (lets callers skip costly reads)."""
        return self._clock() - self._last_emit >= self.min_interval

    def batch_done(self, batch: int, loss: float | None = None) -> None:
        """Batch ``batch`` (1-based) of the current epoch finished.

        ``loss`` is optional: pass it only when :meth:`due`, since reading a loss tensor can
        cost a device sync.
        """
        with self._lock:
            now = self._clock()
            if self._last_batch_at is not None and self._batches_seen >= _WARMUP_BATCHES:
                self._observe_step(now - self._last_batch_at)
            self._last_batch_at = now
            self._batches_seen += 1
            self._batch = batch
            if loss is not None:
                self._metrics["train_loss_batch"] = _finite(loss)
            self._raise_to(self._train_percentage())
            self._message = self._train_message()
            if now - self._last_emit >= self.min_interval:
                self._emit_locked()

    def epoch_done(self, metrics: dict[str, float], learning_rate: float | None = None) -> None:
        """The current epoch (training and validation) finished (forces an emit)."""
        with self._lock:
            started = self._epoch_started
            duration = None if started is None else self._clock() - started
            self._metrics.pop("train_loss_batch", None)
            self._metrics.update({k: _finite(v) for k, v in metrics.items()})
            self._metrics_epoch = self._epoch
            self._raise_to(self._train_percentage())
            self._message = self._train_message()
            row = EpochHistoryRow(
                epoch=self._epoch,
                train_loss=metrics.get("train_loss"),
                train_accuracy=metrics.get("train_accuracy"),
                val_loss=metrics.get("val_loss"),
                val_accuracy=metrics.get("val_accuracy"),
                learning_rate=learning_rate,
                duration_s=None if duration is None else round(duration, 4),
            )
            self._emit_locked()
        if self._on_epoch is not None:
            self._on_epoch(row)

    def set_host_session(self, session_id: str, message: str | None = None) -> None:
        """The run now executes as ``session_id`` on a training host (forces an emit).

        Every later snapshot carries the id in ``host_session_id``.
        """
        with self._lock:
            self._host_session_id = session_id
            if message is not None:
                self._message = message
            self._emit_locked()

    def forward(self, snapshot: ProgressSnapshot) -> ProgressSnapshot:
        """Publish a training host's snapshot as this operation's next one (always emits).

        Phase, message, epoch, batch, ETA, items, metrics and resources are kept as the host
        computed them; the operation id, sequence (this tracker's numbering) and elapsed time
        are local, ``percentage`` never decreases, and ``host_session_id`` is set. The status
        stays this operation's own while the run is active: a host's final status becomes this
        operation's only through :meth:`finish` (the orchestrator records the outcome first).
        Epoch history is not derived from snapshots: pass the host's rows to
        :meth:`record_epoch`.

        Returns:
            The snapshot as published.
        """
        with self._lock:
            self._forwarded = True
            if snapshot.host_session_id and self._host_session_id is None:
                self._host_session_id = snapshot.host_session_id
            if snapshot.total_epochs >= 1:
                self.total_epochs = snapshot.total_epochs
            self._enter_phase(snapshot.phase)
            self._phase = snapshot.phase
            self._message = snapshot.message
            self._raise_to(snapshot.percentage)
            self._epoch = snapshot.epoch
            self._batch = snapshot.batch
            self._total_batches = snapshot.total_batches
            self._items = (snapshot.items_processed, snapshot.items_total)
            self._host_eta = snapshot.eta_s
            self._metrics = dict(snapshot.metrics)
            self._metrics_epoch = snapshot.metrics_epoch
            self._resources = snapshot.resources
            if snapshot.status == "cancelling" and self._status == "running":
                self._status = "cancelling"
            return self._emit_locked()

    def record_epoch(self, row: EpochHistoryRow) -> None:
        """Hand an epoch history row computed elsewhere (a training host) to ``on_epoch``."""
        if self._on_epoch is not None:
            self._on_epoch(row)

    def finish(self, status: OperationStatus, message: str) -> ProgressSnapshot:
        """The run ended; emits and returns the final snapshot (100 % when completed)."""
        with self._lock:
            self._status = status
            self._message = message
            if status == "completed":
                self._raise_to(100.0)
            return self._emit_locked()

    # -- views ---------------------------------------------------------------------------

    def phase_seconds(self) -> dict[str, float]:
        """Seconds spent in each pipeline phase so far, as this tracker saw the phases go by
        (the current one up to now); what a partial result reports."""
        with self._lock:
            seconds = dict(self._phase_seconds)
            if self._phase_since is not None and self._phase in PHASE_SPANS:
                spent = self._clock() - self._phase_since
                seconds[self._phase] = seconds.get(self._phase, 0.0) + spent
            return {phase: round(value, 3) for phase, value in seconds.items()}

    def snapshot(self) -> ProgressSnapshot:
        """The current state, without emitting (does not advance the sequence)."""
        with self._lock:
            return self._build(self._sequence)

    @property
    def sequence(self) -> int:
        """The last emitted sequence number."""
        return self._sequence

    # -- internals -----------------------------------------------------------------------

    def _enter_phase(self, phase: Phase) -> None:
        """Close the running phase's clock when a new pipeline phase begins (lock held)."""
        if phase == self._phase and self._phase_since is not None:
            return
        now = self._clock()
        if self._phase_since is not None:
            spent = now - self._phase_since
            self._phase_seconds[self._phase] = self._phase_seconds.get(self._phase, 0.0) + spent
        pipeline = phase not in ("queued", "remote")
        self._phase_since = now if pipeline else None

    def _raise_to(self, value: float) -> None:
        self._percentage = max(self._percentage, min(value, 100.0))

    def _observe_step(self, seconds: float) -> None:
        """Fold one training step (a batch that took ``seconds``) into the throughput."""
        if seconds <= 0:
            return  # a clock that did not move says nothing about the pace
        weight = _RATE_WEIGHT * min(1.0, seconds / _RATE_SPAN_S)
        if self._rate_weight > 0:  # its share of the estimate stays <= _RATE_WEIGHT, however
            prior = self._rate_weight  # little training came before it
            weight = min(weight, _RATE_WEIGHT * prior / (1 - _RATE_WEIGHT + _RATE_WEIGHT * prior))
        self._rate_sum = (1 - weight) * self._rate_sum + weight / seconds
        self._rate_weight = (1 - weight) * self._rate_weight + weight

    @property
    def batches_per_second(self) -> float | None:
        """The smoothed training throughput the ETA uses; ``None`` before the first steps."""
        with self._lock:
            return self._rate()

    def _rate(self) -> float | None:
        if self._rate_weight <= 0:
            return None
        return self._rate_sum / self._rate_weight

    def _train_percentage(self) -> float:
        lo, hi = PHASE_SPANS["train"]
        total = self.total_epochs * max(self._total_batches, 1)
        done = (self._epoch - 1) * max(self._total_batches, 1) + self._batch
        return lo + (hi - lo) * min(done / total, 1.0)

    def _train_message(self) -> str:
        return (
            f"Epoch {self._epoch}/{self.total_epochs} · Batch {self._batch}/{self._total_batches}"
        )

    def _eta(self) -> float | None:
        if self._forwarded:
            return None if self._status in FINAL_STATUSES else self._host_eta
        rate = self._rate()
        if rate is None or self._phase != "train":
            return None
        remaining = (self.total_epochs - self._epoch) * self._total_batches + (
            self._total_batches - self._batch
        )
        return round(max(remaining, 0) / rate, 2)

    def _build(self, sequence: int) -> ProgressSnapshot:
        now = self._clock()
        if self._items is not None:
            items_done, items_total = self._items
        else:
            items_total = self.total_epochs * self._total_batches
            items_done = max(self._epoch - 1, 0) * self._total_batches + self._batch
        return ProgressSnapshot(
            operation_id=self.operation_id,
            sequence=sequence,
            status=self._status,
            phase=self._phase,
            percentage=round(self._percentage, 3),
            message=self._message,
            epoch=self._epoch,
            total_epochs=self.total_epochs,
            batch=self._batch,
            total_batches=self._total_batches,
            items_processed=items_done,
            items_total=items_total,
            elapsed_s=round(now - self._started, 3),
            eta_s=self._eta(),
            metrics=dict(self._metrics),
            metrics_epoch=self._metrics_epoch,
            resources=self._resources,
            host_session_id=self._host_session_id,
            updated_at=iso_utc(time.time()),
        )

    def _emit_locked(self) -> ProgressSnapshot:
        self._sequence += 1
        snap = self._build(self._sequence)
        self._last_emit = self._clock()
        self.emitted += 1
        self._publish(snap)
        return snap
