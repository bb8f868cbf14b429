"""ProgressTracker with a fake clock: percentage, messages, throttling, sequence, ETA, epochs."""

from __future__ import annotations

import threading

import pytest

from ktrdr_lib.progress.tracker import PHASE_SPANS, ProgressTracker
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot

PREPARATION = ("load_data", "indicators", "fuzzy", "labels")


class FakeClock:
    """Monotonic seconds that only move when told to (starts at 0.0, like a fresh counter)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """Collects what the tracker hands to its sinks."""

    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []
        self.epochs: list[EpochHistoryRow] = []


def _tracker(
    *, total_epochs: int = 2, min_interval: float = 0.0, start_sequence: int = 0
) -> tuple[ProgressTracker, FakeClock, Recorder]:
    clock = FakeClock()
    rec = Recorder()
    tracker = ProgressTracker(
        "op-1",
        total_epochs=total_epochs,
        publish=rec.snapshots.append,
        on_epoch=rec.epochs.append,
        min_interval=min_interval,
        clock=clock,
        start_sequence=start_sequence,
    )
    return tracker, clock, rec


def _full_run(
    tracker: ProgressTracker, clock: FakeClock, *, epochs: int, batches: int
) -> ProgressSnapshot:
    for phase in PREPARATION:
        tracker.on_phase(phase, f"{phase}…")  # type: ignore[arg-type]
        clock.advance(1.0)
    tracker.on_phase("train", "Training")
    for epoch in range(1, epochs + 1):
        tracker.start_epoch(epoch, batches)
        for batch in range(1, batches + 1):
            clock.advance(0.1)
            tracker.batch_done(batch, loss=1.0 / batch)
        clock.advance(0.5)
        tracker.epoch_done({"train_loss": 0.5, "val_loss": 0.6})
    tracker.on_phase("evaluate", "Evaluating")
    tracker.on_phase("save", "Saving")
    return tracker.finish("completed", "Completed")


# -- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"total_epochs": 0}, "total_epochs"), ({"total_epochs": 1, "min_interval": -1}, "min_")],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ProgressTracker("op", publish=lambda s: None, **kwargs)  # type: ignore[arg-type]


# -- percentage ------------------------------------------------------------------------------


def test_percentage_never_decreases_and_reaches_100_only_on_completion() -> None:
    tracker, clock, rec = _tracker(total_epochs=3)
    final = _full_run(tracker, clock, epochs=3, batches=7)
    percentages = [s.percentage for s in rec.snapshots]
    assert percentages == sorted(percentages)
    assert final.percentage == 100.0
    assert rec.snapshots[-1] is final
    assert all(p < 100.0 for p in percentages[:-1])
    assert {s.operation_id for s in rec.snapshots} == {"op-1"}


def test_preparation_phases_stay_within_the_first_ten_percent() -> None:
    tracker, _, rec = _tracker()
    for phase in PREPARATION:
        tracker.on_phase(phase, phase)  # type: ignore[arg-type]
    assert [s.phase for s in rec.snapshots] == list(PREPARATION)
    values = [s.percentage for s in rec.snapshots]
    assert all(0.0 <= v <= 10.0 for v in values)
    assert values == sorted(values)
    assert values[-1] > values[0]
    for phase in PREPARATION:
        lo, hi = PHASE_SPANS[phase]
        assert 0.0 <= lo <= hi <= 10.0


def test_training_percentage_counts_across_epochs() -> None:
    tracker, _, rec = _tracker(total_epochs=4)
    tracker.on_phase("train", "Training")
    by_position: dict[tuple[int, int], float] = {}
    for epoch in (1, 2):
        tracker.start_epoch(epoch, 10)
        for batch in range(1, 11):
            tracker.batch_done(batch)
            by_position[(epoch, batch)] = rec.snapshots[-1].percentage
        tracker.epoch_done({})
    assert by_position[(2, 1)] > by_position[(1, 10)]
    lo, hi = PHASE_SPANS["train"]
    # ((epoch-1)*B + batch) / (E*B) of the training slice.
    assert by_position[(1, 10)] == pytest.approx(lo + (hi - lo) * 10 / 40, abs=1e-3)
    assert by_position[(2, 1)] == pytest.approx(lo + (hi - lo) * 11 / 40, abs=1e-3)
    last = rec.snapshots[-1]
    assert (last.items_processed, last.items_total) == (20, 40)


def test_failed_or_cancelled_finish_keeps_the_percentage_reached() -> None:
    for status in ("failed", "cancelled"):
        tracker, _, rec = _tracker(total_epochs=2)
        tracker.on_phase("train", "Training")
        tracker.start_epoch(1, 4)
        tracker.batch_done(2)
        reached = rec.snapshots[-1].percentage
        final = tracker.finish(status, f"{status}!")
        assert final.status == status
        assert final.percentage == reached < 100.0
        assert final.message == f"{status}!"


def test_a_late_phase_never_pulls_the_percentage_back() -> None:
    tracker, _, rec = _tracker(total_epochs=1)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 2)
    tracker.batch_done(2)
    high = rec.snapshots[-1].percentage
    tracker.on_phase("load_data", "reloading")
    assert rec.snapshots[-1].percentage == high


# -- message and snapshot fields -------------------------------------------------------------


def test_message_format_and_counts() -> None:
    tracker, _, rec = _tracker(total_epochs=50)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(3, 640)
    tracker.batch_done(120, loss=0.25)
    snap = rec.snapshots[-1]
    assert snap.message == "Epoch 3/50 · Batch 120/640"
    assert (snap.epoch, snap.total_epochs, snap.batch, snap.total_batches) == (3, 50, 120, 640)
    assert snap.phase == "train"
    assert snap.status == "running"
    assert snap.metrics["train_loss_batch"] == 0.25
    assert snap.items_processed == 2 * 640 + 120
    assert snap.updated_at.endswith("Z")


def test_elapsed_resources_status_and_epoch_metrics() -> None:
    tracker, clock, rec = _tracker(total_epochs=1)
    tracker.set_resources({"device": "cpu", "gpu_used": False})
    clock.advance(2.5)
    tracker.on_phase("train", "Training")
    assert rec.snapshots[-1].elapsed_s == 2.5
    assert rec.snapshots[-1].resources == {"device": "cpu", "gpu_used": False}
    tracker.start_epoch(1, 3)
    tracker.batch_done(1, loss=0.9)
    tracker.epoch_done({"train_loss": 0.4, "val_accuracy": 0.7})
    snap = rec.snapshots[-1]
    assert snap.metrics == {"train_loss": 0.4, "val_accuracy": 0.7}
    tracker.set_status("cancelling")
    assert rec.snapshots[-1].status == "cancelling"


# -- throttling and sequence -----------------------------------------------------------------


def test_many_batches_within_the_interval_emit_once() -> None:
    tracker, clock, rec = _tracker(total_epochs=1, min_interval=0.2)
    tracker.on_phase("train", "Training")
    assert tracker.emitted == 1
    tracker.start_epoch(1, 1000)
    for batch in range(1, 101):
        clock.advance(0.001)
        tracker.batch_done(batch)
    assert tracker.emitted == 1  # 0.1 s since the phase emit: nothing yet
    clock.advance(0.1)
    assert tracker.due()
    tracker.batch_done(101)
    assert tracker.emitted == 2
    assert not tracker.due()
    for batch in range(102, 200):
        tracker.batch_done(batch)
    assert tracker.emitted == 2
    assert rec.snapshots[-1].batch == 101
    assert tracker.snapshot().batch == 199  # state is updated on every event


def test_the_first_batch_emits_when_nothing_was_emitted_yet() -> None:
    tracker, _, rec = _tracker(total_epochs=1, min_interval=60.0)
    tracker.start_epoch(1, 5)
    tracker.batch_done(1)
    tracker.batch_done(2)
    assert [s.batch for s in rec.snapshots] == [1]


def test_phase_changes_epoch_ends_status_and_finish_always_emit() -> None:
    tracker, _, rec = _tracker(total_epochs=2, min_interval=3600.0)
    tracker.on_phase("load_data", "a")
    tracker.on_phase("indicators", "b")
    tracker.on_phase("train", "c")
    tracker.start_epoch(1, 5)
    for batch in range(1, 6):
        tracker.batch_done(batch)
    tracker.epoch_done({"train_loss": 1.0})
    tracker.set_status("cancelling")
    tracker.finish("cancelled", "Cancelled")
    assert [s.phase for s in rec.snapshots] == [
        "load_data",
        "indicators",
        "train",
        "train",
        "train",
        "train",
    ]
    assert rec.snapshots[3].message == "Epoch 1/2 · Batch 5/5"
    assert [s.status for s in rec.snapshots[-2:]] == ["cancelling", "cancelled"]
    assert tracker.emitted == 6


def test_sequence_is_strictly_increasing_from_the_start_sequence() -> None:
    tracker, clock, rec = _tracker(total_epochs=2, min_interval=0.05, start_sequence=41)
    assert tracker.sequence == 41
    _full_run(tracker, clock, epochs=2, batches=9)
    sequences = [s.sequence for s in rec.snapshots]
    assert sequences == list(range(42, 42 + len(sequences)))
    assert tracker.sequence == sequences[-1]
    peek = tracker.snapshot()
    assert peek.sequence == tracker.sequence
    assert len(rec.snapshots) == len(sequences)  # snapshot() does not emit


def test_concurrent_events_keep_the_sequence_strict() -> None:
    tracker, _, rec = _tracker(total_epochs=1)
    tracker.start_epoch(1, 4000)

    def work(offset: int) -> None:
        for k in range(500):
            tracker.batch_done(offset + k)

    threads = [threading.Thread(target=work, args=(n * 500 + 1,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sequences = [s.sequence for s in rec.snapshots]
    assert sequences == list(range(1, 2001))


# -- ETA -------------------------------------------------------------------------------------


def test_eta_is_none_during_warm_up_then_remaining_batches_times_seconds_per_batch() -> None:
    tracker, clock, rec = _tracker(total_epochs=2)
    tracker.on_phase("train", "Training")
    assert rec.snapshots[-1].eta_s is None
    tracker.start_epoch(1, 10)
    etas: list[float | None] = []
    for batch in range(1, 7):
        clock.advance(0.5)
        tracker.batch_done(batch)
        etas.append(rec.snapshots[-1].eta_s)
    # The run's first batches are warm-up: no estimate yet.
    assert etas[:3] == [None, None, None]
    # Then (epochs left * B + batches left) * 0.5 s.
    assert etas[3:] == [pytest.approx(r * 0.5) for r in (16, 15, 14)]


def test_eta_skips_the_first_batch_of_each_epoch_and_smooths() -> None:
    tracker, clock, rec = _tracker(total_epochs=2)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 10)
    for batch in range(1, 11):
        clock.advance(0.5)
        tracker.batch_done(batch)
    clock.advance(30.0)  # validation and the next epoch's set-up: not a training step
    tracker.epoch_done({})
    tracker.start_epoch(2, 10)
    clock.advance(20.0)
    tracker.batch_done(1)
    assert rec.snapshots[-1].eta_s == pytest.approx(9 * 0.5)
    clock.advance(1.5)
    tracker.batch_done(2)
    smoothed = rec.snapshots[-1].eta_s
    assert smoothed is not None
    assert 8 * 0.5 < smoothed < 8 * 1.5  # moved toward 1.5 s/batch, but only partly
    assert smoothed < 8 * 0.75


def _steady(tracker: ProgressTracker, clock: FakeClock, batches: range, seconds: float) -> None:
    for batch in batches:
        clock.advance(seconds)
        tracker.batch_done(batch)


def test_one_stalled_batch_moves_the_eta_only_a_little_and_it_recovers() -> None:
    tracker, clock, rec = _tracker(total_epochs=1)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 1000)
    _steady(tracker, clock, range(1, 101), 0.1)  # 10 batches/s
    before = rec.snapshots[-1].eta_s
    assert before == pytest.approx(900 * 0.1)

    clock.advance(50.0)  # one batch stalls (a pause, a swap, a busy GPU)
    tracker.batch_done(101)
    stalled = rec.snapshots[-1].eta_s
    assert stalled is not None
    assert stalled < before * 1.25  # a step of the way, not 500 times the pace

    _steady(tracker, clock, range(102, 301), 0.1)
    assert rec.snapshots[-1].eta_s == pytest.approx(700 * 0.1, rel=0.05)


def test_a_lasting_slowdown_takes_over_the_eta() -> None:
    tracker, clock, rec = _tracker(total_epochs=1)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 1000)
    _steady(tracker, clock, range(1, 101), 0.1)
    _steady(tracker, clock, range(101, 201), 1.0)  # ten times slower for 100 s
    assert rec.snapshots[-1].eta_s == pytest.approx(800 * 1.0, rel=0.2)


def test_the_rate_is_batches_over_seconds_however_uneven_the_steps() -> None:
    tracker, clock, rec = _tracker(total_epochs=1)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 1000)
    _steady(tracker, clock, range(1, 4), 0.1)  # warm-up
    for batch in range(4, 404, 2):  # asynchronous steps: one waits for the device, one not
        clock.advance(0.199)
        tracker.batch_done(batch)
        clock.advance(0.001)
        tracker.batch_done(batch + 1)
    assert tracker.batches_per_second == pytest.approx(10.0, rel=0.05)
    assert rec.snapshots[-1].eta_s == pytest.approx(597 * 0.1, rel=0.05)


def test_eta_is_none_outside_training() -> None:
    tracker, clock, rec = _tracker(total_epochs=1)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 10)
    for batch in range(1, 8):
        clock.advance(0.5)
        tracker.batch_done(batch)
    assert rec.snapshots[-1].eta_s is not None
    tracker.on_phase("evaluate", "Evaluating")
    assert rec.snapshots[-1].eta_s is None


# -- epoch rows ------------------------------------------------------------------------------


def test_epoch_rows_carry_metrics_learning_rate_and_duration() -> None:
    tracker, clock, rec = _tracker(total_epochs=2)
    tracker.on_phase("train", "Training")
    tracker.start_epoch(1, 4)  # the fake clock still reads 0.0 here
    for batch in range(1, 5):
        clock.advance(0.25)
        tracker.batch_done(batch)
    clock.advance(1.0)
    tracker.epoch_done(
        {"train_loss": 0.7, "train_accuracy": 0.5, "val_loss": 0.8, "val_accuracy": 0.45},
        learning_rate=0.01,
    )
    tracker.start_epoch(2, 4)
    clock.advance(3.0)
    tracker.epoch_done({"train_loss": 0.6})
    assert rec.epochs == [
        EpochHistoryRow(
            epoch=1,
            train_loss=0.7,
            train_accuracy=0.5,
            val_loss=0.8,
            val_accuracy=0.45,
            learning_rate=0.01,
            duration_s=2.0,
        ),
        EpochHistoryRow(epoch=2, train_loss=0.6, duration_s=3.0),
    ]


def test_epoch_rows_are_optional() -> None:
    rec = Recorder()
    tracker = ProgressTracker("op", total_epochs=1, publish=rec.snapshots.append)
    tracker.start_epoch(1, 1)
    tracker.batch_done(1)
    tracker.epoch_done({"train_loss": 1.0})
    assert rec.snapshots[-1].metrics == {"train_loss": 1.0}


def test_phase_seconds_follow_the_phases_as_they_go_by() -> None:
    tracker, clock, _rec = _tracker()
    assert tracker.phase_seconds() == {}
    tracker.on_phase("load_data", "Loading")
    clock.advance(2.0)
    tracker.on_phase("indicators", "Indicators")
    clock.advance(0.5)
    tracker.on_phase("indicators", "Indicators, again")  # the same phase keeps its clock
    clock.advance(0.5)
    tracker.on_phase("train", "Training")
    clock.advance(3.0)
    assert tracker.phase_seconds() == {"load_data": 2.0, "indicators": 1.0, "train": 3.0}
    # a host's snapshots move a forwarding tracker through phases the same way
    forwarding, fclock, _ = _tracker()
    forwarding.forward(ProgressSnapshot(operation_id="h", phase="load_data"))
    fclock.advance(1.5)
    forwarding.forward(ProgressSnapshot(operation_id="h", phase="train"))
    fclock.advance(4.0)
    assert forwarding.phase_seconds() == {"load_data": 1.5, "train": 4.0}


def test_a_status_change_after_the_final_snapshot_publishes_nothing() -> None:
    tracker, _clock, rec = _tracker()
    tracker.on_phase("train", "Training")
    final = tracker.finish("cancelled", "Cancelled: enough")
    tracker.set_status("cancelling")  # a cancel request that raced the run's end
    assert rec.snapshots[-1] == final and final.status == "cancelled"
