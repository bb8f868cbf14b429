"""Placebo runs: real trainings on random walks matched to the data, as child operations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator, list_models
from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.placebo import placebo_bars
from ktrdr_lib.data.synthetic import write_ohlcv_csv
from ktrdr_lib.runners.process import ProcessTrainingRunner

pytestmark = pytest.mark.slow


@pytest.fixture
def random_walk_dir(tmp_path: Path, synthetic_data_dir: Path) -> Path:
    """SYNTH replaced by a random walk: any edge a model shows on it is noise."""
    data = tmp_path / "walk"
    data.mkdir()
    real = load_ohlcv("SYNTH", "1h", data_dir=synthetic_data_dir)
    write_ohlcv_csv(placebo_bars(real, seed=2024), data / "SYNTH_1h.csv")
    return data


@pytest.fixture
def orch(random_walk_dir: Path, isolated_home: Path) -> Iterator[TrainingOrchestrator]:
    made = TrainingOrchestrator(
        store=OperationStore(":memory:"), data_dir=random_walk_dir, progress_interval=0.05
    )
    yield made
    made.shutdown(cancel_running=True, timeout=60)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_model_of_a_random_walk_has_no_edge_over_its_placebos(
    orch: TrainingOrchestrator, small_strategy_file: Path, seed: int
) -> None:
    op = orch.start_training(small_strategy_file, epochs=2, seed=seed, placebo_runs=4)
    record = op.wait(300)
    assert record.status == "completed", record.error_message
    evaluation = op.result().evaluation
    assert evaluation is not None and evaluation.placebo is not None
    placebo = evaluation.placebo
    assert placebo.runs == 4 and len(placebo.scores) == 4 and len(placebo.operation_ids) == 4
    assert placebo.z_score is not None and abs(placebo.z_score) < 2
    assert "within noise" in evaluation.placebo_note
    assert len(placebo.total_returns) == 4
    for index, child_id in enumerate(placebo.operation_ids):  # child operations of their own
        child = orch.get_operation(child_id)
        assert child.status == "completed"
        assert child.metadata["placebo_of"] == op.operation_id
        assert child.metadata["placebo_index"] == index
        assert orch.context_of(child_id).placebo_of == op.operation_id
        assert len(orch.metrics(child_id).epochs) == 2
    # Placebo models are never kept: the store holds the real run's model only.
    assert [(m.name, m.version) for m in list_models(orch.models_dir)] == [("small_test", 1)]


def _wait_for_a_running_placebo(orch: TrainingOrchestrator, parent: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for item in orch.list_operations().items:
            if item.metadata.get("placebo_of") == parent and item.status == "running":
                return item.operation_id
        time.sleep(0.02)
    raise AssertionError("no placebo started")


def test_an_abort_while_a_placebo_trains_cancels_it_and_the_run(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(
        small_strategy_file,
        epochs=4,
        overrides={"model.training.batch_size": 8},
        placebo_runs=3,
    )
    child = _wait_for_a_running_placebo(orch, op.operation_id)
    orch.cancel(op.operation_id, reason="enough placebos")
    assert op.wait(60).status == "cancelled"
    assert orch.wait(child, timeout=60).status == "cancelled"
    assert orch.get_operation(child).cancellation_reason == "enough placebos"
    placebos = [i for i in orch.list_operations().items if i.metadata.get("placebo_of")]
    assert len(placebos) == 1  # the others never started


def test_a_graceful_stop_keeps_the_result_with_the_placebos_done(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=3, placebo_runs=3)
    _wait_for_a_running_placebo(orch, op.operation_id)
    orch.cancel(op.operation_id, graceful=True, reason="one is enough")
    record = op.wait(120)
    assert record.status == "completed", record.error_message
    evaluation = op.result().evaluation
    assert evaluation is not None and evaluation.placebo is not None
    assert len(evaluation.placebo.scores) == 1
    assert evaluation.placebo.note == "stopped after 1 of 3: one is enough"
    assert evaluation.placebo.z_score is None  # one placebo has no spread


def test_placebos_run_in_a_child_process_like_the_run(
    random_walk_dir: Path, small_strategy_file: Path
) -> None:
    orch = TrainingOrchestrator(
        store=OperationStore(":memory:"),
        data_dir=random_walk_dir,
        runner=ProcessTrainingRunner(warm_workers=0, torch_threads=1),
    )
    try:
        op = orch.start_training(small_strategy_file, epochs=2, placebo_runs=1)
        assert op.wait(300).status == "completed"
        placebo = op.result().evaluation.placebo  # type: ignore[union-attr]
        assert placebo is not None and len(placebo.scores) == 1
        assert orch.get_operation(placebo.operation_ids[0]).status == "completed"
    finally:
        orch.shutdown(cancel_running=True, timeout=60)
