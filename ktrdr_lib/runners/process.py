"""Local training in a child process, so the process that serves requests keeps its GIL.

:class:`ProcessTrainingRunner` is a ``local`` runner like
:class:`~ktrdr_lib.runners.local.LocalTrainingRunner`, but it runs
:func:`~ktrdr_lib.runners.base.run_with_progress` in a child process started with ``spawn``
(the parent has threads, so it never forks). Starting a child and importing torch and
Lightning takes seconds, so the runner keeps **warm workers**: a bounded pool of children that
have done that (and a tiny sample run) before a run needs them. A run takes a ready worker,
the pool starts a replacement at once, and the worker exits after ``runs_per_worker`` runs.
The worker has its own tracker and cancel token; the parent republishes its snapshots under
the operation's own id and sequence with ``ProgressTracker.forward`` (as the host runner does
with a training host's), hands its epoch rows to ``ProgressTracker.record_epoch``, and sends
its cancel token's requests down the worker's control pipe at once.

Cancel latency in every phase: an abort while the run still waits for a worker to come up is
honoured at once (nothing ran); during data preparation the worker stops at the next step;
in training within a batch. The wire and the worker's side are in
:mod:`ktrdr_lib.runners.worker`. A child that dies without a word becomes a
:class:`~ktrdr_lib.errors.TrainingError` naming its exit code.

Example:
    >>> from ktrdr_lib import TrainingOrchestrator
    >>> from ktrdr_lib.runners.process import ProcessTrainingRunner
    >>> orch = TrainingOrchestrator(runner=ProcessTrainingRunner())  # doctest: +SKIP
    >>> orch.start_training("rsi_mean_reversion", epochs=5).wait().status  # doctest: +SKIP
    'completed'
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec

from ktrdr_lib.errors import (
    KtrdrError,
    OperationCancelled,
    TrainingError,
    error_class,
    rebuild_error,
)
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.runners.command import CommandChild, exit_description, start_training_command
from ktrdr_lib.runners.pool import WorkerPool
from ktrdr_lib.runners.worker import (
    MAX_MESSAGE_BYTES,
    CancelMessage,
    ChildJob,
    ChildMessage,
    ControlMessage,
    EpochMessage,
    ErrorMessage,
    JobMessage,
    ResultMessage,
    SnapshotMessage,
)
from ktrdr_lib.schemas.results import TrainingResult

__all__ = ["ProcessTrainingRunner"]

log = logging.getLogger(__name__)


def _rebuild_error(message: ErrorMessage) -> KtrdrError:
    """The child's error as the same KtrdrError subclass (TrainingError for anything else)."""
    cls = error_class(*message.kinds)
    if cls is None:
        return TrainingError(f"{message.kinds[0]}: {message.detail}")
    return rebuild_error(cls, message.detail, message.problems)


