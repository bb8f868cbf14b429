"""Training throughput: ``fit_model`` (Lightning) vs a hand-written PyTorch loop.

Both sides train the same MLP (hidden [50, 25], relu, dropout 0.2, Adam) on the same random
tensors (20k × 30 train, 2k validation), with the same batch slicing (:class:`TensorBatches`),
and validate once per epoch. Runs come in pairs, ours and plain back to back (which goes first
alternates), and repeat to damp noise on a shared machine. Two ratios ours/plain are printed
per batch size: best against best (the least disturbed epoch-loop time of each side) and the
median of the per-pair ratios (each pair saw about the same load, so this one moves least when
other processes come and go). Torch runs on one thread by default so that other processes on
the machine disturb both sides less. Goal: ≥ 0.9 at 512, ≥ 0.75 at 32. Also printed: the
end-to-end ratio that counts ``fit_model``'s Trainer set-up.

An LSTM row does the same for a recurrent model (2 × 32 cells over windows of 20 rows, batch
256): both sides cut each batch's windows from the same strided view of the rows
(:func:`~ktrdr_lib.training.batches.cut_windows`). Goal: ≥ 0.85.

Run: ``python bench/training_throughput.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from ktrdr_lib.features.dataset import DatasetSplits, SequenceWindows
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec, ModelTrainingSpec
from ktrdr_lib.training.batches import TensorBatches
from ktrdr_lib.training.fit import fit_model
from ktrdr_lib.training.module import build_network

N_TRAIN, N_VAL, N_FEATURES = 20_000, 2_000, 30
EPOCHS = {512: 12, 32: 3}
LSTM_WINDOW, LSTM_BATCH, LSTM_EPOCHS = 20, 256, 2


def make_splits(seed: int = 0) -> DatasetSplits:
    """Random features with a learnable label."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
        y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5]).astype(np.int64)
        return x, y

    (x_train, y_train), (x_val, y_val) = split(N_TRAIN), split(N_VAL)
    index = pd.date_range("2020-01-01", periods=N_TRAIN, freq="min", tz="UTC")
    return DatasetSplits(
        feature_names=[f"f{i}" for i in range(N_FEATURES)],
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_val,
        y_test=y_val,
        train_index=index,
        val_index=index[:N_VAL],
        test_index=index[:N_VAL],
    )


def make_window_splits(splits: DatasetSplits) -> DatasetSplits:
    """The same rows as windows: sample ``i`` is the ``LSTM_WINDOW`` rows ending at row ``i``
    of the training rows followed by the validation rows."""
    source = np.concatenate([splits.x_train, splits.x_val])
    train_ends = np.arange(LSTM_WINDOW - 1, N_TRAIN, dtype=np.int64)
    val_ends = np.arange(N_TRAIN, N_TRAIN + N_VAL, dtype=np.int64)
    windows = SequenceWindows(
        source=source,
        train_ends=train_ends,
        val_ends=val_ends,
        test_ends=val_ends,
        length=LSTM_WINDOW,
    )
    return DatasetSplits(
        feature_names=splits.feature_names,
        x_train=source[train_ends],
        y_train=splits.y_train[train_ends],
        x_val=splits.x_val,
        y_val=splits.y_val,
        x_test=splits.x_val,
        y_test=splits.y_val,
        train_index=splits.train_index[train_ends],
        val_index=splits.val_index,
        test_index=splits.test_index,
        windows=windows,
    )


def lstm_spec() -> ModelSpec:
    """The benchmark's LSTM."""
    return ModelSpec(
        type="lstm",
        architecture=ArchitectureSpec(
            sequence_length=LSTM_WINDOW, hidden_size=32, num_layers=2, dropout=0.2
        ),
        training=ModelTrainingSpec(batch_size=LSTM_BATCH, learning_rate=1e-3, optimizer="adam"),
    )


