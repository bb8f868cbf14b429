"""OperationChannel (live subscribers) and StoreWriter (coalescing background persistence)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.progress.sinks import OperationChannel, StoreWriter
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import OperationStatus

WRITER_THREAD = "ktrdr-store-writer"


def _snap(seq: int, status: OperationStatus = "running", op_id: str = "op") -> ProgressSnapshot:
    return ProgressSnapshot(operation_id=op_id, sequence=seq, status=status, batch=seq)


def _follow(channel: OperationChannel, timeout: float = 10.0) -> list[int]:
    """What a ``follow()`` loop sees: sequences until the channel closes."""
    seen: list[int] = []
    last = 0
    while True:
        batch = channel.after(last, timeout=timeout)
        if not batch:
            if channel.closed:
                return seen
            raise AssertionError(f"no snapshot after {last} within {timeout}s")
        seen.extend(s.sequence for s in batch)
        last = batch[-1].sequence


def _writer_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == WRITER_THREAD)


# -- OperationChannel ------------------------------------------------------------------------


def test_subscribers_get_snapshots_after_a_sequence() -> None:
    forwarded: list[ProgressSnapshot] = []
    channel = OperationChannel("op", on_publish=forwarded.append)
    assert channel.latest is None
    for seq in range(1, 6):
        channel.publish(_snap(seq))
    assert [s.sequence for s in channel.after(0)] == [1, 2, 3, 4, 5]
    assert [s.sequence for s in channel.after(3)] == [4, 5]
    assert channel.after(5, timeout=0.01) == []
    assert channel.latest == _snap(5)
    assert [s.sequence for s in forwarded] == [1, 2, 3, 4, 5]
    assert not channel.closed


def test_a_waiting_subscriber_wakes_on_publish() -> None:
    channel = OperationChannel("op")
    channel.publish(_snap(1))
    got: list[list[ProgressSnapshot]] = []
    waiter = threading.Thread(target=lambda: got.append(channel.after(1, timeout=30.0)))
    waiter.start()
    channel.publish(_snap(2))
    waiter.join(30.0)
    assert not waiter.is_alive()
    assert [[s.sequence for s in batch] for batch in got] == [[2]]


def test_a_final_status_closes_the_channel_and_releases_waiters() -> None:
    channel = OperationChannel("op")
    channel.publish(_snap(1))
    results: list[list[ProgressSnapshot]] = []
    waiter = threading.Thread(target=lambda: results.append(channel.after(1, timeout=None)))
    waiter.start()
    channel.publish(_snap(2, "cancelled"))
    waiter.join(30.0)
    assert not waiter.is_alive()
    assert channel.closed
    assert [s.status for s in results[0]] == ["cancelled"]
    # Once closed, waiting for more returns at once, even without a timeout.
    late = threading.Thread(target=lambda: results.append(channel.after(2, timeout=None)))
    late.start()
    late.join(30.0)
    assert not late.is_alive()
    assert results[1] == []


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled", "interrupted"])
def test_every_final_status_closes(final: OperationStatus) -> None:
    channel = OperationChannel("op")
    channel.publish(_snap(1, "cancelling"))
    assert not channel.closed
    channel.publish(_snap(2, final))
    assert channel.closed


def test_a_late_subscriber_gets_the_kept_history_without_repeats() -> None:
    channel = OperationChannel("op", history=5)
    for seq in range(1, 21):
        channel.publish(_snap(seq))
    first = channel.after(0)
    assert [s.sequence for s in first] == [16, 17, 18, 19, 20]
    assert channel.after(first[-1].sequence, timeout=0.0) == []
    channel.publish(_snap(21, "completed"))
    assert _follow(channel) == [17, 18, 19, 20, 21]


def test_many_publishers_and_subscribers_at_once() -> None:
    """Four threads feed one tracker into a channel; six followers each see every snapshot once."""
    channel = OperationChannel("op", history=10_000)
    tracker = ProgressTracker("op", total_epochs=1, publish=channel.publish, min_interval=0.0)
    tracker.start_epoch(1, 2000)
    follows: list[list[int]] = []
    errors: list[BaseException] = []

    def follower() -> None:
        try:
            follows.append(_follow(channel))
        except BaseException as exc:
            errors.append(exc)

    def publisher(offset: int) -> None:
        for k in range(400):
            tracker.batch_done(offset + k)

    followers = [threading.Thread(target=follower) for _ in range(6)]
    publishers = [threading.Thread(target=publisher, args=(n * 400 + 1,)) for n in range(4)]
    for thread in followers + publishers:
        thread.start()
    for thread in publishers:
        thread.join(60.0)
    final = tracker.finish("completed", "Completed")
    for thread in followers:
        thread.join(60.0)
        assert not thread.is_alive()
    assert errors == []
    assert final.sequence == 1601
    assert follows == [list(range(1, 1602))] * 6


def test_small_history_followers_never_see_repeats() -> None:
    channel = OperationChannel("op", history=3)
    follows: list[list[int]] = []
    followers = [threading.Thread(target=lambda: follows.append(_follow(channel))) for _ in (1, 2)]
    for thread in followers:
        thread.start()
    for seq in range(1, 300):
        channel.publish(_snap(seq))
    channel.publish(_snap(300, "completed"))
    for thread in followers:
        thread.join(60.0)
        assert not thread.is_alive()
    assert len(follows) == 2
    for seen in follows:
        assert seen == sorted(set(seen))
        assert seen[-1] == 300


# -- StoreWriter -----------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ops.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[OperationStore]:
    """A file store with one running operation, counting its progress writes in SQL."""
    st = OperationStore(db_path)
    st.create("op")
    st.transition("op", "running")
    with sqlite3.connect(db_path) as conn:
        conn.executescript(
            """
            CREATE TABLE progress_writes (operation_id TEXT, sequence INTEGER);
            CREATE TRIGGER count_progress AFTER UPDATE OF progress ON operations BEGIN
                INSERT INTO progress_writes
                VALUES (NEW.operation_id, json_extract(NEW.progress, '$.sequence'));
            END;
            """
        )
    conn.close()
    yield st
    st.close()


def _progress_writes(db_path: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.execute("SELECT operation_id, sequence FROM progress_writes"))
    finally:
        conn.close()


class WriteLock:
    """Holds the database's write lock from another connection, as a busy neighbour would."""

    def __init__(self, db_path: Path) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def test_writer_stores_the_newest_snapshot_and_every_epoch_row(store: OperationStore) -> None:
    writer = StoreWriter(store)
    for seq in range(1, 31):
        writer.submit(_snap(seq))
        if seq % 10 == 0:
            writer.submit_epoch("op", EpochHistoryRow(epoch=seq // 10, train_loss=1.0 / seq))
    assert writer.flush(30.0)
    assert store.get("op").progress.sequence == 30
    assert [r.epoch for r in store.epoch_history("op")] == [1, 2, 3]
    writer.close()


def test_writer_coalesces_to_the_newest_snapshot_per_operation(
    store: OperationStore, db_path: Path
) -> None:
    store.create("other")
    writer = StoreWriter(store)
    lock = WriteLock(db_path)
    try:
        for seq in range(1, 201):
            writer.submit(_snap(seq))
            writer.submit(_snap(seq, op_id="other"))
        for epoch in range(1, 6):
            writer.submit_epoch("op", EpochHistoryRow(epoch=epoch))
        assert not writer.flush(0.05)  # the database is busy: nothing can be written yet
    finally:
        lock.release()
    assert writer.flush(30.0)
    writes = _progress_writes(db_path)
    # Blocked on its first write, the writer keeps only the newest of the rest: at most two
    # writes per operation instead of 200.
    for op_id in ("op", "other"):
        mine = [seq for who, seq in writes if who == op_id]
        assert 1 <= len(mine) <= 2
        assert mine[-1] == 200
        assert store.get(op_id).progress.sequence == 200
    assert [r.epoch for r in store.epoch_history("op")] == [1, 2, 3, 4, 5]
    writer.close()


def test_flush_waits_for_everything_submitted(store: OperationStore, db_path: Path) -> None:
    writer = StoreWriter(store)
    lock = WriteLock(db_path)
    writer.submit(_snap(7))
    flushed: list[bool] = []
    waiter = threading.Thread(target=lambda: flushed.append(writer.flush(30.0)))
    waiter.start()
    waiter.join(0.1)
    assert flushed == []  # still waiting: the write cannot happen yet
    assert store.get("op").progress.sequence == 0
    lock.release()
    waiter.join(30.0)
    assert flushed == [True]
    assert store.get("op").progress.sequence == 7
    writer.close()


def test_flush_with_nothing_submitted_returns_at_once(store: OperationStore) -> None:
    writer = StoreWriter(store)
    assert writer.flush(0.0)
    writer.close()


def test_close_writes_what_is_pending_and_stops_the_thread(store: OperationStore) -> None:
    before = _writer_threads()
    writer = StoreWriter(store)
    assert _writer_threads() == before + 1
    writer.submit(_snap(3))
    writer.submit_epoch("op", EpochHistoryRow(epoch=1))
    writer.close(30.0)
    assert _writer_threads() == before
    assert store.get("op").progress.sequence == 3
    assert len(store.epoch_history("op")) == 1


def test_a_failing_write_is_logged_and_the_writer_goes_on(
    store: OperationStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(store)
    with caplog.at_level(logging.ERROR, logger="ktrdr_lib.progress.sinks"):
        writer.submit_epoch("no-such-operation", EpochHistoryRow(epoch=1))  # foreign key fails
        assert writer.flush(30.0)
    failures = [r for r in caplog.records if r.name == "ktrdr_lib.progress.sinks"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "could not store progress" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    writer.submit(_snap(4))
    writer.submit_epoch("op", EpochHistoryRow(epoch=1))
    assert writer.flush(30.0)
    assert store.get("op").progress.sequence == 4
    assert len(store.epoch_history("op")) == 1
    writer.close()


def test_channel_feeds_the_writer_end_to_end(store: OperationStore) -> None:
    writer = StoreWriter(store)
    channel = OperationChannel("op", on_publish=writer.submit)
    tracker = ProgressTracker(
        "op",
        total_epochs=2,
        publish=channel.publish,
        on_epoch=lambda row: writer.submit_epoch("op", row),
        min_interval=0.0,
    )
    tracker.on_phase("train", "Training")
    for epoch in (1, 2):
        tracker.start_epoch(epoch, 5)
        for batch in range(1, 6):
            tracker.batch_done(batch)
        tracker.epoch_done({"train_loss": 1.0 / epoch})
    final = tracker.finish("completed", "Completed")
    assert writer.flush(30.0)
    stored = store.get("op").progress
    assert stored.sequence == final.sequence
    assert stored.percentage == 100.0
    assert [r.train_loss for r in store.epoch_history("op")] == [1.0, 0.5]
    assert channel.closed
    writer.close()
