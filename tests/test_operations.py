"""OperationStore: records, paging, the status machine, progress, epoch history, restarts."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ktrdr_lib.timestamps as timestamps
from ktrdr_lib.errors import ConfigError, NotFoundError, StateConflictError
from ktrdr_lib.operations.owner import owner_alive, process_owner
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import ACTIVE_STATUSES, FINAL_STATUSES, OperationStatus
from ktrdr_lib.timestamps import utc_now
from tests.builders import make_result

STATUSES: tuple[OperationStatus, ...] = (
    "pending",
    "running",
    "cancelling",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
)
# The contract of DESIGN.md, written out independently of the implementation's table.
ALLOWED: dict[str, set[str]] = {
    "pending": {"running", "cancelling", "cancelled", "failed", "interrupted"},
    "running": {"cancelling", "completed", "failed", "cancelled", "interrupted"},
    "cancelling": {"completed", "failed", "cancelled", "interrupted"},
}
# How to reach each status from a fresh ``pending`` record.
PATH_TO: dict[str, list[OperationStatus]] = {
    "pending": [],
    "running": ["running"],
    "cancelling": ["running", "cancelling"],
    "completed": ["running", "completed"],
    "failed": ["running", "failed"],
    "cancelled": ["running", "cancelling", "cancelled"],
    "interrupted": ["running", "interrupted"],
}


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OperationStore]:
    """The same tests on a private in-memory store and on a WAL file store."""
    path = ":memory:" if request.param == "memory" else tmp_path / "sub" / "ops.sqlite"
    st = OperationStore(path)
    yield st
    st.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[OperationStore]:
    """A file store (several connections, WAL)."""
    st = OperationStore(tmp_path / "ops.sqlite")
    yield st
    st.close()


def _reach(store: OperationStore, op_id: str, status: str) -> None:
    store.create(op_id)
    for step in PATH_TO[status]:
        store.transition(op_id, step)


def _dead_owner() -> str:
    """An owner string naming a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:12345"


# -- records ---------------------------------------------------------------------------------


def test_create_then_get_returns_a_pending_record(store: OperationStore) -> None:
    created = store.create(
        "op-1", operation_type="training", mode="local", metadata={"strategy": "s", "n": 3}
    )
    got = store.get("op-1")
    assert got == created
    assert got.status == "pending"
    assert got.operation_type == "training"
    assert got.mode == "local"
    assert got.metadata == {"strategy": "s", "n": 3}
    assert got.started_at is None
    assert got.finished_at is None
    assert got.error_message is None
    assert got.result is None
    assert got.progress.operation_id == "op-1"
    assert got.progress.status == "pending"
    assert not got.is_final


def test_create_keeps_a_given_progress_snapshot(store: OperationStore) -> None:
    snap = ProgressSnapshot(operation_id="op-1", total_epochs=7, message="Queued")
    assert store.create("op-1", progress=snap).progress == snap


def test_file_store_creates_parent_directories_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ops.sqlite"
    first = OperationStore(path)
    first.create("op-1", metadata={"k": "v"})
    first.transition("op-1", "running")
    first.close()
    second = OperationStore(path)
    assert second.get("op-1").status == "running"
    assert second.get("op-1").metadata == {"k": "v"}
    assert second.size_bytes() > 0
    second.close()


def test_memory_store_has_no_size(store: OperationStore) -> None:
    store.create("op-1")
    if store.path == ":memory:":
        assert store.size_bytes() == 0
    else:
        assert store.size_bytes() > 0


def test_unknown_operation_is_not_found_with_its_id(store: OperationStore) -> None:
    with pytest.raises(NotFoundError) as info:
        store.get("nope-42")
    assert str(info.value) == "Operation not found: nope-42"
    with pytest.raises(NotFoundError, match="Operation not found: nope-42"):
        store.transition("nope-42", "running")
    with pytest.raises(NotFoundError, match="Operation not found: nope-42"):
        store.epoch_history("nope-42")


def test_duplicate_id_is_a_state_conflict(store: OperationStore) -> None:
    store.create("op-1", metadata={"first": True})
    with pytest.raises(StateConflictError, match="op-1"):
        store.create("op-1", metadata={"first": False})
    assert store.get("op-1").metadata == {"first": True}


