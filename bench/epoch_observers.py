"""Epoch observers: what a callback that works at epoch ends costs the training loop.

Each row is one observer (a list of Lightning callbacks a run adds); each case trains the same
model on the same random tensors with and without the row's callbacks, side by side in one
process: runs come in pairs, on and off back to back (which goes first alternates), repeated to
damp noise. Printed per row and case: samples/s of each side (best of the repeats, whole
``Trainer.fit`` wall time, so the epoch-end work counts) and two ratios on/off: best against
best, and the median of the per-pair ratios. Goal: ≥ 0.95 (the observer costs under 5 %).

Rows: ``detailed analytics`` (:class:`~ktrdr_lib.training.analytics.DetailedAnalytics`:
parameter statistics, gradient norms of the epoch's last batch, an eval pass over the
validation split); ``epoch checkpoints`` (:class:`~ktrdr_lib.training.checkpoints.EpochCheckpoint`
writing ``latest.ckpt`` after every epoch, as every orchestrator run does by default);
``loggers csv+tb`` and ``loggers mlflow`` (:class:`~ktrdr_lib.training.experiment_logging.
ExperimentLogging` with those Lightning loggers, files in a temporary directory; MLflow in a
SQLite store, its run created in the fit). Cases: an MLP at batch 64 and a GRU over windows of
20 rows at batch 256.
Torch runs on one thread by default (``--threads``) so other processes disturb both sides
alike.

Run: ``python bench/epoch_observers.py [--repeats 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ktrdr_lib.features.dataset import DatasetSplits, SequenceWindows
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec, ModelTrainingSpec
from ktrdr_lib.training.analytics import DetailedAnalytics
from ktrdr_lib.training.checkpoints import CheckpointMeta, CheckpointPlan
from ktrdr_lib.training.experiment_logging import ExperimentLogging
from ktrdr_lib.training.fit import fit_model
from ktrdr_lib.training.loggers import experiment_loggers

N_TRAIN, N_VAL, N_FEATURES = 20_000, 4_000, 30
WINDOW = 20


@dataclass(frozen=True)
class Case:
    """A model and its data, trained ``epochs`` epochs per run."""

    name: str
    spec: ModelSpec
    splits: DatasetSplits
    epochs: int


@dataclass(frozen=True)
class ObserverRow:
    """An observer: the ``fit_model`` arguments it adds to a run of ``splits`` (callbacks, a
    checkpoint plan), given a fresh scratch directory."""

    name: str
    arguments: Callable[[DatasetSplits, Path], dict[str, Any]]


def _analytics(splits: DatasetSplits, scratch: Path) -> dict[str, Any]:
    windows = splits.windows
    if windows is None:
        return {
            "callbacks": [
                DetailedAnalytics(splits.x_val, splits.y_val, class_names=splits.class_names)
            ]
        }
    return {
        "callbacks": [
            DetailedAnalytics(
                windows.source,
                splits.y_val,
                class_names=splits.class_names,
                windows=(windows.val_ends, windows.length),
            )
        ]
    }


def _checkpoints(splits: DatasetSplits, scratch: Path) -> dict[str, Any]:
    meta = CheckpointMeta(
        operation_id=scratch.name,
        epoch=0,
        best_epoch=0,
        total_epochs=0,
        strategy_fingerprint="bench",
        data_fingerprints={},
    )
    return {"checkpoint": CheckpointPlan(directory=scratch, every=1, meta=meta)}


def _loggers(names: list[str]) -> Callable[[DatasetSplits, Path], dict[str, Any]]:
    def arguments(splits: DatasetSplits, scratch: Path) -> dict[str, Any]:
        loggers = experiment_loggers(
            names, runs_dir=scratch, strategy="bench", operation_id=scratch.name
        )
        return {"callbacks": [ExperimentLogging(loggers, {"bench": True, "features": N_FEATURES})]}

    return arguments


ROWS: list[ObserverRow] = [
    ObserverRow("detailed analytics", _analytics),
    ObserverRow("epoch checkpoints", _checkpoints),
    ObserverRow("loggers csv+tb", _loggers(["csv", "tensorboard"])),
    ObserverRow("loggers mlflow", _loggers(["mlflow"])),
]
"""One row per observer; add a row to measure another."""


def make_splits(seed: int = 0) -> DatasetSplits:
    """Random features with a learnable label; the GRU case cuts windows from the same rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_TRAIN + N_VAL, N_FEATURES)).astype(np.float32)
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5]).astype(np.int64)
    index = pd.date_range("2020-01-01", periods=N_TRAIN + N_VAL, freq="min", tz="UTC")
    return DatasetSplits(
        feature_names=[f"f{i}" for i in range(N_FEATURES)],
        x_train=x[:N_TRAIN],
        y_train=y[:N_TRAIN],
        x_val=x[N_TRAIN:],
        y_val=y[N_TRAIN:],
        x_test=x[N_TRAIN:],
        y_test=y[N_TRAIN:],
        train_index=index[:N_TRAIN],
        val_index=index[N_TRAIN:],
        test_index=index[N_TRAIN:],
    )


