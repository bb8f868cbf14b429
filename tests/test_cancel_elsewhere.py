"""A cancel from another process: carried through the shared store, honoured within a second
by the process that runs the operation."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.runners.base import RunControl
from tests.builders import make_result


class UntilCancelled:
    """Runs until its token is set, like a training between two batches; records when."""

    mode = "local"
    can_reattach = False

    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped_at: float | None = None

    def run(self, context: Any, control: RunControl) -> Any:
        from ktrdr_lib.errors import OperationCancelled

        self.started.set()
        while not control.token.is_set:
            time.sleep(0.01)
        self.stopped_at = time.monotonic()
        control.token.mark_observed()
        if control.token.graceful:
            return make_result(context.operation_id)
        raise OperationCancelled(control.token.reason or "cancelled")


@pytest.fixture
def owner(tmp_path: Path, synthetic_data_dir: Path) -> Any:
    runner = UntilCancelled()
    orch = TrainingOrchestrator(
        store=OperationStore(tmp_path / "operations.db"),
        runner=runner,
        data_dir=synthetic_data_dir,
        max_concurrent=1,
    )
    yield orch, runner
    orch.shutdown(cancel_running=True)


@pytest.mark.parametrize("graceful", [False, True])
def test_a_run_is_cancelled_by_another_orchestrator_on_the_same_store(
    owner: Any, tmp_path: Path, small_strategy_file: Path, graceful: bool
) -> None:
    orch, runner = owner
    running = orch.start_training(small_strategy_file, epochs=1)
    queued = orch.start_training(small_strategy_file, epochs=1)
    assert runner.started.wait(10)
    other = TrainingOrchestrator(store=OperationStore(tmp_path / "operations.db"))
    try:
        queued_record = other.cancel(queued.operation_id, reason="not this one either")
        assert queued_record.status == "cancelled"  # a queued run: at once
        record = other.cancel(running.operation_id, graceful=graceful, reason="from the terminal")
        assert record.status == "cancelling"
        assert record.cancel_kind == ("graceful" if graceful else "abort")
        final = running.wait(30)  # the owner's watcher stopped it
        assert runner.stopped_at is not None
        assert final.status == ("completed" if graceful else "cancelled")
        assert final.cancellation_reason == "from the terminal"
        assert queued.wait(10).status == "cancelled"
        assert orch.get_operation(queued.operation_id).started_at is None  # never ran
    finally:
        other.shutdown()


def test_ktrdr_operations_cancel_in_another_terminal_stops_the_run(
    owner: Any, small_strategy_file: Path, tmp_path: Path, isolated_home: Path
) -> None:
    orch, runner = owner
    # The CLI works on KTRDR_HOME's store; point the owner's run there by sharing the file.
    running = orch.start_training(small_strategy_file, epochs=1)
    assert runner.started.wait(10)
    db = Path(orch.store.path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "operations.db").symlink_to(db)
    done = subprocess.run(
        [sys.executable, "-m", "ktrdr_lib.cli", "operations", "cancel", running.operation_id],
        env={**__import__("os").environ, "KTRDR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert running.wait(10).status == "cancelled"


def test_cancelling_a_run_whose_process_died_marks_it_interrupted(tmp_path: Path) -> None:
    import socket

    orch = TrainingOrchestrator(store=OperationStore(tmp_path / "operations.db"))
    try:
        store = OperationStore(tmp_path / "operations.db")
        # Created after the orchestrator's start-up look: owned by a process of this host
        # that no longer runs.
        store.create("op_dead", owner=f"{socket.gethostname()}:999999:1")
        store.transition("op_dead", "running")
        record = orch.cancel("op_dead", reason="stop it")
        assert record.status == "interrupted"
        assert record.error_message is not None and "stop it" in record.error_message
    finally:
        orch.shutdown()


def test_a_follower_elsewhere_ends_on_the_final_status_even_without_a_final_snapshot(
    tmp_path: Path,
) -> None:
    """The owner stores the final status a moment before its final snapshot, and a process
    that died writes none: a follower reading the store still ends on the final status (the
    stored snapshot carried forward). (The event stream ends with a final event that carries
    the status itself.)"""
    import socket

    orch = TrainingOrchestrator(store=OperationStore(tmp_path / "operations.db"))
    try:
        store = OperationStore(tmp_path / "operations.db")
        store.create("op_gone", owner=f"{socket.gethostname()}:999999:1")
        store.transition("op_gone", "running")
        store.transition("op_gone", "interrupted", error_message="its process stopped")
        snapshots = list(orch.follow("op_gone"))
        assert snapshots[-1].status == "interrupted"
        assert snapshots[-1].message == "Interrupted: its process stopped"
        assert len(snapshots) == len({s.sequence for s in snapshots})
    finally:
        orch.shutdown()
