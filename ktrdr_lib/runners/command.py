"""A training started as a command of its own, for runs on several devices.

Lightning's ``ddp`` launcher starts the other ranks by running the training's command again,
so a multi-device training must be a command (``python -m ktrdr_lib.runners.worker``) rather
than a spawned function. :func:`start_training_command` starts it with the job in a file,
waits for rank 0 to connect back over an authenticated loopback socket, and yields the child
(shaped like a multiprocessing process) and that connection.

Any local process can connect to that port. Each connection gets its own handshake thread
(``multiprocessing.connection``'s challenge with the run's one-time key), so one that fails the
challenge, or connects and says nothing, is dropped while the wait for rank 0 goes on, until
rank 0 authenticates, the command exits, or the deadline passes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path

import msgspec

from ktrdr_lib.errors import TrainingError
from ktrdr_lib.runners.worker import AUTHKEY_ENV, ChildJob

__all__ = ["CommandChild", "exit_description", "start_training_command"]

log = logging.getLogger(__name__)


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


def _accept(
    server: socket.socket, authkey: bytes, child: CommandChild, timeout: float = 300.0
) -> Connection:
    """Wait for rank 0 to connect back and pass the challenge; drop any other connection and
    keep waiting; fail if the command dies first or ``timeout`` seconds pass."""
    server.settimeout(0.2)
    passed: queue.SimpleQueue[Connection] = queue.SimpleQueue()
    failed: queue.SimpleQueue[Connection] = queue.SimpleQueue()
    handshakes: dict[Connection, threading.Thread] = {}
    winner: Connection | None = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            with contextlib.suppress(queue.Empty):
                winner = passed.get_nowait()
                return winner
            while not failed.empty():  # their threads are done with them
                failed.get_nowait().close()
            if not child.is_alive() or time.monotonic() >= deadline:
                break
            try:
                peer, _ = server.accept()
            except TimeoutError:
                continue
            peer.setblocking(True)
            connection = Connection(peer.detach())
            handshakes[connection] = thread = threading.Thread(
                target=_handshake,
                args=(connection, authkey, passed, failed),
                name=f"ktrdr-cmd-auth-{child.pid}",
                daemon=True,
            )
            thread.start()
    finally:
        for connection, thread in handshakes.items():
            if connection is not winner and not connection.closed:
                if thread.is_alive():  # wake it: it fails, and is closed below
                    _hang_up(connection)
                    thread.join(1.0)
                if not thread.is_alive():
                    connection.close()
    child.kill()
    child.join()
    what = (
        f"{exit_description(child.exitcode)} before it connected back"
        if time.monotonic() < deadline
        else f"did not connect back within {timeout:g} s and was killed"
    )
    raise TrainingError(
        f"the training command (pid {child.pid}) {what}; see the server's log for its output"
    )


def _handshake(
    connection: Connection,
    authkey: bytes,
    passed: queue.SimpleQueue[Connection],
    failed: queue.SimpleQueue[Connection],
) -> None:
    """Thread: the challenge both ways, as ``multiprocessing.connection.Listener`` does; the
    connection goes to ``passed`` or ``failed`` (and this thread touches it no more)."""
    try:
        deliver_challenge(connection, authkey)
        answer_challenge(connection, authkey)
    except (AuthenticationError, EOFError, OSError, ValueError) as exc:
        log.warning(
            "a local connection to a training command's port failed the challenge (%s: %s); "
            "dropped, still waiting for the command",
            type(exc).__name__,
            exc,
        )
        failed.put(connection)
        return
    passed.put(connection)


def _hang_up(connection: Connection) -> None:
    """Shut down the socket under a handshake blocked reading it (the read then ends)."""
    with contextlib.suppress(OSError):
        peer = socket.socket(fileno=os.dup(connection.fileno()))
        with contextlib.closing(peer):
            peer.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def start_training_command(job: ChildJob) -> Iterator[tuple[CommandChild, Connection]]:
    """Start ``python -m ktrdr_lib.runners.worker`` for ``job``; yield it and rank 0's
    connection once it connected back. The job file lives as long as the context."""
    authkey = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="ktrdr-job-") as folder:
        job_file = Path(folder) / "job.msgpack"
        job_file.write_bytes(msgspec.msgpack.encode(job))
        with socket.create_server(("127.0.0.1", 0)) as server:
            host, port = server.getsockname()[:2]
            env = {**os.environ, AUTHKEY_ENV: authkey.hex()}
            env.pop("LOCAL_RANK", None)
            popen = subprocess.Popen(
                [sys.executable, "-m", "ktrdr_lib.runners.worker", str(job_file), f"{host}:{port}"],
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal is the parent's to handle
            )
            child = CommandChild(popen)
            connection = _accept(server, authkey, child)
        yield child, connection
