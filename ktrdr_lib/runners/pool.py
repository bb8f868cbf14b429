"""Warm training workers: child processes that imported torch and Lightning before a run needs them.

A run in a fresh ``spawn`` child pays the child's start-up (interpreter, torch, Lightning, the
pipeline's first calls: seconds) before its first batch, and a cancel in that time has nothing
to stop. :class:`WorkerPool` keeps up to ``size`` idle workers that have paid it
(:func:`~ktrdr_lib.runners.worker.worker_main` warms up, then says ``ready``). A run takes one;
when it ends the worker goes back to the pool if it may run again (``runs_per_worker``) and
its run went well, otherwise it is retired and a replacement starts at once, so the next run
finds one warm. Replacements start when a run ends, not when it begins, so a warming worker
does not compete with a run's first batches for the CPU.

Idle workers hold nothing: :meth:`WorkerPool.close` (and interpreter exit) kills them, and a
worker retired after a run exits when its control pipe closes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec

from ktrdr_lib.errors import OperationCancelled, TrainingError
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.runners.worker import ChildMessage, ControlMessage, ReadyMessage, worker_main

__all__ = ["WorkerPool", "WorkerProcess"]

log = logging.getLogger(__name__)

_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    """At exit: idle workers are killed, busy ones see their control pipe close and abort at
    their next batch, before multiprocessing's own exit handler joins them."""
    for pool in list(_POOLS):
        pool.close(abort_busy=True)


class WorkerProcess:
    """One worker: its process and the parent's ends of its two pipes."""

    def __init__(
        self,
        context: SpawnContext | ForkServerContext,
        *,
        callbacks: Sequence[Any],
        max_runs: int,
        warm_up: bool,
    ) -> None:
        self.results, results_out = context.Pipe(duplex=False)
        control_in, self.control = context.Pipe(duplex=False)
        self.process: BaseProcess = context.Process(
            target=worker_main,
            args=(results_out, control_in, list(callbacks), max_runs, warm_up),
            name="ktrdr-train-worker",
        )
        self.process.start()
        results_out.close()  # the parent keeps only its own ends: EOF means the worker is gone
        control_in.close()
        self.max_runs = max_runs
        self.runs = 0
        self.ready = False
        self.warm_up_s: float | None = None
        self._decode = msgspec.msgpack.Decoder(ChildMessage).decode
        self._encode = msgspec.msgpack.Encoder().encode
        self._send_lock = threading.Lock()
        self._read_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """Whether the worker said ``ready`` (waits up to ``timeout`` for it)."""
        if self.ready:
            return True
        with self._read_lock:
            if self.ready:
                return True
            try:
                if not self.results.poll(timeout):
                    return False
                message = self._decode(self.results.recv_bytes())
            except (EOFError, OSError):
                return False
        if not isinstance(message, ReadyMessage):
            raise TrainingError(
                f"training worker (pid {self.pid}) spoke before it was ready: "
                f"{type(message).__name__}; this is a bug"
            )
        self.ready = True
        self.warm_up_s = message.warm_up_s
        return True

    def send(self, message: ControlMessage) -> None:
        """Write one control message (thread-safe; OSError when the worker is gone)."""
        with self._send_lock:
            self.control.send_bytes(self._encode(message))

    def retire(self, *, kill: bool = False) -> None:
        """Close the pipes (the worker exits at EOF) and reap it in the background."""
        with contextlib.suppress(OSError):
            self.control.close()
        if kill and self.process.is_alive():
            self.process.kill()
        threading.Thread(target=self._reap, name=f"ktrdr-reap-{self.pid}", daemon=True).start()

    def _reap(self) -> None:
        self.process.join(30.0)
        if self.process.exitcode is None:
            log.warning("training worker %s did not exit; killing it", self.pid)
            self.process.kill()
            self.process.join()
        with contextlib.suppress(OSError):
            self.results.close()