def test_list_is_newest_first_with_filters_paging_and_total(store: OperationStore) -> None:
    ids = [f"op-{i:02d}" for i in range(12)]
    for i, op_id in enumerate(ids):
        store.create(op_id, operation_type="training" if i % 3 else "backtest")
    for op_id in ids[:4]:
        store.transition(op_id, "running")
    store.transition(ids[0], "completed")

    records, total = store.list_records()
    assert total == 12
    assert [r.operation_id for r in records] == ids[::-1]

    page, total = store.list_records(limit=5, offset=5)
    assert total == 12
    assert [r.operation_id for r in page] == ids[::-1][5:10]
    tail, total = store.list_records(limit=5, offset=10)
    assert [r.operation_id for r in tail] == ids[1::-1]
    empty, total = store.list_records(limit=5, offset=50)
    assert (empty, total) == ([], 12)

    running, total = store.list_records(status="running")
    assert total == 3
    assert [r.operation_id for r in running] == ["op-03", "op-02", "op-01"]
    active, total = store.list_records(status=["running", "completed"], limit=2)
    assert total == 4
    assert [r.operation_id for r in active] == ["op-03", "op-02"]

    backtests, total = store.list_records(operation_type="backtest")
    assert total == 4
    assert {r.operation_type for r in backtests} == {"backtest"}
    both, total = store.list_records(status="running", operation_type="training")
    assert [r.operation_id for r in both] == ["op-02", "op-01"]
    assert total == 2

    assert store.count(["pending"]) == 8
    assert store.count(sorted(ACTIVE_STATUSES)) == 11
    assert store.count(sorted(FINAL_STATUSES)) == 1


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (5, -1)])
def test_negative_paging_is_a_config_error(store: OperationStore, limit: int, offset: int) -> None:
    with pytest.raises(ConfigError, match="limit and offset"):
        store.list_records(limit=limit, offset=offset)


