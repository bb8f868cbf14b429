"""The Ray worker's side of a ``ray``-mode run: one actor per run.

:class:`RunActor` is created by :class:`~ktrdr_lib.runners.ray.RayTrainingRunner` as a named,
detached, threaded actor (``ktrdr-<operation id>`` in namespace ``ktrdr``), so it outlives the
process that started it and a restarted orchestrator finds it by name. ``start`` takes the
context and the prepared data (resolved from the object store by Ray) and trains in a thread
of the actor; the other methods answer while it trains:

- ``poll(seen)``: the latest throttled snapshot, the epoch rows after the first ``seen``, and
  the outcome once there is one: one remote call per poll, never one per batch.
- ``cancel(graceful, reason)``: sets the run's cancel token (abort within a batch, graceful
  after the running epoch), exactly as a local run's.

The model is saved into a directory of the worker's own and travels back as a checksummed
archive with the outcome (:func:`~ktrdr_lib.models.archive.pack_model_version`): nodes share no
filesystem.

This module imports no Ray: the runner wraps the class with ``ray.remote`` when it needs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult

if TYPE_CHECKING:
    from ktrdr_lib.pipeline.context import TrainingOperationContext
    from ktrdr_lib.pipeline.options import TrainerOptions
    from ktrdr_lib.pipeline.prepare import PreparedData
    from ktrdr_lib.runners.worker import ErrorMessage

__all__ = ["RunActor", "RunOutcome", "RunPoll", "WorkerPlace"]


class WorkerPlace(msgspec.Struct, frozen=True, kw_only=True):
    """Where the actor runs (answered by ``start`` and ``place``)."""

    job_id: str
    actor_id: str
    node_id: str
    node_address: str
    pid: int


@dataclass(frozen=True)
class RunOutcome:
    """How the run ended: a result with its model archive, or an error."""

    result: TrainingResult | None = None
    archive: bytes | None = None
    archive_sha256: str | None = None
    error: ErrorMessage | None = None
    cancel_observed: bool = False
    cancel_observed_at: float | None = None


@dataclass(frozen=True)
class RunPoll:
    """One poll's answer."""

    snapshot: ProgressSnapshot | None
    epochs: list[EpochHistoryRow]
    outcome: RunOutcome | None
    running: bool
    rows_total: int = 0


