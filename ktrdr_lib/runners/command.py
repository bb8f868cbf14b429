"""A training started as a command of its own, for runs on several devices.

Lightning's ``ddp`` launcher starts the other ranks by running the training's command again,
so a multi-device training must be a command (``python -m ktrdr_lib.runners.worker``) rather
than a spawned function. :func:`start_training_command` starts it with the job in a file,
waits for rank 0 to connect back over an authenticated loopback socket, and yields the child
(shaped like a multiprocessing process) and that connection.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, Listener
from pathlib import Path

import msgspec

from ktrdr_lib.errors import TrainingError
from ktrdr_lib.runners.worker import AUTHKEY_ENV, ChildJob

__all__ = ["CommandChild", "exit_description", "start_training_command"]


def exit_description(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (exit code {code})"
    return f"exited with code {code}"


class CommandChild:
    """A training started as a command, shaped like a multiprocessing process for ``_follow``."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        reader, writer = os.pipe()
        self._wake = writer
        self.sentinel = reader  # readable once the watcher sees the command exit
        self._watcher = threading.Thread(
            target=self._watch, name=f"ktrdr-cmd-{popen.pid}", daemon=True
        )
        self._watcher.start()

    def _watch(self) -> None:
        self.popen.wait()
        with contextlib.suppress(OSError):
            os.write(self._wake, b"x")

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # rank 0 and the ranks it launched

    def close(self) -> None:
        """Release the wake-up pipe once the command has exited and the watcher wrote to it
        (closing earlier could let the watcher write into a reused descriptor)."""
        self._watcher.join()
        for fd in (self.sentinel, self._wake):
            with contextlib.suppress(OSError):
                os.close(fd)


def _accept(listener: Listener, child: CommandChild, timeout: float = 300.0) -> Connection:
    """Wait for rank 0 to connect back; fail if the command dies first."""
    accepted: list[Connection] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and child.is_alive() and time.monotonic() < deadline:
        thread.join(0.2)
    if not accepted:
        child.kill()
        child.join()
        raise TrainingError(
            f"the training command (pid {child.pid}) {exit_description(child.exitcode)} "
            "before it connected back; see the server's log for its output"
        )
    return accepted[0]


@contextlib.contextmanager
def start_training_command(job: ChildJob) -> Iterator[tuple[CommandChild, Connection]]:
    """Start ``python -m ktrdr_lib.runners.worker`` for ``job``; yield it and rank 0's
    connection once it connected back. The job file lives as long as the context."""
    authkey = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="ktrdr-job-") as folder:
        job_file = Path(folder) / "job.msgpack"
        job_file.write_bytes(msgspec.msgpack.encode(job))
        with Listener(("127.0.0.1", 0), authkey=authkey) as listener:
            host, port = listener.address
            env = {**os.environ, AUTHKEY_ENV: authkey.hex()}
            env.pop("LOCAL_RANK", None)
            popen = subprocess.Popen(
                [sys.executable, "-m", "ktrdr_lib.runners.worker", str(job_file), f"{host}:{port}"],
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal is the parent's to handle
            )
            child = CommandChild(popen)
            connection = _accept(listener, child)
        yield child, connection
