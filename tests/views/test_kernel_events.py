"""Waits that pump the caller's events, and when the kernel pump can (not) be installed.

The real thing (a kernel, a click while a cell waits) is tested in
``tests/integration/test_notebooks.py``; here a recording pump shows what waits do with one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from ktrdr_lib.operations.waiting import PumpSession, set_event_pump, wait_for, wait_until
from ktrdr_lib.views.kernel_events import kernel_pump_problem


class RecordingPump:
    """Counts sessions and rounds; a round may run a callback (a "click")."""

    def __init__(self, on_round: Callable[[int], None] = lambda _n: None) -> None:
        self.sessions = 0
        self.rounds = 0
        self.on_round = on_round

    def __call__(self) -> PumpSession | None:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[Callable[[], None]]:
        self.sessions += 1

        def handle() -> None:
            self.rounds += 1
            self.on_round(self.rounds)

        yield handle


@pytest.fixture
def pump() -> Iterator[RecordingPump]:
    recording = RecordingPump()
    previous = set_event_pump(recording)
    yield recording
    set_event_pump(previous)


def test_a_wait_pumps_events_between_slices_and_a_click_can_end_it(pump: RecordingPump) -> None:
    done = threading.Event()
    pump.on_round = lambda n: done.set() if n == 3 else None  # the third round "clicks"
    assert wait_for(done, timeout=30)
    assert pump.sessions == 1 and pump.rounds == 3


def test_a_pumped_wait_still_times_out(pump: RecordingPump) -> None:
    assert not wait_for(threading.Event(), timeout=0.2)
    assert pump.rounds >= 2
    asked: list[int] = []
    assert not wait_until(lambda: bool(asked.append(1)), timeout=0.3, every=0.1)
    assert 2 <= len(asked) <= 5  # every 0.1 s, not every slice


def test_other_threads_and_waits_inside_the_pump_block_plainly(pump: RecordingPump) -> None:
    done = threading.Event()
    done.set()
    inner: list[bool] = []
    pump.on_round = lambda n: inner.append(wait_for(done, timeout=1)) if n == 1 else None
    outer = threading.Event()
    threading.Timer(0.2, outer.set).start()
    assert wait_for(outer, timeout=30)
    assert inner == [True] and pump.sessions == 1  # the inner wait opened no session

    rounds = pump.rounds
    other = threading.Thread(target=wait_for, args=(threading.Event(), 0.2))
    other.start()
    other.join()
    assert pump.rounds == rounds  # registered on this thread: the other one did not pump


def test_without_a_pump_a_wait_just_blocks() -> None:
    previous = set_event_pump(None)
    try:
        done = threading.Event()
        threading.Timer(0.1, done.set).start()
        assert wait_for(done, timeout=30)
    finally:
        set_event_pump(previous)


def test_the_kernel_pump_says_why_it_cannot_work() -> None:
    assert kernel_pump_problem(None) == "not running in a Jupyter kernel"
    pytest.importorskip("jupyter_ui_poll")
    seven = SimpleNamespace(kernel=SimpleNamespace(shell_channel_thread=object()))
    assert "ipykernel<7" in (kernel_pump_problem(seven) or "")
    six = SimpleNamespace(
        kernel=SimpleNamespace(shell_channel_thread=None, do_one_iteration=lambda: None)
    )
    assert kernel_pump_problem(six) is None