class RunActor:
    """One run in a Ray worker (see the module)."""

    def __init__(self, operation_id: str, min_interval: float, torch_threads: int) -> None:
        self.operation_id = operation_id
        self.min_interval = min_interval
        self.torch_threads = torch_threads
        self._claimed = threading.Event()
        self._warmed = threading.Event()
        self._renewed = time.monotonic()
        self._lock = threading.Lock()
        self._token = CancelToken()
        self._snapshot: ProgressSnapshot | None = None
        self._epochs: list[EpochHistoryRow] = []
        self._outcome: RunOutcome | None = None
        self._thread: threading.Thread | None = None

    def place(self) -> WorkerPlace:
        """Where this actor runs."""
        import ray

        context = ray.get_runtime_context()
        return WorkerPlace(
            job_id=context.get_job_id(),
            actor_id=context.get_actor_id() or "",
            node_id=context.get_node_id(),
            node_address=ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            pid=os.getpid(),
        )

    def warm_up(self, lease_s: float) -> WorkerPlace:
        """Become a warm worker: import torch, Lightning and the training pipeline (the
        seconds a new worker spends before its first batch), then wait to be claimed by
        ``start``. No sample run: warm actors often warm up while trials train on the same
        cores, and imports cost little CPU. Unclaimed, the actor ends itself once nobody
        renews it (:meth:`renew`) for ``lease_s``: the process that keeps it warm is gone,
        and a warm actor never outlives its pool."""
        try:
            import lightning.pytorch  # noqa: F401
            import torch  # noqa: F401

            import ktrdr_lib.pipeline.run
            import ktrdr_lib.runners.base
            import ktrdr_lib.training.fit
            import ktrdr_lib.training.module  # noqa: F401
        finally:
            self._warmed.set()
        self._renewed = time.monotonic()
        threading.Thread(
            target=self._lease, args=(lease_s,), name="ktrdr-ray-lease", daemon=True
        ).start()
        return self.place()

    def renew(self) -> bool:
        """Keep an idle warm actor alive for another lease; ``False`` once it was claimed."""
        self._renewed = time.monotonic()
        return not self._claimed.is_set()

    def _lease(self, lease_s: float) -> None:
        while not self._claimed.wait(min(lease_s / 4, 5.0)):
            if time.monotonic() - self._renewed > lease_s:
                os._exit(0)  # unclaimed and forgotten: end the worker process

    def start(
        self,
        context: TrainingOperationContext,
        prepared: PreparedData | None,
        trainer_options: TrainerOptions,
        save_model: bool,
        min_interval: float | None = None,
        torch_threads: int | None = None,
        warm: bool = False,
    ) -> WorkerPlace:
        """Begin training in a thread of this actor; returns where it runs at once (a warm
        actor is claimed by it: its lease no longer applies, and the run waits for its warm-up
        to finish rather than share the CPU with it)."""
        self._claimed.set()
        if warm:
            self._warmed.wait(600)
        self.operation_id = context.operation_id
        if min_interval is not None:
            self.min_interval = min_interval
        if torch_threads is not None:
            self.torch_threads = torch_threads
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._train,
                    args=(context, prepared, trainer_options, save_model),
                    name=f"ktrdr-ray-{self.operation_id}",
                    daemon=True,
                )
                self._thread.start()
        return self.place()

    def reset(self, lease_s: float) -> bool:
        """Become a warm worker again after a run ended (its outcome was read): the run's
        state goes, the lease applies again; ``False`` while a run still trains."""
        with self._lock:
            thread = self._thread
            if thread is not None and self._outcome is None:
                return False
        if thread is not None:
            thread.join(timeout=30)  # it sets the outcome as its very last step
        with self._lock:
            self._token = CancelToken()
            self._snapshot = None
            self._epochs = []
            self._outcome = None
            self._thread = None
        self._renewed = time.monotonic()
        self._warmed.set()  # it trained: everything a run needs is imported
        self._claimed.clear()
        threading.Thread(
            target=self._lease, args=(lease_s,), name="ktrdr-ray-lease", daemon=True
        ).start()
        return True

    def poll(self, seen: int) -> RunPoll:
        """The latest snapshot, the epoch rows after the first ``seen``, and the outcome."""
        with self._lock:
            return RunPoll(
                snapshot=self._snapshot,
                epochs=self._epochs[seen:],
                outcome=self._outcome,
                running=self._thread is not None and self._outcome is None,
                rows_total=len(self._epochs),
            )

    def cancel(self, graceful: bool, reason: str) -> bool:
        """Set the run's token (an abort may escalate a graceful stop, never the reverse);
        ``True`` while the run had not ended."""
        self._token.cancel(graceful=graceful, reason=reason)
        with self._lock:
            return self._outcome is None

    # -- in the actor's training thread -------------------------------------------------------

    def _publish(self, snapshot: ProgressSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def _epoch(self, row: EpochHistoryRow) -> None:
        with self._lock:
            self._epochs.append(row)

    def _train(
        self,
        context: TrainingOperationContext,
        prepared: PreparedData | None,
        trainer_options: TrainerOptions,
        save_model: bool,
    ) -> None:
        from ktrdr_lib.runners.base import run_with_progress
        from ktrdr_lib.runners.worker import _error_message

        tracker: ProgressTracker | None = None
        models = Path(tempfile.mkdtemp(prefix="ktrdr-ray-models-"))
        outcome: RunOutcome
        try:
            import torch

            torch.set_num_threads(self.torch_threads)
            tracker = ProgressTracker(
                context.operation_id,
                total_epochs=context.total_epochs,
                publish=self._publish,
                on_epoch=self._epoch,
                min_interval=self.min_interval,
            )
            # The worker's own model directory; no checkpoints (they would live on a node
            # the orchestrator cannot read).
            here = msgspec.structs.replace(
                context, models_dir=str(models), checkpoint_dir="", resume_from=None
            )
            result = run_with_progress(
                here,
                token=self._token,
                tracker=tracker,
                trainer_options=trainer_options,
                save_model=save_model,
                prepared=prepared,
            )
            archive = sha = None
            if result.artifacts.model_path:
                from ktrdr_lib.models.archive import pack_model_version

                archive, sha = pack_model_version(Path(result.artifacts.model_path))
            outcome = RunOutcome(
                result=result,
                archive=archive,
                archive_sha256=sha,
                cancel_observed=self._token.observed_at is not None,
                cancel_observed_at=self._token.observed_at,
            )
        except BaseException as exc:
            if tracker is not None:  # where it stopped (the throttled snapshot may be older)
                self._publish(tracker.snapshot())
            outcome = RunOutcome(
                error=_error_message(exc, self._token.observed_at),
                cancel_observed=self._token.observed_at is not None,
                cancel_observed_at=self._token.observed_at,
            )
        finally:
            shutil.rmtree(models, ignore_errors=True)
        with self._lock:
            self._outcome = outcome

    def pid(self) -> int:
        """The worker process's id (tests kill it to play a dead node)."""
        return os.getpid()

    def monotonic(self) -> float:
        """The worker's ``time.monotonic()`` (cancel latencies compare clocks on one node)."""
        return time.monotonic()
