"""Experiment loggers write real runs: CSV files, TensorBoard event files, an MLflow file store,
each read back with its own reader."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import ConfigError

pytestmark = pytest.mark.slow  # real trainings

EPOCHS = 3


@pytest.fixture
def orch_factory(synthetic_data_dir: Path, isolated_home: Path) -> Any:
    made: list[TrainingOrchestrator] = []

    def make(**kwargs: Any) -> TrainingOrchestrator:
        orch = TrainingOrchestrator(
            home=isolated_home,
            store=OperationStore(":memory:"),
            data_dir=synthetic_data_dir,
            progress_interval=0.0,
            **kwargs,
        )
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True)


def _train(orch: TrainingOrchestrator, strategy: Path, **fields: Any) -> str:
    op = orch.start_training(strategy, epochs=EPOCHS, **fields)
    record = op.wait(timeout=120)
    assert record.status == "completed", record.error_message
    return op.operation_id


def test_csv_logger_writes_hyperparameters_epochs_and_final_figures(
    orch_factory: Any, small_strategy_file: Path, isolated_home: Path
) -> None:
    orch = orch_factory(loggers=["csv"])
    op_id = _train(orch, small_strategy_file)
    run = isolated_home / "runs" / "csv" / "small_test" / op_id
    hparams = yaml.safe_load((run / "hparams.yaml").read_text(encoding="utf-8"))
    assert hparams["operation_id"] == op_id and hparams["strategy"] == "small_test"
    assert hparams["model.architecture.hidden_layers"] == "16,8"
    assert hparams["epochs"] == EPOCHS and hparams["labels.source"] == "zigzag"
    with (run / "metrics.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [row for row in rows if row.get("val_loss")]
    assert [int(float(row["epoch"])) for row in epochs] == [1, 2, 3]
    history = orch.metrics(op_id).epochs
    assert [float(row["val_loss"]) for row in epochs] == pytest.approx(
        [row.val_loss for row in history]
    )
    final = [row for row in rows if row.get("final/test_accuracy")]
    assert len(final) == 1
    result = orch.result(op_id)
    assert result.test_metrics is not None
    assert float(final[0]["final/test_accuracy"]) == pytest.approx(result.test_metrics.accuracy)


def test_tensorboard_logger_writes_scalars_tensorboard_can_read(
    orch_factory: Any, small_strategy_file: Path, isolated_home: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    orch = orch_factory()
    op_id = _train(orch, small_strategy_file, loggers=["tensorboard"])
    run = isolated_home / "runs" / "tensorboard" / "small_test" / op_id
    events = EventAccumulator(str(run))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"val_loss", "train_loss", "learning_rate", "final/test_accuracy"} <= set(scalars)
    assert [event.step for event in events.Scalars("val_loss")] == [1, 2, 3]


# mlflow's tracking store still uses a loader strategy SQLAlchemy 2.1 deprecates
@pytest.mark.filterwarnings("ignore:.*noload.*loader strategy is deprecated")
def test_mlflow_logger_from_the_environment_records_a_finished_run(
    orch_factory: Any,
    small_strategy_file: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    monkeypatch.setenv("KTRDR_LOGGERS", "mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    orch = orch_factory()
    op_id = _train(orch, small_strategy_file)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{isolated_home / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ktrdr/small_test")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == op_id and run.info.status == "FINISHED"
    assert run.data.params["strategy"] == "small_test"
    assert run.data.tags["operation_id"] == op_id
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(metric.step for metric in history) == [1, 2, 3]
    assert "final/test_accuracy" in run.data.metrics


def test_loggers_are_off_by_default_and_a_request_can_turn_them_off(
    orch_factory: Any, small_strategy_file: Path, isolated_home: Path
) -> None:
    _train(orch_factory(), small_strategy_file)
    _train(orch_factory(loggers=["csv"]), small_strategy_file, loggers=[])
    assert not (isolated_home / "runs").exists()


def test_unknown_loggers_are_refused_before_anything_is_stored(
    orch_factory: Any, small_strategy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orch = orch_factory()
    with pytest.raises(ConfigError, match="'wandb' is not an experiment logger"):
        orch.start_training(small_strategy_file, loggers=["wandb"])
    assert orch.list_operations().total_count == 0
    monkeypatch.setenv("KTRDR_LOGGERS", "csv,nope")
    with pytest.raises(ConfigError, match="KTRDR_LOGGERS='csv,nope'"):
        orch_factory()


def test_a_cancelled_run_keeps_its_completed_epochs_in_the_log(
    orch_factory: Any, small_strategy_file: Path, isolated_home: Path
) -> None:
    orch = orch_factory(loggers=["csv"])
    op = orch.start_training(small_strategy_file, epochs=500)
    for snap in op.follow(timeout=120):
        if snap.epoch >= 3:
            break
    op.cancel(reason="enough")
    assert op.wait(timeout=60).status == "cancelled"
    run = isolated_home / "runs" / "csv" / "small_test" / op.operation_id
    with (run / "metrics.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val_loss")]
    completed = len(orch.metrics(op.operation_id).epochs)
    assert len(rows) == completed >= 2
