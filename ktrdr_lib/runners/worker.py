"""The child's side of a run in another process, and ``python -m ktrdr_lib.runners.worker``.

:class:`~ktrdr_lib.runners.process.ProcessTrainingRunner` keeps warm workers: processes
started with ``spawn`` that run :func:`worker_main`. A worker imports torch, Lightning and the
pipeline and trains a tiny sample run once (so its first real run pays no first-call costs),
says ``ready``, then takes jobs from its control pipe one at a time; after ``max_runs`` jobs
(one by default: a fresh process for every run) it exits and the runner starts another. Runs
on several devices are started as a command instead:
``python -m ktrdr_lib.runners.worker JOB_FILE ADDRESS``. Lightning's ``ddp`` launcher starts the
other ranks by running the same command again (with ``LOCAL_RANK`` set), which is why the job
travels as a file there. Rank 0 connects back to the parent (``ADDRESS``, authenticated with the
key in ``KTRDR_WORKER_AUTHKEY``) and speaks the same messages as a worker; the other ranks only
train: they report nothing, and learn of a cancel through the ranks' agreement in
:class:`~ktrdr_lib.progress.cancel_callback.CancelCallback`.

Wire (two one-way pipes, msgpack-encoded msgspec Structs, never pickled objects)::

    worker ──results──▶ parent   ready | snapshot | epoch | result | error   (tagged union)
    parent ──control─▶ worker    job | cancel(operation_id, graceful, reason)
                                 (EOF: the parent is gone)

A cancel names its run, so one that arrives after its run ended never touches the next; one
that arrives right behind its job (before the run began) is honoured at the run's first check.
The worker's tracker publishes into an in-process queue (an O(1) hand-off on the training
thread); a sender thread encodes and writes. A run's last message is its ``result`` or
``error``; both carry when the worker first acted on a cancel (``time.monotonic()``, a
system-wide clock), so the parent's latency figures cover child runs. Before an ``error`` the
worker sends the run's last snapshot, so the parent knows how far the interrupted epoch got.
An ``error`` carries the error's class names (most specific first) and detail, so the parent
raises the same class. A worker whose parent goes away aborts at its next batch; Ctrl-C in a
terminal is the parent's to handle, so workers ignore SIGINT.

A message that cannot be sent (it does not encode, or it is over :data:`MAX_MESSAGE_BYTES`)
is replaced by an ``error`` saying so, and nothing more of the run is sent: the parent ends the
run ``failed`` with that reason instead of waiting for a result that will never come. The
parent reads at most :data:`MAX_MESSAGE_BYTES` a message too.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.errors import (
    KtrdrError,
    OperationCancelled,
    StrategyError,
    StrategyProblem,
    TrainingError,
)
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import run_with_progress
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.settings import read_str

__all__ = [
    "AUTHKEY_ENV",
    "MAX_MESSAGE_BYTES",
    "CancelMessage",
    "ChildJob",
    "ChildMessage",
    "ControlMessage",
    "EpochMessage",
    "ErrorMessage",
    "JobMessage",
    "ReadyMessage",
    "ResultMessage",
    "SnapshotMessage",
    "child_main",
    "job_from_bytes",
    "main",
    "worker_main",
]

AUTHKEY_ENV = "KTRDR_WORKER_AUTHKEY"
MAX_MESSAGE_BYTES = 64 << 20
"""The most one message on a worker's pipe may hold (a result with analytics is far less)."""


class ChildJob(msgspec.Struct, frozen=True, kw_only=True):
    """What the child needs to run (sent once, as the process argument)."""

    context: TrainingOperationContext
    trainer_options: TrainerOptions
    save_model: bool
    min_interval: float
    torch_threads: int | None


class SnapshotMessage(msgspec.Struct, frozen=True, tag="snapshot"):
    snapshot: ProgressSnapshot


class EpochMessage(msgspec.Struct, frozen=True, tag="epoch"):
    row: EpochHistoryRow


class ResultMessage(msgspec.Struct, frozen=True, tag="result"):
    result: TrainingResult
    cancel_observed_at: float | None = None


class ErrorMessage(msgspec.Struct, frozen=True, tag="error"):
    kinds: list[str]  # the error's class and its bases, most specific first
    detail: str
    problems: list[StrategyProblem] = msgspec.field(default_factory=list)
    trace: str = ""
    cancel_observed_at: float | None = None


class ReadyMessage(msgspec.Struct, frozen=True, tag="ready"):
    """A worker finished warming up and waits for a job."""

    pid: int
    warm_up_s: float


ChildMessage = SnapshotMessage | EpochMessage | ResultMessage | ErrorMessage | ReadyMessage


class JobMessage(msgspec.Struct, frozen=True, tag="job"):
    job: ChildJob


