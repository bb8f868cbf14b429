"""The pending queue is bounded: one run too many is refused, nothing stored (HTTP 429)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import ConfigError, QueueFullError, StateConflictError
from ktrdr_lib.operations.orchestrator import KEEP_ENDED
from ktrdr_lib.runners.base import RunControl
from tests.builders import make_result


class HeldRunner:
    """Runs nothing until released, so later runs wait in the queue."""

    mode = "local"
    can_reattach = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self, context: Any, control: RunControl) -> Any:
        self.release.wait(30)
        return make_result(context.operation_id)


def test_a_full_queue_refuses_the_next_run_and_stores_nothing(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    runner = HeldRunner()
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"),
        runner=runner,
        data_dir=synthetic_data_dir,
        max_concurrent=1,
        max_pending=2,
    )
    try:
        first = orch.start_training(small_strategy_file, epochs=1)
        second = orch.start_training(small_strategy_file, epochs=1)
        third = orch.start_training(small_strategy_file, epochs=1)
        with pytest.raises(QueueFullError, match=r"2 runs already wait .*max_pending 2") as caught:
            orch.start_training(small_strategy_file, epochs=1)
        assert caught.value.retry_after_s > 0
        assert isinstance(caught.value, StateConflictError)
        assert orch.list_operations().total_count == 3
        orch.cancel(third.operation_id)  # a cancelled run no longer waits: room for one
        fourth = orch.start_training(small_strategy_file, epochs=1)
        runner.release.set()
        for handle in (first, second, fourth):
            assert handle.wait(30).status == "completed"
    finally:
        runner.release.set()
        orch.shutdown()


def test_max_pending_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="max_pending must be >= 1"):
        TrainingOrchestrator(store=OperationStore(":memory:"), max_pending=0)
    monkeypatch.setenv("KTRDR_MAX_PENDING", "lots")
    with pytest.raises(ConfigError, match="KTRDR_MAX_PENDING='lots' is not a number"):
        TrainingOrchestrator(store=OperationStore(":memory:"))


def test_ended_operations_leave_the_orchestrators_memory(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    runner = HeldRunner()
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"),
        runner=runner,
        data_dir=synthetic_data_dir,
        max_concurrent=1,
        max_pending=200,
    )
    try:
        running = orch.start_training(small_strategy_file, epochs=1)
        queued = [orch.start_training(small_strategy_file, epochs=1) for _ in range(40)]
        for handle in queued:
            orch.cancel(handle.operation_id)
        for handle in queued:
            assert handle.wait(30).status == "cancelled"  # read back from the store
        runner.release.set()
        assert running.wait(30).status == "completed"
        assert running.result().session_info.operation_id == running.operation_id
        # Of 41 ended runs, memory keeps the last few (for streams that resume) only.
        assert len(orch._live) == KEEP_ENDED
        with pytest.raises(StateConflictError, match="already cancelled"):
            orch.cancel(queued[0].operation_id)
        assert orch.list_operations().total_count == 41
    finally:
        runner.release.set()
        orch.shutdown()
