"""The rendezvous of a training started as a command: rank 0 connects back to an authenticated
loopback port that any local process can reach.

The "command" is a real idle process (a training command would pay seconds of imports), and
the peers are real sockets: rogues connect first, then rank 0 with the key.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, answer_challenge

import pytest

from ktrdr_lib.errors import TrainingError
from ktrdr_lib.runners.command import CommandChild, _accept


def _command(code: str) -> CommandChild:
    popen = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return CommandChild(popen)


@pytest.fixture
def child() -> Iterator[CommandChild]:
    process = _command("import time; time.sleep(120)")
    yield process
    process.kill()
    process.join()
    process.close()


@pytest.fixture
def server() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        yield listening


def _wrong_key(address: tuple[str, int], errors: list[BaseException]) -> threading.Thread:
    """A peer that connects now (so it is ahead in the queue) and answers with a wrong key."""
    peer = Connection(socket.create_connection(address).detach())

    def answer() -> None:
        try:
            answer_challenge(peer, b"not the key")
        except (AuthenticationError, EOFError, OSError) as exc:
            errors.append(exc)
        finally:
            peer.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_rank_zero_gets_through_after_rogue_connections(
    child: CommandChild, server: socket.socket
) -> None:
    address = server.getsockname()[:2]
    key = secrets.token_bytes(32)
    socket.create_connection(address).close()  # connects and hangs up at once
    garbage = socket.create_connection(address)
    garbage.sendall(b"GET / HTTP/1.1\r\n\r\n" * 100)
    errors: list[BaseException] = []
    rogue = _wrong_key(address, errors)
    silent = socket.create_connection(address)  # connects and never says a word

    rank_zero: list[Connection] = []
    thread = threading.Thread(target=lambda: rank_zero.append(Client(address, authkey=key)))
    thread.start()
    accepted = _accept(server, key, child, timeout=60)
    thread.join(10)
    rank_zero[0].send_bytes(b"ready")
    assert accepted.recv_bytes() == b"ready"
    accepted.send_bytes(b"job")
    assert rank_zero[0].recv_bytes() == b"job"

    rogue.join(10)
    assert len(errors) == 1 and isinstance(errors[0], AuthenticationError)
    silent.settimeout(10)
    while silent.recv(4096):  # the challenge it never answered, then the hang-up
        pass
    assert child.is_alive()  # a rogue costs the command nothing
    for connection in (accepted, rank_zero[0]):
        connection.close()
    garbage.close()
    silent.close()


def test_only_rogues_until_the_deadline_fail_the_run_and_kill_the_command(
    child: CommandChild, server: socket.socket
) -> None:
    address = server.getsockname()[:2]
    silent = socket.create_connection(address)
    with pytest.raises(TrainingError, match=r"did not connect back within 0\.5 s and was killed"):
        _accept(server, secrets.token_bytes(32), child, timeout=0.5)
    child.join(10)
    assert child.exitcode == -9
    silent.close()


def test_a_command_that_dies_before_connecting_fails_the_run(server: socket.socket) -> None:
    died = _command("raise SystemExit(3)")
    try:
        with pytest.raises(TrainingError, match="exited with code 3 before it connected back"):
            _accept(server, secrets.token_bytes(32), died, timeout=60)
    finally:
        died.close()