class CancelMessage(msgspec.Struct, frozen=True, tag="cancel"):
    graceful: bool
    reason: str
    operation_id: str = ""  # the run it is for ("": whatever runs now)


ControlMessage = JobMessage | CancelMessage


def job_from_bytes(payload: bytes) -> ChildJob:
    """Decode a job as the parent encoded it."""
    return msgspec.msgpack.decode(payload, type=ChildJob)


# -- the child ---------------------------------------------------------------------------------


def _error_message(exc: BaseException, observed_at: float | None = None) -> ErrorMessage:
    kinds = [cls.__name__ for cls in type(exc).__mro__ if issubclass(cls, BaseException)]
    detail = exc.detail if isinstance(exc, KtrdrError) else str(exc)
    problems = list(exc.problems) if isinstance(exc, StrategyError) else []
    trace = "".join(traceback.format_exception(exc))
    return ErrorMessage(
        kinds=kinds, detail=detail, problems=problems, trace=trace, cancel_observed_at=observed_at
    )


Outbox = queue.SimpleQueue[ChildMessage | None]


def _send_all(outbox: Outbox, results: Connection, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Sender thread: encode and write every queued message, in order, until None.

    A message that cannot be sent becomes an ``error`` naming why, and the messages after it
    are dropped (the parent ended the run on that error). Never raises: a sender that died
    would leave the parent waiting for a result.
    """
    encoder = msgspec.msgpack.Encoder()
    failed = False
    while (message := outbox.get()) is not None:
        if failed:
            continue  # keep draining so nobody blocks
        try:
            payload = encoder.encode(message)
            if len(payload) > max_bytes:
                raise ValueError(
                    f"it is {len(payload):,} bytes, more than the {max_bytes:,} a message on "
                    "the pipe may hold"
                )
            results.send_bytes(payload)
        except OSError:  # the parent is gone; keep draining so nobody blocks
            continue
        except Exception as exc:
            failed = True
            with contextlib.suppress(OSError):
                results.send_bytes(encoder.encode(_unsent(message, exc)))


def _unsent(message: ChildMessage, exc: Exception) -> ErrorMessage:
    """The error that replaces a message that could not be sent (small enough to send)."""
    kind = type(message).__name__.removesuffix("Message").lower()
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    observed = getattr(message, "cancel_observed_at", None)
    if isinstance(message, ErrorMessage):  # the run's own error: keep its class and gist
        return ErrorMessage(
            kinds=message.kinds,
            detail=f"{message.detail[:4000]} (the full error could not be sent: {reason})",
            cancel_observed_at=observed,
        )
    return ErrorMessage(
        kinds=[cls.__name__ for cls in TrainingError.__mro__ if cls is not object],
        detail=(
            f"the training process could not send its {kind} to this process ({reason}), so "
            "the run is reported failed. The server's log has the run's output; report it as "
            "a bug if it happens again."
        ),
        cancel_observed_at=observed,
    )


def _run_job(job: ChildJob, token: CancelToken, outbox: Outbox, callbacks: Sequence[Any]) -> None:
    """Run one job; its progress, then its result or error, go to ``outbox`` (never raises)."""
    tracker: ProgressTracker | None = None
    try:
        if job.torch_threads is not None:
            import torch

            torch.set_num_threads(job.torch_threads)
        tracker = ProgressTracker(
            job.context.operation_id,
            total_epochs=job.context.total_epochs,
            publish=lambda snap: outbox.put(SnapshotMessage(snap)),
            on_epoch=lambda row: outbox.put(EpochMessage(row)),
            min_interval=job.min_interval,
        )
        result = run_with_progress(
            job.context,
            token=token,
            tracker=tracker,
            trainer_options=job.trainer_options,
            save_model=job.save_model,
            callbacks=callbacks,
        )
        outbox.put(ResultMessage(result, cancel_observed_at=token.observed_at))
    except BaseException as exc:
        if tracker is not None:  # where it stopped (the last throttled snapshot may be older)
            outbox.put(SnapshotMessage(tracker.snapshot()))
        outbox.put(_error_message(exc, token.observed_at))


class _Tokens:
    """The cancel tokens of the jobs a worker was handed, by operation id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, CancelToken] = {}

    def new(self, operation_id: str) -> CancelToken:
        with self._lock:
            token = self._tokens[operation_id] = CancelToken()
            return token

    def cancel(self, message: CancelMessage) -> None:
        with self._lock:
            tokens = (
                list(self._tokens.values())
                if not message.operation_id
                else [self._tokens[message.operation_id]]
                if message.operation_id in self._tokens
                else []
            )
        for token in tokens:  # a cancel for a run that ended (or never came) touches nothing
            token.cancel(graceful=message.graceful, reason=message.reason)

    def cancel_all(self, reason: str) -> None:
        with self._lock:
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel(reason=reason)

    def done(self, operation_id: str) -> None:
        with self._lock:
            self._tokens.pop(operation_id, None)


