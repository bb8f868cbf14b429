"""``python -m ktrdr_lib.train_worker JOB_FILE ADDRESS``: one training, started as a command.

:class:`~ktrdr_lib.process_runner.ProcessTrainingRunner` starts this module for runs on several
devices. Lightning's ``ddp`` launcher starts the other ranks by running the same command again
(with ``LOCAL_RANK`` set), which is why the job travels as a file and not as a process
argument. Rank 0 connects back to the parent (``ADDRESS``, authenticated with the key in
``KTRDR_WORKER_AUTHKEY``) and speaks the same messages as a spawned child; the other ranks only
train: they report nothing, and learn of a cancel through the ranks' agreement in
:class:`~ktrdr_lib.cancellation.CancelCallback`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from multiprocessing.connection import Client
from pathlib import Path

from ktrdr_lib.errors import OperationCancelled

__all__ = ["AUTHKEY_ENV", "main"]

AUTHKEY_ENV = "KTRDR_WORKER_AUTHKEY"


def _other_rank(payload: bytes) -> None:
    from ktrdr_lib.cancellation import CancelToken
    from ktrdr_lib.pipeline import run_training_pipeline
    from ktrdr_lib.process_runner import job_from_bytes
    from ktrdr_lib.progress import ProgressTracker
    from ktrdr_lib.progress_bridge import ProgressBridge

    job = job_from_bytes(payload)
    tracker = ProgressTracker(
        job.context.operation_id,
        total_epochs=job.context.total_epochs,
        publish=lambda snap: None,
        min_interval=job.min_interval,
    )
    with contextlib.suppress(OperationCancelled):  # rank 0 reports the cancel
        run_training_pipeline(
            job.context,
            observer=tracker,
            token=CancelToken(),
            callbacks=[ProgressBridge(tracker)],
            trainer_options=job.trainer_options,
            save_model=job.save_model,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; rank 0 reports to the parent at ``ADDRESS`` (``host:port``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m ktrdr_lib.train_worker JOB_FILE HOST:PORT\n")
        return 2
    payload = Path(args[0]).read_bytes()
    if os.environ.get("LOCAL_RANK", "0") != "0":
        _other_rank(payload)
        return 0
    from ktrdr_lib.process_runner import _child_main

    host, _, port = args[1].rpartition(":")
    authkey = bytes.fromhex(os.environ[AUTHKEY_ENV])
    connection = Client((host, int(port)), authkey=authkey)
    _child_main(payload, connection, connection, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