class ProcessTrainingRunner:
    """Runs the training pipeline in a child process; progress and cancels cross a pipe.

    Training in a child keeps a server's request handlers off the training thread's GIL: the
    parent only forwards a few snapshots a second. Children start with ``spawn`` and pay the
    imports (seconds) before a run needs them: the runner keeps ``warm_workers`` of them ready
    (:mod:`ktrdr_lib.runners.pool`), started by :meth:`warm_up` (an orchestrator calls it when
    it is given the runner) or by the first run.

    Args:
        trainer_options: accelerator, devices, strategy and precision for Lightning.
        save_model: save each trained model to the ModelStore (the child writes it).
        start_method: a multiprocessing start method without fork's hazards for a threaded
            parent: ``spawn`` (default) or ``forkserver``.
        torch_threads: torch intra-op threads in the child (default: this process's
            ``torch.get_num_threads()`` when the run starts, as an in-process run would use).
        callbacks: extra Lightning callbacks for every run; they are pickled into the child,
            so they must be importable, picklable objects.
        abort_grace_s: after an abort is sent, how long the child may take to stop before it
            is killed (the operation still ends ``cancelled``).
        warm_workers: idle warm workers to keep ready (0: every run starts its own child).
        runs_per_worker: runs a worker serves before it is replaced by a fresh one (1: every
            run in a fresh process; more saves the replacement's start-up, at the price of
            runs sharing a process's leftovers such as memory the allocator kept).

    Example:
        >>> runner = ProcessTrainingRunner(torch_threads=1, warm_workers=0)
        >>> runner.mode
        'local'
    """

    mode = "local"
    can_reattach = False
    max_message_bytes = MAX_MESSAGE_BYTES
    """The most one message from a child may hold (a longer one fails the run unread)."""

    def __init__(
        self,
        trainer_options: TrainerOptions | None = None,
        *,
        save_model: bool = True,
        start_method: str = "spawn",
        torch_threads: int | None = None,
        callbacks: Sequence[Any] = (),
        abort_grace_s: float = 60.0,
        warm_workers: int = 1,
        runs_per_worker: int = 1,
    ) -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(
                f"start_method must be 'spawn' or 'forkserver', got {start_method!r}: the "
                "parent runs threads, and forking a threaded process can deadlock the child"
            )
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        if abort_grace_s <= 0:
            raise ValueError(f"abort_grace_s must be > 0, got {abort_grace_s}")
        if warm_workers < 0:
            raise ValueError(f"warm_workers must be >= 0, got {warm_workers}")
        if runs_per_worker < 1:
            raise ValueError(f"runs_per_worker must be >= 1, got {runs_per_worker}")
        self.trainer_options = trainer_options or TrainerOptions()
        self.save_model = save_model
        self.start_method = start_method
        self.torch_threads = torch_threads
        self.callbacks = list(callbacks)
        self.abort_grace_s = abort_grace_s
        self._context: SpawnContext | ForkServerContext = (
            multiprocessing.get_context("spawn")
            if start_method == "spawn"
            else multiprocessing.get_context("forkserver")
        )
        self.pool = WorkerPool(
            self._context,
            size=warm_workers,
            callbacks=self.callbacks,
            runs_per_worker=runs_per_worker,
        )
        self._decoder = msgspec.msgpack.Decoder(ChildMessage)
        self._children: dict[str, BaseProcess] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Start the warm workers now (returns at once; they get ready in the background)."""
        self.pool.fill()

    def close(self) -> None:
        """Stop the idle workers; runs in progress finish (an orchestrator's shutdown calls
        this after its runs ended)."""
        self.pool.close()

    def child_pid(self, operation_id: str) -> int | None:
        """The process id of the child training ``operation_id``, while it runs."""
        with self._lock:
            process = self._children.get(operation_id)
        return None if process is None else process.pid

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Train in a warm child process; its snapshots and epoch rows go to
        ``control.tracker``.

        Raises:
            OperationCancelled: the run was aborted.
            KtrdrError: the child's error, as the same subclass (``DataError``, ...).
            TrainingError: the child failed outside the project's errors, or died.
        """
        control.refuse_reattach(self.mode)
        token, tracker = control.token, control.tracker
        token.raise_if_aborted()  # no child for a run cancelled before it started
        threads = self.torch_threads
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        job = ChildJob(
            context=context,
            trainer_options=self.trainer_options,
            save_model=self.save_model,
            min_interval=tracker.min_interval,
            torch_threads=threads,
        )
        if self.trainer_options.world_size > 1:
            return self._run_command(job, context, token, tracker)
        op_id = context.operation_id
        worker = self.pool.take(
            token, on_wait=lambda: tracker.on_phase("queued", "Starting a training process")
        )
        reusable = False
        with self._lock:
            self._children[op_id] = worker.process
        try:
            try:
                worker.send(JobMessage(job))
            except OSError:
                raise self._died(worker.process) from None
            with self._forwarding_cancel(token, worker.send, op_id):
                result = self._follow(worker.process, worker.results, token, tracker)
            reusable = True
            return result
        finally:
            with self._lock:
                self._children.pop(op_id, None)
            self.pool.give_back(worker, reusable=reusable)

    @contextlib.contextmanager
    def _forwarding_cancel(
        self, token: CancelToken, send: Callable[[ControlMessage], None], op_id: str
    ) -> Iterator[None]:
        """While inside, a thread sends the token's requests to the child."""
        finished = threading.Event()
        forwarder = threading.Thread(
            target=self._forward_cancel,
            args=(token, send, op_id, finished),
            name=f"ktrdr-cancel-{op_id}",
            daemon=True,
        )
        forwarder.start()
        try:
            yield
        finally:
            finished.set()
            forwarder.join()

    @staticmethod
    def _forward_cancel(
        token: CancelToken,
        send: Callable[[ControlMessage], None],
        op_id: str,
        finished: threading.Event,
    ) -> None:
        """Parent thread: send the token's request to the child at once (and an upgrade of a
        graceful stop to an abort)."""
        sent_graceful: bool | None = None
        while not finished.is_set():
            if not token.wait(0.25):
                continue
            graceful = token.graceful
            if sent_graceful is None or (sent_graceful and not graceful):
                message = CancelMessage(
                    graceful=graceful, reason=token.reason or "cancelled", operation_id=op_id
                )
                try:
                    send(message)
                except OSError:
                    return  # the child is gone; the follower reports how it ended
                sent_graceful = graceful
            if not graceful:
                return
            finished.wait(0.05)

    def _follow(
        self,
        process: BaseProcess | CommandChild,
        results: Connection,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Relay the child's messages until its result or error; notice a silent death."""
        abort_deadline: float | None = None
        while True:
            ready = wait([results, process.sentinel], timeout=0.5)
            if isinstance(process, CommandChild) and not ready and not process.is_alive():
                ready = [process.sentinel]
            if results in ready:
                message = self._receive(process, results)
                if isinstance(message, SnapshotMessage):
                    tracker.forward(message.snapshot)
                elif isinstance(message, EpochMessage):
                    tracker.record_epoch(message.row)
                elif isinstance(message, ResultMessage):
                    if message.cancel_observed_at is not None:
                        token.mark_observed(at=message.cancel_observed_at)
                    return message.result
                elif isinstance(message, ErrorMessage):
                    if message.cancel_observed_at is not None:
                        token.mark_observed(at=message.cancel_observed_at)
                    error = _rebuild_error(message)
                    if not isinstance(error, OperationCancelled):
                        log.warning("training process failed:\n%s", message.trace.rstrip())
                    raise error
                continue
            if ready and not results.poll():  # only the sentinel: gone without a word
                raise self._died(process)
            if token.aborting:
                now = time.monotonic()
                abort_deadline = abort_deadline or now + self.abort_grace_s
                if now >= abort_deadline:
                    process.kill()
                    process.join()
                    raise OperationCancelled(
                        f"{token.reason or 'cancelled'} (the training process did not stop "
                        f"within {self.abort_grace_s:g} s of the abort and was killed)"
                    )

    def _run_command(
        self,
        job: ChildJob,
        context: TrainingOperationContext,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Several devices: Lightning's ``ddp`` launcher starts the other ranks by running the
        training's command again, so the training must be a command of its own
        (``python -m ktrdr_lib.runners.worker``) rather than a spawned function."""
        op_id = context.operation_id
        with start_training_command(job) as (child, connection):
            try:
                encode = msgspec.msgpack.Encoder().encode

                def send(message: ControlMessage) -> None:
                    connection.send_bytes(encode(message))

                with self._forwarding_cancel(token, send, op_id):
                    return self._follow(child, connection, token, tracker)
            finally:
                connection.close()  # rank 0 sees EOF and aborts if still running
                child.join(30.0)
                if child.exitcode is None:
                    log.warning(
                        "operation %s: the training command did not exit; killing it", op_id
                    )
                    child.kill()
                    child.join()
                child.close()

    def _receive(self, process: BaseProcess | CommandChild, results: Connection) -> ChildMessage:
        """One message from the child, at most ``max_message_bytes`` of it (a longer one
        closes the pipe unread); anything unreadable ends the run with the reason."""
        try:
            raw = results.recv_bytes(self.max_message_bytes)
        except (EOFError, ConnectionError):
            raise self._died(process) from None
        except OSError as exc:  # over the cap (multiprocessing: "bad message length")
            process.kill()
            raise TrainingError(
                f"the training process (pid {process.pid}) sent a message of more than "
                f"{self.max_message_bytes:,} bytes ({exc}); it was not read, and the run is "
                "reported failed. The server's log has the run's output."
            ) from exc
        try:
            return self._decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            process.kill()
            raise TrainingError(
                f"the training process (pid {process.pid}) sent a message this process cannot "
                f"read ({exc}; {len(raw):,} bytes), so the run is reported failed. Is the "
                "same ktrdr_lib version installed for both?"
            ) from exc

    @staticmethod
    def _died(process: BaseProcess | CommandChild) -> TrainingError:
        process.join(10.0)
        return TrainingError(
            f"the training process (pid {process.pid}) {exit_description(process.exitcode)} "
            "before it reported a result: it may have run out of memory or been killed. The "
            "server's log has its output; start the training again."
        )