_PARENT_GONE = "the process that started this training went away"


def _read_control(
    control: Connection,
    jobs: queue.SimpleQueue[tuple[ChildJob, CancelToken] | None],
    tokens: _Tokens,
) -> None:
    """Control thread: jobs to the queue (each with its own token), cancels to their token;
    EOF (the parent is gone) aborts whatever runs and ends the worker."""
    decoder = msgspec.msgpack.Decoder(ControlMessage)
    while True:
        try:
            message = decoder.decode(control.recv_bytes())
        except (EOFError, OSError):
            tokens.cancel_all(_PARENT_GONE)
            jobs.put(None)
            return
        if isinstance(message, JobMessage):
            job = message.job
            jobs.put((job, tokens.new(job.context.operation_id)))
        else:
            tokens.cancel(message)


def _warm_up() -> None:
    """Import what a run needs and train a tiny sample run once, so the first real run in
    this process starts as fast as a run in a process that trained before. A failure here
    only costs speed: the worker still takes jobs."""
    import logging

    try:
        import torch

        from ktrdr_lib.pipeline.context import build_training_context
        from ktrdr_lib.pipeline.run import run_training_pipeline

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            context = build_training_context("rsi_mean_reversion", epochs=1)
            run_training_pipeline(context, save_model=False)
        finally:
            torch.set_num_threads(threads)
    except Exception:
        logging.getLogger(__name__).debug("worker warm-up failed", exc_info=True)


def worker_main(
    results: Connection,
    control: Connection,
    callbacks: Sequence[Any],
    max_runs: int = 1,
    warm_up: bool = True,
) -> None:
    """Entry point of a warm worker process (see the module)."""
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    outbox: Outbox = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, results), name="ktrdr-worker-send")
    sender.start()
    jobs: queue.SimpleQueue[tuple[ChildJob, CancelToken] | None] = queue.SimpleQueue()
    tokens = _Tokens()
    reader = threading.Thread(
        target=_read_control, args=(control, jobs, tokens), name="ktrdr-worker-control", daemon=True
    )
    reader.start()
    try:
        started = time.monotonic()
        if warm_up:
            _warm_up()
        outbox.put(ReadyMessage(pid=os.getpid(), warm_up_s=round(time.monotonic() - started, 3)))
        for _ in range(max_runs):
            item = jobs.get()
            if item is None:
                break
            job, token = item
            try:
                _run_job(job, token, outbox, callbacks)
            finally:
                tokens.done(job.context.operation_id)
    finally:
        outbox.put(None)
        sender.join()
        results.close()


def child_main(
    payload: bytes, results: Connection, control: Connection, callbacks: Sequence[Any]
) -> None:
    """Rank 0 of a training started as a command: run the one job in ``payload``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    outbox: Outbox = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, results), name="ktrdr-child-send")
    sender.start()
    try:
        job = msgspec.msgpack.decode(payload, type=ChildJob)
        jobs: queue.SimpleQueue[tuple[ChildJob, CancelToken] | None] = queue.SimpleQueue()
        tokens = _Tokens()
        token = tokens.new(job.context.operation_id)
        reader = threading.Thread(
            target=_read_control,
            args=(control, jobs, tokens),
            name="ktrdr-child-control",
            daemon=True,
        )
        reader.start()
        _run_job(job, token, outbox, callbacks)
    except BaseException as exc:
        outbox.put(_error_message(exc))
    finally:
        outbox.put(None)
        sender.join()
        results.close()


def _other_rank(payload: bytes) -> None:
    job = job_from_bytes(payload)
    tracker = ProgressTracker(
        job.context.operation_id,
        total_epochs=job.context.total_epochs,
        publish=lambda snap: None,
        min_interval=job.min_interval,
    )
    with contextlib.suppress(OperationCancelled):  # rank 0 reports the cancel
        run_with_progress(
            job.context,
            token=CancelToken(),
            tracker=tracker,
            trainer_options=job.trainer_options,
            save_model=job.save_model,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; rank 0 reports to the parent at ``ADDRESS`` (``host:port``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m ktrdr_lib.runners.worker JOB_FILE HOST:PORT\n")
        return 2
    payload = Path(args[0]).read_bytes()
    if os.environ.get("LOCAL_RANK", "0") != "0":
        _other_rank(payload)
        return 0
    host, _, port = args[1].rpartition(":")
    key = read_str(AUTHKEY_ENV)
    if key is None:
        sys.stderr.write(f"{AUTHKEY_ENV} is not set: this command is started by ktrdr itself\n")
        return 2
    authkey = bytes.fromhex(key)
    connection = Client((host, int(port)), authkey=authkey)
    child_main(payload, connection, connection, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