def test_timestamps_always_carry_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole-second time must not drop its fraction, or text order stops being time order."""

    class WholeSecond(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> WholeSecond:
            return cls(2024, 5, 1, 12, 0, 0, 0, tzinfo=UTC)

    real = utc_now()
    monkeypatch.setattr(timestamps, "datetime", WholeSecond)
    stamp = utc_now()
    assert stamp == "2024-05-01T12:00:00.000000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", real)
    # "12:00:00.000000Z" < "12:00:00.500000Z" as text, as in time.
    assert stamp < "2024-05-01T12:00:00.500000Z"


# -- the status machine ----------------------------------------------------------------------


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_transition_table(source: str, target: OperationStatus) -> None:
    store = OperationStore(":memory:")
    _reach(store, "op", source)
    before = store.get("op")
    if target in ALLOWED.get(source, set()):
        after = store.transition("op", target)
        assert after.status == target
        assert after.progress.status == target
    elif target == source:
        # Re-asserting the current status is a no-op; for a final state it changes nothing.
        after = store.transition(
            "op", target, error_message="late", result=make_result(final_train_loss=9.0)
        )
        assert after.status == source
        if source in FINAL_STATUSES:
            assert after == before
    else:
        with pytest.raises(StateConflictError, match=f"is {source}; it cannot become {target}"):
            store.transition("op", target)
        assert store.get("op") == before
    store.close()


def test_started_and_finished_timestamps(store: OperationStore) -> None:
    store.create("op")
    running = store.transition("op", "running")
    assert running.started_at is not None
    assert running.finished_at is None
    again = store.transition("op", "running")
    assert again.started_at == running.started_at
    done = store.transition("op", "completed", result=make_result(final_val_accuracy=0.5))
    assert done.started_at == running.started_at
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at
    assert done.result == make_result(final_val_accuracy=0.5)
    assert done.is_final


def test_cancelled_is_never_overwritten_by_failed(store: OperationStore) -> None:
    store.create("op")
    store.transition("op", "running")
    store.transition("op", "cancelling", cancellation_reason="user asked")
    cancelled = store.transition("op", "cancelled", cancellation_reason="second reason")
    assert cancelled.cancellation_reason == "user asked"
    with pytest.raises(StateConflictError, match="is cancelled; it cannot become failed"):
        store.transition("op", "failed", error_message="OperationCancelled unwound")
    after = store.get("op")
    assert after.status == "cancelled"
    assert after.error_message is None
    assert after.finished_at == cancelled.finished_at


def test_failure_keeps_its_message(store: OperationStore) -> None:
    store.create("op")
    store.transition("op", "running")
    failed = store.transition("op", "failed", error_message="NaN loss in epoch 2")
    assert failed.error_message == "NaN loss in epoch 2"
    assert failed.finished_at is not None
    for later in ("completed", "cancelled", "running"):
        with pytest.raises(StateConflictError):
            store.transition("op", later)
    assert store.get("op").error_message == "NaN loss in epoch 2"


def test_pending_can_be_cancelled_directly(store: OperationStore) -> None:
    store.create("op")
    done = store.transition("op", "cancelled", cancellation_reason="before start")
    assert done.started_at is None
    assert done.finished_at is not None
    assert done.cancellation_reason == "before start"


def test_a_cancel_is_stored_with_its_kind_and_an_abort_escalates_a_graceful_one(
    store: OperationStore,
) -> None:
    store.create("op")
    store.transition("op", "running")
    first = store.transition(
        "op", "cancelling", cancellation_reason="good enough", cancel_kind="graceful"
    )
    assert (first.cancel_kind, first.cancellation_reason) == ("graceful", "good enough")
    again = store.transition(
        "op", "cancelling", cancellation_reason="later", cancel_kind="graceful"
    )
    assert (again.cancel_kind, again.cancellation_reason) == ("graceful", "good enough")
    escalated = store.transition(
        "op", "cancelling", cancellation_reason="stop now", cancel_kind="abort"
    )
    assert (escalated.cancel_kind, escalated.cancellation_reason) == ("abort", "stop now")
    # a graceful request never downgrades an abort, nor replaces its reason
    final = store.transition("op", "cancelled", cancellation_reason="late", cancel_kind="graceful")
    assert (final.cancel_kind, final.cancellation_reason) == ("abort", "stop now")


def test_host_session_is_remembered(store: OperationStore) -> None:
    store.create("op", mode="host")
    store.set_host_session("op", "sess-9")
    assert store.get("op").host_session_id == "sess-9"


# -- progress and epoch history --------------------------------------------------------------


def test_save_progress_only_stores_newer_sequences(store: OperationStore) -> None:
    store.create("op")
    assert store.save_progress(ProgressSnapshot(operation_id="op", sequence=5, percentage=40.0))
    assert not store.save_progress(ProgressSnapshot(operation_id="op", sequence=3, percentage=9))
    assert not store.save_progress(ProgressSnapshot(operation_id="op", sequence=5, percentage=1))
    stored = store.get("op").progress
    assert (stored.sequence, stored.percentage) == (5, 40.0)
    assert store.save_progress(ProgressSnapshot(operation_id="op", sequence=6, percentage=41.0))
    assert store.get("op").progress.sequence == 6
    assert not store.save_progress(ProgressSnapshot(operation_id="unknown", sequence=99))


def test_stored_progress_shows_the_record_status(store: OperationStore) -> None:
    store.create("op")
    store.transition("op", "running")
    store.save_progress(ProgressSnapshot(operation_id="op", sequence=1, status="pending"))
    assert store.get("op").progress.status == "running"


def test_epoch_history_appends_replaces_and_orders(store: OperationStore) -> None:
    store.create("op")
    store.create("other")
    assert store.epoch_history("op") == []
    for epoch in (3, 1, 2):
        store.append_epoch("op", EpochHistoryRow(epoch=epoch, train_loss=float(epoch)))
    store.append_epoch("other", EpochHistoryRow(epoch=1, train_loss=99.0))
    store.append_epoch(
        "op", EpochHistoryRow(epoch=2, train_loss=0.5, val_loss=0.6, learning_rate=1e-3)
    )
    rows = store.epoch_history("op")
    assert [r.epoch for r in rows] == [1, 2, 3]
    assert rows[1] == EpochHistoryRow(epoch=2, train_loss=0.5, val_loss=0.6, learning_rate=1e-3)
    assert [r.train_loss for r in store.epoch_history("other")] == [99.0]


def test_epoch_row_for_an_unknown_operation_is_refused(store: OperationStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.append_epoch("ghost", EpochHistoryRow(epoch=1))


# -- restarts and owners ---------------------------------------------------------------------


def test_mark_interrupted_only_touches_operations_of_gone_processes(
    store: OperationStore,
) -> None:
    dead = _dead_owner()
    store.create("dead-running", owner=dead)
    store.transition("dead-running", "running")
    store.create("dead-cancelling", owner=dead)
    store.transition("dead-cancelling", "running")
    store.transition("dead-cancelling", "cancelling")
    store.create("dead-done", owner=dead)
    store.transition("dead-done", "running")
    store.transition("dead-done", "completed")
    store.create("dead-host", owner=dead, mode="host")
    store.transition("dead-host", "running")
    store.create("mine")
    store.transition("mine", "running")
    store.create("elsewhere", owner="some-other-host:1:1")
    store.transition("elsewhere", "running")

    marked = store.mark_interrupted(mode="local", reason="process stopped")
    assert sorted(marked) == ["dead-cancelling", "dead-running"]
    for op_id in marked:
        record = store.get(op_id)
        assert record.status == "interrupted"
        assert record.error_message == "process stopped"
        assert record.finished_at is not None
    assert store.get("dead-done").status == "completed"
    assert store.get("dead-host").status == "running"
    assert store.get("mine").status == "running"
    assert store.get("elsewhere").status == "running"
    assert store.mark_interrupted(mode="local", reason="again") == []
    assert store.get("dead-running").error_message == "process stopped"


def test_owner_alive_rules() -> None:
    me = process_owner()
    host, pid, started = me.rsplit(":", 2)
    assert host == socket.gethostname()
    assert int(pid) == os.getpid()
    assert owner_alive(me)
    assert not owner_alive(None)
    assert not owner_alive("")
    assert not owner_alive(_dead_owner())
    # Our pid with another start time is a reused pid: the owner is gone.
    if started:
        assert not owner_alive(f"{host}:{pid}:{started}0")
    # Formats we cannot read and other hosts are left alone.
    assert owner_alive("not-an-owner")
    assert owner_alive(f"{host}:not-a-pid:1")
    assert owner_alive(f"another-{host}:1:1")


# -- concurrency -----------------------------------------------------------------------------


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return errors


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_eight_concurrent_writers_never_see_database_locked(kind: str, tmp_path: Path) -> None:
    store = OperationStore(":memory:" if kind == "memory" else tmp_path / "ops.sqlite")
    store.create("shared")
    conflicts = [0] * 8
    shared_moves: list[OperationStatus] = ["running", "cancelling", "cancelled"]

    def writer(n: int) -> Callable[[], None]:
        def run() -> None:
            for k in range(15):
                op_id = f"w{n}-{k}"
                store.create(op_id)
                store.transition(op_id, "running")
                for seq in range(1, 9):
                    store.save_progress(ProgressSnapshot(operation_id=op_id, sequence=seq))
                store.append_epoch(op_id, EpochHistoryRow(epoch=1, train_loss=float(n)))
                store.transition(op_id, "completed" if k % 2 else "failed", error_message="x")
                try:
                    store.transition("shared", shared_moves[(n + k) % 3])
                except StateConflictError:
                    conflicts[n] += 1
                store.list_records(limit=5)

        return run

    errors = _run_threads([writer(n) for n in range(8)])
    assert errors == []
    records, total = store.list_records(limit=1000)
    assert total == 8 * 15 + 1
    for record in records:
        if record.operation_id == "shared":
            continue
        assert record.status in {"completed", "failed"}
        assert record.progress.sequence == 8
        assert len(store.epoch_history(record.operation_id)) == 1
    assert store.get("shared").status in {"running", "cancelling", "cancelled"}
    store.close()


def test_readers_see_consistent_records_while_a_writer_writes(file_store: OperationStore) -> None:
    file_store.create("op")
    file_store.transition("op", "running")
    writes = 300
    done = threading.Event()
    seen: list[list[int]] = [[] for _ in range(4)]

    def writer() -> None:
        try:
            for seq in range(1, writes + 1):
                file_store.save_progress(ProgressSnapshot(operation_id="op", sequence=seq))
                if seq % 50 == 0:
                    file_store.append_epoch("op", EpochHistoryRow(epoch=seq // 50))
        finally:
            done.set()

    def reader(n: int) -> Callable[[], None]:
        def run() -> None:
            while not done.is_set():
                seen[n].append(file_store.get("op").progress.sequence)
                rows = file_store.epoch_history("op")
                assert [r.epoch for r in rows] == list(range(1, len(rows) + 1))
                file_store.list_records(status="running")
            seen[n].append(file_store.get("op").progress.sequence)

        return run

    errors = _run_threads([writer, *(reader(n) for n in range(4))])
    assert errors == []
    for sequences in seen:
        assert sequences == sorted(sequences)
        assert sequences[-1] == writes
    assert len(file_store.epoch_history("op")) == writes // 50


def test_delete_forgets_only_final_operations() -> None:
    store = OperationStore(":memory:")
    store.create("done")
    store.create("active")
    store.transition("done", "running")
    store.append_epoch("done", EpochHistoryRow(epoch=1, train_loss=1.0))
    store.transition("done", "completed")
    assert store.delete(["done", "active", "missing"]) == 1
    assert not store.exists("done")
    assert store.exists("active")
    assert store.delete([]) == 0
    with pytest.raises(NotFoundError):
        store.epoch_history("done")


# -- context and take-over of host runs ------------------------------------------------------


def test_the_stored_context_round_trips_and_defaults_to_none(store: OperationStore) -> None:
    store.create("with", mode="host", context={"operation_id": "with", "epochs": 3})
    store.create("without")
    raw = store.stored_context("with")
    assert raw is not None and msgspec.json.decode(raw) == {"operation_id": "with", "epochs": 3}
    assert store.stored_context("without") is None
    with pytest.raises(NotFoundError):
        store.stored_context("ghost")
    assert store.owner("without") == process_owner()


def test_an_older_database_gains_the_context_column_and_keeps_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE operations (
            operation_id TEXT PRIMARY KEY, operation_type TEXT NOT NULL, status TEXT NOT NULL,
            mode TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
            metadata BLOB NOT NULL, progress BLOB NOT NULL, error_message TEXT,
            cancellation_reason TEXT, host_session_id TEXT, result BLOB, owner TEXT
        );
        CREATE TABLE epoch_history (
            operation_id TEXT NOT NULL REFERENCES operations(operation_id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL, row BLOB NOT NULL, PRIMARY KEY (operation_id, epoch)
        );
        """
    )
    old.execute(
        "INSERT INTO operations VALUES ('legacy', 'training', 'completed', 'local', "
        "'2025-01-01T00:00:00.000000Z', NULL, NULL, '{}', '{\"operation_id\": \"legacy\"}', "
        "NULL, NULL, NULL, NULL, 'x:1:1')"
    )
    old.commit()
    old.close()

    store = OperationStore(path)
    assert store.get("legacy").status == "completed"
    assert store.get("legacy").cancel_kind is None
    assert store.stored_context("legacy") is None
    store.create("new", context={"k": 1})
    assert store.stored_context("new") == b'{"k":1}'
    store.close()
    again = OperationStore(path)  # a second open finds the column and adds nothing
    assert [r.operation_id for r in again.list_records()[0]] == ["new", "legacy"]
    again.close()
    probe = sqlite3.connect(path)
    columns = [row[1] for row in probe.execute("PRAGMA table_info(operations)")]
    probe.close()
    assert columns.count("context") == columns.count("cancel_kind") == 1