class WorkerPool:
    """Keeps up to ``size`` warm idle workers (see the module).

    Args:
        context: the multiprocessing context (``spawn`` or ``forkserver``).
        size: idle warm workers to keep (0: none; every run starts its own).
        callbacks: extra Lightning callbacks, pickled into every worker.
        runs_per_worker: runs a worker serves before it is replaced.
        warm_up: whether workers train a tiny sample run before saying ready.
    """

    def __init__(
        self,
        context: SpawnContext | ForkServerContext,
        *,
        size: int,
        callbacks: Sequence[Any],
        runs_per_worker: int,
        warm_up: bool = True,
    ) -> None:
        self._context = context
        self.size = size
        self.callbacks = list(callbacks)
        self.runs_per_worker = runs_per_worker
        self.warm_up = warm_up
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._closed = False
        _POOLS.add(self)

    def _spawn(self) -> WorkerProcess:
        return WorkerProcess(
            self._context,
            callbacks=self.callbacks,
            max_runs=self.runs_per_worker,
            warm_up=self.warm_up,
        )

    def fill(self) -> None:
        """Start workers until ``size`` are idle (or warming up)."""
        with self._lock:
            if self._closed:
                return
            self._idle = [worker for worker in self._idle if worker.alive()]
            while len(self._idle) < self.size:
                self._idle.append(self._spawn())

    @property
    def idle(self) -> int:
        """Idle workers (ready or warming up)."""
        with self._lock:
            return len(self._idle)

    def take(
        self, token: CancelToken, *, on_wait: Callable[[], None] | None = None
    ) -> WorkerProcess:
        """A ready worker for one run.

        Prefers an idle worker that is ready, then one still warming up; starts one when none
        is idle. Waiting for a worker to come up honours an abort at once (raises
        :class:`OperationCancelled`; the worker stays in the pool for the next run).
        ``on_wait`` is called once if the run has to wait.

        Raises:
            OperationCancelled: aborted while waiting.
            TrainingError: workers keep dying before they are ready.
        """
        for _attempt in range(3):
            worker = self._choose()
            waited = False
            while not worker.poll_ready(0.02):
                if not worker.alive() and not worker.poll_ready(0.0):
                    break
                if token.aborting:
                    token.mark_observed()
                    self._keep_or_retire(worker)
                    raise OperationCancelled(token.reason or "cancelled")
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
            else:
                return worker
            code = worker.process.exitcode
            log.warning("training worker %s died before it was ready (exit %s)", worker.pid, code)
            with self._lock:
                self._busy.discard(worker)
            worker.retire()
        raise TrainingError(
            "training workers keep dying before they are ready (three in a row); the server's "
            "log has their output. Check memory and the installation, then start again."
        )

    def _choose(self) -> WorkerProcess:
        with self._lock:
            if self._closed:
                raise TrainingError("this runner is closed; create a new one to train")
            self._idle = [worker for worker in self._idle if worker.alive()]
            ready = [worker for worker in self._idle if worker.poll_ready(0.0)]
            chosen = ready[0] if ready else self._idle[0] if self._idle else None
            if chosen is None:
                chosen = self._spawn()
            else:
                self._idle.remove(chosen)
            self._busy.add(chosen)
            return chosen

    def _keep_or_retire(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not self._closed and worker.runs == 0 and len(self._idle) < self.size:
                self._idle.append(worker)
                return
        worker.retire(kill=worker.runs == 0)

    def give_back(self, worker: WorkerProcess, *, reusable: bool) -> None:
        """A run on ``worker`` ended: keep it for another run or retire it, then refill."""
        worker.runs += 1
        with self._lock:
            self._busy.discard(worker)
            keep = (
                reusable
                and not self._closed
                and worker.runs < worker.max_runs
                and worker.alive()
                and len(self._idle) < self.size
            )
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.retire()
        self.fill()

    def close(self, *, abort_busy: bool = False) -> None:
        """Kill the idle workers (they hold nothing) and start no more; with ``abort_busy``,
        also close the busy ones' control pipes (they abort their run at the next batch)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy) if abort_busy else []
        for worker in idle:
            worker.retire(kill=True)
        for worker in busy:
            with contextlib.suppress(OSError):
                worker.control.close()

    def wait_ready(self, timeout: float) -> bool:
        """Block until every idle worker is ready (or ``timeout``); True when they are."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = list(self._idle)
            if all(worker.poll_ready(0.0) for worker in idle) and len(idle) >= self.size:
                return True
            time.sleep(0.02)
        return False