def _batches(splits: DatasetSplits, split: str, batch_size: int, shuffle: bool) -> TensorBatches:
    y = torch.from_numpy(getattr(splits, f"y_{split}"))
    windows = splits.windows
    if windows is None:
        x = torch.from_numpy(getattr(splits, f"x_{split}"))
        return TensorBatches(x, y, batch_size, shuffle=shuffle)
    ends = torch.from_numpy(getattr(windows, f"{split}_ends"))
    return TensorBatches(
        ends,
        y,
        batch_size,
        shuffle=shuffle,
        source=torch.from_numpy(windows.source),
        window=windows.length,
    )


def model_spec(batch_size: int) -> ModelSpec:
    """The benchmark's MLP and optimiser settings."""
    return ModelSpec(
        architecture=ArchitectureSpec(hidden_layers=[50, 25], dropout=0.2),
        training=ModelTrainingSpec(batch_size=batch_size, learning_rate=1e-3, optimizer="adam"),
    )


def run_ours(spec: ModelSpec, splits: DatasetSplits, epochs: int) -> tuple[float, float]:
    """(epoch-loop seconds, end-to-end seconds) of ``fit_model``."""
    started = time.perf_counter()
    outcome = fit_model(spec, splits, max_epochs=epochs, seed=0)
    total = time.perf_counter() - started
    return sum(record.duration_s for record in outcome.history), total


def run_plain(spec: ModelSpec, splits: DatasetSplits, epochs: int) -> tuple[float, float]:
    """(epoch-loop seconds, end-to-end seconds) of a hand-written loop doing the same work."""
    started = time.perf_counter()
    torch.manual_seed(0)
    network = build_network(spec, N_FEATURES)  # the same MLP or sequence network
    optimizer = torch.optim.Adam(network.parameters(), lr=spec.training.learning_rate)
    batch_size = spec.training.batch_size
    train = _batches(splits, "train", batch_size, shuffle=True)
    val = _batches(splits, "val", batch_size, shuffle=False)
    loop_seconds = 0.0
    for _ in range(epochs):
        epoch_started = time.perf_counter()
        network.train()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for x, y in train:
            logits = network(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
        network.eval()
        with torch.inference_mode():
            val_loss, val_correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
            for x, y in val:
                logits = network(x)
                val_loss += nn.functional.cross_entropy(logits, y) * y.shape[0]
                val_correct += (logits.argmax(dim=1) == y).sum()
        torch.stack((loss_sum, correct, val_loss, val_correct)).tolist()
        loop_seconds += time.perf_counter() - epoch_started
    return loop_seconds, time.perf_counter() - started


def main() -> None:
    """Alternate ours/plain per batch size and print samples/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per side and batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    splits = make_splits()
    windowed = make_window_splits(splits)
    print(f"torch threads: {torch.get_num_threads()}, train samples: {N_TRAIN}")
    cases = [
        (f"batch {size:>4}", model_spec(size), splits, epochs) for size, epochs in EPOCHS.items()
    ]
    cases.append((f"lstm {LSTM_BATCH:>5}", lstm_spec(), windowed, LSTM_EPOCHS))
    for name, spec, data, epochs in cases:
        run_ours(spec, data, 1)  # warm-up: imports, allocator, first Trainer
        run_plain(spec, data, 1)
        ours: list[tuple[float, float]] = []
        plain: list[tuple[float, float]] = []
        for repeat in range(args.repeats):
            if repeat % 2:
                plain.append(run_plain(spec, data, epochs))
                ours.append(run_ours(spec, data, epochs))
            else:
                ours.append(run_ours(spec, data, epochs))
                plain.append(run_plain(spec, data, epochs))
        samples = len(data.y_train) * epochs
        ours_rate = samples / min(loop for loop, _ in ours)
        plain_rate = samples / min(loop for loop, _ in plain)
        paired = statistics.median(p / o for (o, _), (p, _) in zip(ours, plain, strict=True))
        ours_total = samples / min(total for _, total in ours)
        plain_total = samples / min(total for _, total in plain)
        print(
            f"{name}: ours {ours_rate:>9,.0f} samples/s, plain "
            f"{plain_rate:>9,.0f} samples/s, ratio {ours_rate / plain_rate:.2f} "
            f"(median of pairs {paired:.2f}; end to end incl. Trainer set-up: "
            f"{ours_total / plain_total:.2f})"
        )


if __name__ == "__main__":
    main()