def window_splits(splits: DatasetSplits) -> DatasetSplits:
    """The same rows as windows of ``WINDOW`` rows (sample ``i`` ends at row ``i``)."""
    source = np.concatenate([splits.x_train, splits.x_val])
    train_ends = np.arange(WINDOW - 1, N_TRAIN, dtype=np.int64)
    val_ends = np.arange(N_TRAIN, N_TRAIN + N_VAL, dtype=np.int64)
    windows = SequenceWindows(
        source=source, train_ends=train_ends, val_ends=val_ends, test_ends=val_ends, length=WINDOW
    )
    return DatasetSplits(
        feature_names=splits.feature_names,
        x_train=source[train_ends],
        y_train=splits.y_train[WINDOW - 1 :],
        x_val=source[val_ends],
        y_val=splits.y_val,
        x_test=source[val_ends],
        y_test=splits.y_val,
        train_index=splits.train_index[WINDOW - 1 :],
        val_index=splits.val_index,
        test_index=splits.val_index,
        windows=windows,
    )


def cases() -> list[Case]:
    splits = make_splits()
    mlp = ModelSpec(
        architecture=ArchitectureSpec(hidden_layers=[50, 25], dropout=0.2),
        training=ModelTrainingSpec(batch_size=64, learning_rate=0.001),
    )
    gru = ModelSpec(
        type="gru",
        architecture=ArchitectureSpec(sequence_length=WINDOW, hidden_size=32, num_layers=2),
        training=ModelTrainingSpec(batch_size=256, learning_rate=0.001),
    )
    return [
        Case("mlp batch 64", mlp, splits, 3),
        Case("gru batch 256", gru, window_splits(splits), 2),
    ]


def fit_seconds(case: Case, arguments: dict[str, Any]) -> float:
    """``Trainer.fit`` wall time of one run (training, validation and every epoch-end hook)."""
    outcome = fit_model(case.spec, case.splits, max_epochs=case.epochs, seed=0, **arguments)
    return outcome.training_time_s


def _scratch(root: Path) -> Path:
    path = root / uuid.uuid4().hex[:12]
    path.mkdir()
    return path


def measure(row: ObserverRow, case: Case, repeats: int, root: Path) -> str:
    """One printed line: samples/s off and on, and the ratios on/off."""
    fit_seconds(case, {})  # warm-up: allocator, first Trainer
    fit_seconds(case, row.arguments(case.splits, _scratch(root)))
    off: list[float] = []
    on: list[float] = []
    for repeat in range(repeats):
        for side in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
            if side == "on":
                on.append(fit_seconds(case, row.arguments(case.splits, _scratch(root))))
            else:
                off.append(fit_seconds(case, {}))
    samples = len(case.splits.y_train) * case.epochs
    off_rate, on_rate = samples / min(off), samples / min(on)
    paired = statistics.median(o / n for o, n in zip(off, on, strict=True))
    return (
        f"{row.name:18} {case.name:14}: off {off_rate:>9,.0f} samples/s, on "
        f"{on_rate:>9,.0f} samples/s, ratio on/off {on_rate / off_rate:.3f} "
        f"(median of pairs {paired:.3f})"
    )


def main() -> None:
    """Every row against every case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs per row and case")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    print(f"torch threads: {torch.get_num_threads()}, train samples: {N_TRAIN}, val: {N_VAL}")
    with tempfile.TemporaryDirectory(prefix="ktrdr-epoch-observers-") as tmp:
        for case in cases():
            for row in ROWS:
                print(measure(row, case, args.repeats, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
