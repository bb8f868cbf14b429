"""fit_model: learning, determinism, early stopping, best weights, stops and failures."""

from __future__ import annotations

from typing import Any

import lightning
import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.callbacks import Callback

from ktrdr_lib.errors import TrainingError
from ktrdr_lib.features.dataset import DatasetSplits
from ktrdr_lib.strategy.spec import (
    ArchitectureSpec,
    EarlyStoppingSpec,
    ModelSpec,
    ModelTrainingSpec,
    TrainingSpec,
)
from ktrdr_lib.training.evaluation import evaluate
from ktrdr_lib.training.fit import fit_model

# Lightning 2.6 on torch 2.13 builds a deprecated LeafSpec for every loader (a FutureWarning
# the pyproject filter, written for DeprecationWarning, does not catch).
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

N_FEATURES = 6


def make_splits(
    n_train: int = 480, n_eval: int = 160, *, signal: bool = True, seed: int = 0
) -> DatasetSplits:
    """Gaussian features; the label is the band of feature 0 (or random without signal)."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
        y = np.digitize(x[:, 0], [-0.4, 0.4]) if signal else rng.integers(0, 3, n)
        return x, y.astype(np.int64)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        split(n_train),
        split(n_eval),
        split(n_eval),
    )
    times = pd.date_range("2021-01-01", periods=n_train + 2 * n_eval, freq="h", tz="UTC")
    return DatasetSplits(
        feature_names=[f"1h_f{i}" for i in range(N_FEATURES)],
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        train_index=times[:n_train],
        val_index=times[n_train : n_train + n_eval],
        test_index=times[n_train + n_eval :],
    )


def model_spec(
    *, epochs: int = 8, early_stopping: EarlyStoppingSpec | None = None, lr: float = 0.01
) -> ModelSpec:
    return ModelSpec(
        architecture=ArchitectureSpec(hidden_layers=[16, 8], dropout=0.1),
        training=ModelTrainingSpec(
            learning_rate=lr, batch_size=32, epochs=epochs, early_stopping=early_stopping
        ),
    )


class StopAt(Callback):
    """Sets ``trainer.should_stop`` after batch ``batch`` of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(
        self, trainer: lightning.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            trainer.should_stop = True


class Cancelled(Exception):
    """Stands in for the project's cancel exception."""


class RaiseAt(Callback):
    def on_train_batch_start(
        self, trainer: lightning.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 3:
            raise Cancelled("cancel requested")


def test_learns_the_signal_and_reports_the_run() -> None:
    splits = make_splits()
    outcome = fit_model(model_spec(epochs=8), splits)
    assert outcome.epochs_completed == 8
    assert [record.epoch for record in outcome.history] == list(range(1, 9))
    assert outcome.early_stopped is False
    assert outcome.stop_reason is None
    assert outcome.samples_per_epoch == 480
    assert outcome.batches_per_epoch == 15
    assert all(record.learning_rate == 0.01 for record in outcome.history)
    assert all(record.duration_s > 0 for record in outcome.history)
    assert outcome.history[-1].train_loss < outcome.history[0].train_loss
    best = outcome.history[outcome.best_epoch - 1]
    assert best.val_loss == min(record.val_loss for record in outcome.history)
    assert best.val_accuracy > 0.8  # the majority class alone is ~0.35
    assert outcome.module.latest_batch_loss is not None


def test_same_seed_gives_identical_runs_and_another_seed_does_not() -> None:
    splits = make_splits()

    def figures(seed: int) -> tuple[list[tuple[float, ...]], list[np.ndarray]]:
        outcome = fit_model(model_spec(epochs=3), splits, seed=seed)
        history = [
            (r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy) for r in outcome.history
        ]
        return history, [p.detach().numpy() for p in outcome.module.parameters()]

    first, second, other = figures(5), figures(5), figures(6)
    assert first[0] == second[0]
    assert all(np.array_equal(a, b) for a, b in zip(first[1], second[1], strict=True))
    assert first[0] != other[0]


def test_early_stopping_ends_the_run_and_restores_the_best_epoch() -> None:
    splits = make_splits(signal=False)
    stopping = EarlyStoppingSpec(patience=2, monitor="val_loss", min_delta=0.0)
    outcome = fit_model(model_spec(epochs=60, early_stopping=stopping, lr=0.05), splits)
    assert outcome.early_stopped is True
    assert outcome.stop_reason == "early_stopping"
    assert outcome.epochs_completed < 60
    assert outcome.epochs_completed - outcome.best_epoch >= 2
    best = outcome.history[outcome.best_epoch - 1]
    assert best.val_loss == min(record.val_loss for record in outcome.history)
    # The returned weights are the best epoch's: evaluating them reproduces its val loss.
    val = evaluate(outcome.module, splits.x_val, splits.y_val, majority_class=1)
    assert val.loss == pytest.approx(best.val_loss, rel=1e-5)


def test_early_stopping_needs_an_improvement_beyond_min_delta() -> None:
    # No epoch can beat the first by 10 nats: training stops after exactly `patience` more.
    stopping = EarlyStoppingSpec(patience=3, monitor="val_loss", min_delta=10.0)
    outcome = fit_model(model_spec(epochs=20, early_stopping=stopping), make_splits())
    assert outcome.stop_reason == "early_stopping"
    assert outcome.epochs_completed == 1 + 3
    # The best weights still follow the plain minimum, min_delta or not.
    best = outcome.history[outcome.best_epoch - 1]
    assert best.val_loss == min(record.val_loss for record in outcome.history)


class CountBatches(Callback):
    """Counts the batch hooks a callback sees and Lightning's batch count per epoch."""

    def __init__(self) -> None:
        self.started = self.ended = 0
        self.totals: list[int] = []

    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        self.totals.append(int(trainer.num_training_batches))

    def on_train_batch_start(
        self, trainer: lightning.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self.started += 1

    def on_train_batch_end(
        self, trainer: lightning.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.ended += 1


def test_callbacks_see_every_optimiser_step_as_one_batch() -> None:
    counter = CountBatches()
    outcome = fit_model(model_spec(epochs=3), make_splits(), callbacks=[counter])
    assert counter.totals == [15, 15, 15]  # ceil(480 / 32)
    assert counter.started == counter.ended == 3 * 15
    assert outcome.batches_per_epoch == 15
    optimizer = outcome.module.trainer.optimizers[0]
    assert all(int(state["step"]) == 3 * 15 for state in optimizer.state.values())


def test_val_accuracy_monitor_picks_the_most_accurate_epoch() -> None:
    stopping = EarlyStoppingSpec(patience=50, monitor="val_accuracy", min_delta=0.0)
    outcome = fit_model(model_spec(epochs=5, early_stopping=stopping), make_splits())
    accuracies = [record.val_accuracy for record in outcome.history]
    assert outcome.best_epoch == accuracies.index(max(accuracies)) + 1
    assert outcome.stop_reason is None


def test_a_mid_epoch_callback_stop_leaves_the_partial_epoch_out_of_the_history() -> None:
    outcome = fit_model(model_spec(epochs=10), make_splits(), callbacks=[StopAt(epoch=1, batch=4)])
    assert outcome.early_stopped is True
    assert outcome.stop_reason == "stopped_by_callback"
    assert outcome.epochs_completed == 1
    assert [record.epoch for record in outcome.history] == [1]
    assert outcome.best_epoch == 1


def test_a_stop_inside_the_first_epoch_records_no_epoch() -> None:
    outcome = fit_model(model_spec(epochs=3), make_splits(), callbacks=[StopAt(epoch=0, batch=0)])
    assert outcome.best_epoch == 0
    assert outcome.history == []
    assert outcome.epochs_completed == 0


class StopAtEpochEnd(Callback):
    """Sets ``trainer.should_stop`` at the end of epoch ``epoch`` (0-based), as a graceful stop."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def test_a_stop_at_an_epoch_end_keeps_that_validated_epoch() -> None:
    outcome = fit_model(model_spec(epochs=10), make_splits(), callbacks=[StopAtEpochEnd(1)])
    assert outcome.stop_reason == "stopped_by_callback"
    assert [record.epoch for record in outcome.history] == [1, 2]
    assert all(0.0 <= record.val_accuracy <= 1.0 for record in outcome.history)


def test_exceptions_from_callbacks_propagate_unchanged() -> None:
    with pytest.raises(Cancelled, match="cancel requested"):
        fit_model(model_spec(epochs=3), make_splits(), callbacks=[RaiseAt()])


def test_non_finite_loss_is_a_training_error_naming_epoch_and_batch() -> None:
    splits = make_splits()
    splits.x_train[7, 0] = np.inf
    with pytest.raises(
        TrainingError,
        match=r"train_loss became nan in epoch 1, first at train batch \d+.*learning_rate",
    ):
        fit_model(model_spec(epochs=3), splits)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"y_train": np.full(480, 3, dtype=np.int64)}, "labels outside"),
        (
            {"x_val": np.zeros((0, N_FEATURES), np.float32), "y_val": np.zeros(0, np.int64)},
            "validation|val split has no samples",
        ),
        ({"y_train": np.zeros(10, dtype=np.int64)}, "labels of shape"),
    ],
)
def test_unusable_splits_are_training_errors(change: dict[str, np.ndarray], fragment: str) -> None:
    base = make_splits()
    splits = DatasetSplits(**{**base.__dict__, **change})
    with pytest.raises(TrainingError, match=fragment):
        fit_model(model_spec(epochs=1), splits)


def test_max_epochs_must_be_positive() -> None:
    with pytest.raises(TrainingError, match="max_epochs"):
        fit_model(model_spec(), make_splits(), max_epochs=0)


def _imbalanced_splits() -> DatasetSplits:
    """Feature 0 decides the class, but about 80 % of the rows are HOLD."""
    splits = make_splits(n_train=900, n_eval=300, seed=5)

    def skew(x: np.ndarray) -> np.ndarray:
        return np.where(x[:, 0] > 1.3, 0, np.where(x[:, 0] < -1.3, 2, 1)).astype(np.int64)

    return DatasetSplits(
        feature_names=splits.feature_names,
        x_train=splits.x_train,
        y_train=skew(splits.x_train),
        x_val=splits.x_val,
        y_val=skew(splits.x_val),
        x_test=splits.x_test,
        y_test=skew(splits.x_test),
        train_index=splits.train_index,
        val_index=splits.val_index,
        test_index=splits.test_index,
    )


def test_class_weights_and_focal_loss_reach_the_minority_classes() -> None:
    splits = _imbalanced_splits()
    assert (splits.y_train == 1).mean() > 0.75
    spec = model_spec(epochs=2, lr=0.005)  # short training: the majority class dominates
    outcomes = {
        name: fit_model(spec, splits, seed=3, loss=loss)
        for name, loss in (
            ("plain", None),
            ("balanced", TrainingSpec(balanced_sampling=True)),
            ("focal", TrainingSpec(loss="focal", focal_gamma=2.0)),
        )
    }
    weights = outcomes["balanced"].module.class_weights
    assert weights is not None and weights[0] > 3 * weights[1]
    assert outcomes["plain"].module.class_weights is None
    assert outcomes["focal"].module.focal_gamma == 2.0
    minority_recall = {}
    for name, outcome in outcomes.items():
        metrics = evaluate(outcome.module, splits.x_test, splits.y_test, majority_class=1)
        minority_recall[name] = (
            metrics.per_class["BUY"].recall + metrics.per_class["SELL"].recall
        ) / 2
    assert minority_recall["plain"] < 0.5
    assert minority_recall["balanced"] > 0.8
    assert minority_recall["focal"] > 0.8
