"""The child-process pipe: a message that cannot be sent ends the run failed with the reason.

The sender (:func:`~ktrdr_lib.runners.worker._send_all`) and the parent's follower
(``ProcessTrainingRunner._follow``) run here on a real pipe; the "child" whose death the
follower also watches is a real sleeping process, so no test pays a training child's start-up.
"""

from __future__ import annotations

import multiprocessing
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection

import msgspec
import pytest

from ktrdr_lib.errors import DataError, TrainingError
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.command import CommandChild
from ktrdr_lib.runners.process import ProcessTrainingRunner
from ktrdr_lib.runners.worker import (
    ChildMessage,
    ErrorMessage,
    Outbox,
    ResultMessage,
    SnapshotMessage,
    _error_message,
    _send_all,
)
from ktrdr_lib.schemas.progress import ProgressSnapshot
from tests.builders import make_result

SNAPSHOT = SnapshotMessage(ProgressSnapshot(operation_id="op", sequence=1, status="running"))
decode = msgspec.msgpack.Decoder(ChildMessage).decode


def _sent(messages: list[ChildMessage], **options: int) -> list[ChildMessage]:
    """What the sender writes for ``messages`` (then the end of the run)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    outbox: Outbox = queue.SimpleQueue()
    for message in [*messages, None]:
        outbox.put(message)
    _send_all(outbox, writer, **options)
    writer.close()
    received = []
    while reader.poll():
        try:
            received.append(decode(reader.recv_bytes()))
        except EOFError:
            break
    return received


def _unencodable_result() -> ResultMessage:
    # an object msgpack cannot encode where a result holds data (e.g. a numpy scalar)
    result = msgspec.structs.replace(make_result(), data_summary=object())  # type: ignore[arg-type]
    return ResultMessage(result, cancel_observed_at=12.5)


def test_a_result_that_cannot_be_encoded_is_sent_as_an_error_with_the_reason() -> None:
    received = _sent([SNAPSHOT, _unencodable_result(), SNAPSHOT])
    assert received[0] == SNAPSHOT
    assert len(received) == 2  # nothing of the run after the failure
    error = received[1]
    assert isinstance(error, ErrorMessage)
    assert error.kinds[0] == "TrainingError"
    assert "could not send its result to this process (TypeError: " in error.detail
    assert "object" in error.detail
    assert error.cancel_observed_at == 12.5


def test_a_message_over_the_cap_is_not_sent_but_named() -> None:
    received = _sent([ResultMessage(make_result())], max_bytes=64)
    assert len(received) == 1 and isinstance(received[0], ErrorMessage)
    assert "more than the 64 a message on the pipe may hold" in received[0].detail


def test_an_error_too_big_to_send_keeps_its_class_and_gist() -> None:
    error = _error_message(DataError("no bars for NOPE 1h" + " and more" * 100))
    received = _sent([error], max_bytes=512)
    assert len(received) == 1 and isinstance(received[0], ErrorMessage)
    assert received[0].kinds == error.kinds
    assert received[0].detail.startswith("no bars for NOPE 1h")
    assert "the full error could not be sent: ValueError: it is " in received[0].detail


@pytest.fixture
def child() -> Iterator[CommandChild]:
    """A real, idle process standing in for the training child."""
    popen = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    process = CommandChild(popen)
    yield process
    process.kill()
    process.join()
    process.close()


def _follow(child: CommandChild, reader: Connection, runner: ProcessTrainingRunner) -> None:
    tracker = ProgressTracker("op", total_epochs=1, publish=lambda snap: None)
    runner._follow(child, reader, CancelToken(), tracker)


def test_the_parent_ends_the_run_failed_when_the_child_could_not_send_its_result(
    child: CommandChild,
) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    outbox: Outbox = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, writer))
    sender.start()
    outbox.put(SNAPSHOT)
    outbox.put(_unencodable_result())
    outbox.put(None)
    try:
        with pytest.raises(TrainingError, match="could not send its result to this process"):
            _follow(child, reader, ProcessTrainingRunner(warm_workers=0))
    finally:
        sender.join()
        writer.close()
        reader.close()


def test_the_parent_reads_no_message_over_its_cap(child: CommandChild) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    runner = ProcessTrainingRunner(warm_workers=0)
    runner.max_message_bytes = 1024
    writer.send_bytes(b"x" * 4096)
    with pytest.raises(TrainingError, match="sent a message of more than 1,024 bytes"):
        _follow(child, reader, runner)
    child.join(10)
    assert child.exitcode == -9  # the run is over: its child is not left running
    writer.close()


def test_the_parent_fails_the_run_on_a_message_it_cannot_read(child: CommandChild) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    writer.send_bytes(b"\xc1 not msgpack")
    with pytest.raises(TrainingError, match="sent a message this process cannot read"):
        _follow(child, reader, ProcessTrainingRunner(warm_workers=0))
    writer.close()