def test_claim_orphans_takes_over_only_followable_host_runs_of_gone_processes(
    store: OperationStore,
) -> None:
    dead = _dead_owner()

    def orphan(op_id: str, *, mode: str = "host", owner: str = dead, **flags: bool) -> None:
        store.create(op_id, mode=mode, owner=owner, context=None if flags.get("bare") else {})
        if flags.get("pending"):
            return
        store.transition(op_id, "running")
        if flags.get("cancelling"):
            store.transition(op_id, "cancelling", cancellation_reason="stop")
        if not flags.get("no_session"):
            store.set_host_session(op_id, f"session-{op_id}")
        if flags.get("done"):
            store.transition(op_id, "completed")

    orphan("running")
    orphan("cancelling", cancelling=True)
    orphan("no-session", no_session=True)
    orphan("no-context", bare=True)
    orphan("pending", pending=True)
    orphan("done", done=True)
    orphan("local", mode="local")
    orphan("alive", owner=process_owner())
    orphan("elsewhere", owner="some-other-host:1:1")

    claimed = store.claim_orphans(mode="host", owner="me:1:1")
    assert sorted(claimed) == ["cancelling", "running"]
    assert store.owner("running") == "me:1:1" and store.owner("cancelling") == "me:1:1"
    assert store.get("running").status == "running"  # taken over, status untouched
    assert store.get("cancelling").cancellation_reason == "stop"
    assert store.owner("no-session") == dead
    assert store.claim_orphans(mode="host") == []  # "me:1:1" is another host: alive
    assert sorted(store.mark_interrupted(mode="host", reason="gone")) == [
        "no-context",
        "no-session",
        "pending",
    ]
