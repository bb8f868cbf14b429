"""The child's side of a run in another process, and ``python -m ktrdr_lib.runners.worker``.

:class:`~ktrdr_lib.runners.process.ProcessTrainingRunner` starts :func:`child_main` in a
spawned process, or, for runs on several devices, this module as a command:
``python -m ktrdr_lib.runners.worker JOB_FILE ADDRESS``. Lightning's ``ddp`` launcher starts the
other ranks by running the same command again (with ``LOCAL_RANK`` set), which is why the job
travels as a file there. Rank 0 connects back to the parent (``ADDRESS``, authenticated with the
key in ``KTRDR_WORKER_AUTHKEY``) and speaks the same messages as a spawned child; the other
ranks only train: they report nothing, and learn of a cancel through the ranks' agreement in
:class:`~ktrdr_lib.progress.cancel_callback.CancelCallback`.

Wire (two one-way pipes, msgpack-encoded msgspec Structs, never pickled objects)::

    child ──results──▶ parent   snapshot | epoch | result | error   (tagged union)
    parent ──control─▶ child    cancel(graceful, reason)             (EOF: the parent is gone)

The child's tracker publishes into an in-process queue (an O(1) hand-off on the training
thread); a sender thread encodes and writes. An ``error`` carries the error's class names (most
specific first) and detail, so the parent raises the same class. A child whose parent goes away
aborts at its next batch; Ctrl-C in a terminal is the parent's to handle, so the child ignores
SIGINT.
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

from ktrdr_lib.errors import KtrdrError, OperationCancelled, StrategyError, StrategyProblem
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.run import TrainerOptions
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import run_with_progress
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult

__all__ = [
    "AUTHKEY_ENV",
    "CancelMessage",
    "ChildJob",
    "ChildMessage",
    "EpochMessage",
    "ErrorMessage",
    "ResultMessage",
    "SnapshotMessage",
    "child_main",
    "job_from_bytes",
    "main",
]

AUTHKEY_ENV = "KTRDR_WORKER_AUTHKEY"


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


class ErrorMessage(msgspec.Struct, frozen=True, tag="error"):
    kinds: list[str]  # the error's class and its bases, most specific first
    detail: str
    problems: list[StrategyProblem] = msgspec.field(default_factory=list)
    trace: str = ""


ChildMessage = SnapshotMessage | EpochMessage | ResultMessage | ErrorMessage


class CancelMessage(msgspec.Struct, frozen=True, tag="cancel"):
    graceful: bool
    reason: str


def job_from_bytes(payload: bytes) -> ChildJob:
    """Decode a job as the parent encoded it."""
    return msgspec.msgpack.decode(payload, type=ChildJob)


# -- the child ---------------------------------------------------------------------------------


def _error_message(exc: BaseException) -> ErrorMessage:
    kinds = [cls.__name__ for cls in type(exc).__mro__ if issubclass(cls, BaseException)]
    detail = exc.detail if isinstance(exc, KtrdrError) else str(exc)
    problems = list(exc.problems) if isinstance(exc, StrategyError) else []
    trace = "".join(traceback.format_exception(exc))
    return ErrorMessage(kinds=kinds, detail=detail, problems=problems, trace=trace)


def _send_all(outbox: queue.SimpleQueue[ChildMessage | None], results: Connection) -> None:
    """Child sender thread: encode and write every queued message, in order, until None."""
    encoder = msgspec.msgpack.Encoder()
    while (message := outbox.get()) is not None:
        try:
            results.send_bytes(encoder.encode(message))
        except OSError:  # the parent is gone; keep draining so nobody blocks
            continue


def _watch_control(control: Connection, token: CancelToken) -> None:
    """Child watcher thread: turn the parent's cancel messages (or its end) into a cancel."""
    decoder = msgspec.msgpack.Decoder(CancelMessage)
    while True:
        try:
            raw = control.recv_bytes()
        except (EOFError, OSError):
            token.cancel(reason="the process that started this training went away")
            return
        message = decoder.decode(raw)
        token.cancel(graceful=message.graceful, reason=message.reason)


def child_main(
    payload: bytes, results: Connection, control: Connection, callbacks: Sequence[Any]
) -> None:
    """Entry point of the child process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    outbox: queue.SimpleQueue[ChildMessage | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, results), name="ktrdr-child-send")
    sender.start()
    try:
        job = msgspec.msgpack.decode(payload, type=ChildJob)
        token = CancelToken()
        watcher = threading.Thread(
            target=_watch_control, args=(control, token), name="ktrdr-child-cancel", daemon=True
        )
        watcher.start()
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
        outbox.put(ResultMessage(result))
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
    authkey = bytes.fromhex(os.environ[AUTHKEY_ENV])
    connection = Client((host, int(port)), authkey=authkey)
    child_main(payload, connection, connection, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
