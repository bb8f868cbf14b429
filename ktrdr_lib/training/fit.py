"""fit_model: train a FuzzyMLP on already-scaled DatasetSplits with Lightning.

The Trainer runs without logger, checkpointing, progress bar, model summary or sanity
validation; callers add their own progress and cancel callbacks. Early stopping follows
``model.training.early_stopping`` with Lightning's ``EarlyStopping`` rule (patience, min_delta),
and the best epoch's weights (lowest ``val_loss``, or highest ``val_accuracy`` when that is the
monitor) are kept in memory and restored when training ends. Same spec, data and seed give
identical figures on CPU.

Speed: every optimiser step is one Lightning batch, so callbacks see every batch; what Lightning
does around a batch is kept small. Batch sources go to ``fit`` directly (no data module, whose
hook resolution costs override checks every batch), the profiler is a do-nothing one without a
generator per hook, and epoch figures reach callbacks through ``FuzzyMLP.epoch_metrics`` rather
than ``self.log`` (so ``trainer.callback_metrics`` stays empty).

Stopping:
    * an exception raised by a callback propagates unchanged (a cancel exception stays one);
    * a callback that sets ``trainer.should_stop = True`` at an epoch's end (the graceful stop
      of :class:`~ktrdr_lib.progress.cancel_callback.CancelCallback`) ends training after that
      epoch and its validation; ``FitOutcome.stop_reason`` is ``"stopped_by_callback"``. One
      that sets it mid-epoch ends training after the current batch, and that partial epoch is
      not recorded anywhere: the history holds complete epochs only, and the best weights
      come from one of them;
    * a NaN or infinite loss raises :class:`~ktrdr_lib.errors.TrainingError` at the end of the
      epoch, naming the epoch and the first bad batch.

Example:
    >>> outcome = fit_model(spec.model, splits, seed=7)          # doctest: +SKIP
    >>> outcome.best_epoch, outcome.history[-1].val_accuracy      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning
import msgspec
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ProgressBar
from lightning.pytorch.profilers import PassThroughProfiler
from typing_extensions import override

from ktrdr_lib.errors import TrainingError
from ktrdr_lib.features.dataset import DatasetSplits
from ktrdr_lib.strategy.spec import EarlyStoppingSpec, ModelSpec, ModelTrainingSpec, TrainingSpec
from ktrdr_lib.training.batches import TensorBatches
from ktrdr_lib.training.checkpoints import CheckpointPlan, EpochCheckpoint
from ktrdr_lib.training.module import FuzzyMLP, inverse_frequency_weights
from ktrdr_lib.training.quiet import quiet_lightning

__all__ = ["EpochRecord", "FitOutcome", "StopReason", "fit_model"]

StopReason = Literal["early_stopping", "stopped_by_callback"]


class EpochRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the epoch history.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean cross-entropy over the epoch's training samples.
        train_accuracy: fraction of training samples classified right during the epoch.
        val_loss: mean cross-entropy on the validation split after the epoch.
        val_accuracy: validation accuracy after the epoch.
        learning_rate: the optimiser's learning rate during the epoch.
        duration_s: wall time of the epoch, validation included.
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    duration_s: float


@dataclass
class FitOutcome:
    """What :func:`fit_model` returns.

    Attributes:
        module: the trained module, holding the best epoch's weights.
        history: one :class:`EpochRecord` per epoch that ran to its end (a partial epoch a
            callback stopped is not in it).
        best_epoch: 1-based epoch whose weights ``module`` holds (0 when no epoch completed).
        epochs_completed: epochs that ran to their end (``len(history)``).
        early_stopped: training ended before ``max_epochs`` (see ``stop_reason``).
        stop_reason: ``"early_stopping"``, ``"stopped_by_callback"`` or ``None``.
        training_time_s: wall time of ``Trainer.fit``.
        samples_per_epoch: training samples per epoch.
        batches_per_epoch: training batches per epoch (per process).
        global_rank: this process's rank (0 unless training is distributed).
    """

    module: FuzzyMLP
    history: list[EpochRecord]
    best_epoch: int
    epochs_completed: int
    early_stopped: bool
    stop_reason: StopReason | None
    training_time_s: float
    samples_per_epoch: int
    batches_per_epoch: int
    global_rank: int = 0


class _TrainerBatches(TensorBatches):
    """A split's batches, placed on the trainer's device and rank shard when Lightning asks.

    Lightning first takes ``len()`` of a loader inside ``fit``, after the strategy has set the
    device and ranks; the tensors move there once. Passed to ``fit`` directly (no
    ``LightningDataModule``), the batch-transfer hooks resolve to the module without the
    per-batch override checks a data module costs.
    """

    def __init__(
        self,
        trainer: lightning.Trainer,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        weights: np.ndarray | None = None,
        windows: tuple[torch.Tensor, np.ndarray, int] | None = None,
    ) -> None:
        super().__init__(
            (
                torch.as_tensor(x, dtype=torch.float32)
                if windows is None
                else torch.as_tensor(windows[1], dtype=torch.int64)
            ),
            torch.as_tensor(y, dtype=torch.float32 if y.dtype.kind == "f" else torch.int64),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            weights=None if weights is None else torch.as_tensor(weights, dtype=torch.float64),
            source=None if windows is None else windows[0],
            window=0 if windows is None else windows[2],
        )
        self._trainer: lightning.Trainer | None = trainer

    def _place_once(self) -> None:
        trainer = self._trainer
        if trainer is not None:
            self._trainer = None
            self.place(
                trainer.strategy.root_device,
                rank=trainer.global_rank,
                world_size=trainer.world_size,
            )

    @property
    def samples(self) -> int:
        """Samples this rank sees per epoch."""
        self._place_once()
        return super().samples

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._place_once()
        return super().__iter__()


class _SilentProfiler(PassThroughProfiler):
    """Lightning's do-nothing profiler, minus the generator it builds around every hook call.

    The Trainer wraps each hook, fetch and step in ``profiler.profile(...)`` (about 25 times a
    batch); one shared ``nullcontext`` leaves each costing a method call.
    """

    _NOTHING: ClassVar[AbstractContextManager[None]] = nullcontext()

    @override
    def profile(self, action_name: str) -> AbstractContextManager[None]:  # type: ignore[override]
        return self._NOTHING


class _EpochHistory(Callback):
    """Records an :class:`EpochRecord` per validated complete epoch, keeps the best weights,
    and stops early when ``model.training.early_stopping`` says so. A partial epoch (a callback
    stopped it mid-way; Lightning still validates it) is neither recorded nor a candidate for
    the best weights.

    Early stopping follows Lightning's ``EarlyStopping`` rule: an epoch improves when the
    monitored figure beats the best so far by more than ``min_delta``; after ``patience``
    epochs without improvement training stops. It reads :attr:`FuzzyMLP.epoch_metrics`, which
    are already reduced across ranks, so every rank takes the same decision without a
    collective, and no figure goes through ``self.log`` (~0.5 ms a call).
    """

    def __init__(self, monitor: str, stopping: EarlyStoppingSpec | None) -> None:
        self.monitor = monitor
        self.stopping = stopping
        self.records: list[EpochRecord] = []
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.early_stopped = False
        self._best_value: float | None = None
        self._stopping_best: float | None = None
        self._epochs_without_improvement = 0
        self._epoch_started = 0.0

    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        self._epoch_started = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        """The history, best weights and early-stopping counters (a checkpoint keeps them)."""
        return {
            "records": [msgspec.to_builtins(record) for record in self.records],
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "early_stopped": self.early_stopped,
            "best_value": self._best_value,
            "stopping_best": self._stopping_best,
            "epochs_without_improvement": self._epochs_without_improvement,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a checkpoint's :meth:`state_dict`."""
        self.records = [msgspec.convert(row, EpochRecord) for row in state_dict["records"]]
        self.best_epoch = int(state_dict["best_epoch"])
        self.best_state = state_dict["best_state"]
        self.early_stopped = bool(state_dict["early_stopped"])
        self._best_value = state_dict["best_value"]
        self._stopping_best = state_dict["stopping_best"]
        self._epochs_without_improvement = int(state_dict["epochs_without_improvement"])

    def on_validation_end(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        if (
            not trainer.sanity_checking
            and isinstance(pl_module, FuzzyMLP)
            and pl_module.train_batches_run >= trainer.num_training_batches
        ):
            self._record(trainer, pl_module)
            self._check_stopping(trainer, pl_module.epoch_metrics[self.monitor])

    def _record(self, trainer: lightning.Trainer, pl_module: FuzzyMLP) -> None:
        figures = pl_module.epoch_metrics
        record = EpochRecord(
            epoch=trainer.current_epoch + 1,
            learning_rate=float(trainer.optimizers[0].param_groups[0]["lr"]),
            duration_s=time.perf_counter() - self._epoch_started,
            **figures,
        )
        self.records.append(record)
        if self._beats(figures[self.monitor], self._best_value, 0.0):
            self._best_value = figures[self.monitor]
            self.best_epoch = record.epoch
            self.best_state = {
                key: value.detach().clone() for key, value in pl_module.state_dict().items()
            }

    def _check_stopping(self, trainer: lightning.Trainer, value: float) -> None:
        if self.stopping is None:
            return
        if self._beats(value, self._stopping_best, self.stopping.min_delta):
            self._stopping_best = value
            self._epochs_without_improvement = 0
            return
        self._epochs_without_improvement += 1
        if self._epochs_without_improvement >= self.stopping.patience:
            self.early_stopped = True
            trainer.should_stop = True

    def _beats(self, value: float, best: float | None, margin: float) -> bool:
        if best is None:
            return True
        if self.monitor == "val_accuracy":
            return value > best + margin
        return value < best - margin


def fit_model(
    model_spec: ModelSpec,
    splits: DatasetSplits,
    *,
    seed: int = 42,
    max_epochs: int | None = None,
    callbacks: Sequence[Callback] = (),
    accelerator: str = "cpu",
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str | None = None,
    default_root_dir: Path | None = None,
    loss: TrainingSpec | None = None,
    checkpoint: CheckpointPlan | None = None,
) -> FitOutcome:
    """Train a :class:`FuzzyMLP` on scaled splits and restore the best epoch's weights.

    Args:
        model_spec: the strategy's ``model`` section.
        splits: train/validation arrays, features ALREADY scaled by the caller.
        seed: seeds weights, dropout and the per-epoch shuffling.
        max_epochs: overrides ``model.training.epochs`` when given.
        callbacks: extra Lightning callbacks (progress, cancellation); their exceptions
            propagate.
        accelerator: Lightning accelerator (``"cpu"``, ``"gpu"``, ``"auto"``...).
        devices: Lightning devices.
        strategy: Lightning strategy (``"auto"``, ``"ddp"``...).
        precision: Lightning precision (``"32-true"``, ``"16-mixed"``...); ``None`` for the default.
        default_root_dir: Lightning's working directory (nothing is written there by default).
        loss: the strategy's ``training`` section, for its loss (``focal`` with
            ``focal_gamma``; ``huber`` with ``huber_delta`` or ``mse`` for a regression) and
            class weighting (focal, or ``balanced_sampling``: inverse frequency on the training
            labels); ``None`` for plain cross-entropy (Huber for a regression). Float labels
            make the model a regression (one output).
        checkpoint: write epoch checkpoints (and resume from one) as it says; ``None``: none.
            A resumed fit continues the epoch count, history, best weights, early-stopping
            counters, optimiser, shuffling and RNG exactly where the checkpoint left them.

    Returns:
        The trained module with its history and how training ended.

    Raises:
        TrainingError: on empty splits, labels outside 0..2, mismatched shapes, or a loss that
            became NaN/inf.
    """
    _check_splits(splits)
    settings = model_spec.training
    epochs = settings.epochs if max_epochs is None else max_epochs
    if epochs < 1:
        raise TrainingError(
            f"max_epochs must be ≥ 1; got {epochs}. Set model.training.epochs or max_epochs."
        )
    lightning.seed_everything(seed, verbose=False)
    regression = splits.y_train.dtype.kind == "f"
    focal = loss is not None and loss.loss == "focal"
    weighted = not regression and loss is not None and (focal or loss.balanced_sampling)
    module = FuzzyMLP(
        model_spec,
        n_features=splits.x_train.shape[1],
        focal_gamma=loss.focal_gamma if focal and loss is not None else 0.0,
        class_weights=(
            inverse_frequency_weights(
                torch.as_tensor(splits.y_train, dtype=torch.int64), len(splits.class_names)
            )
            if weighted
            else None
        ),
        class_names=splits.class_names,
        regression=regression,
        regression_loss="mse" if loss is not None and loss.loss == "mse" else "huber",
        huber_delta=loss.huber_delta if loss is not None else 0.01,
    )
    stopping = settings.early_stopping
    history = _EpochHistory(stopping.monitor if stopping else "val_loss", stopping)
    if checkpoint is not None:
        callbacks = [*callbacks, EpochCheckpoint(checkpoint, lambda: history.best_epoch)]
    with quiet_lightning():
        return _fit(
            module,
            splits,
            settings,
            history,
            seed=seed,
            epochs=epochs,
            callbacks=callbacks,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            precision=precision,
            default_root_dir=default_root_dir,
            checkpoint=checkpoint,
        )


def _fit(
    module: FuzzyMLP,
    splits: DatasetSplits,
    settings: ModelTrainingSpec,
    history: _EpochHistory,
    *,
    seed: int,
    epochs: int,
    callbacks: Sequence[Callback],
    accelerator: str,
    devices: int | str,
    strategy: str,
    precision: str | None,
    default_root_dir: Path | None,
    checkpoint: CheckpointPlan | None,
) -> FitOutcome:
    """Build the Trainer, fit and gather the outcome (Lightning's INFO lines kept quiet)."""
    trainer = lightning.Trainer(
        max_epochs=epochs,
        callbacks=[history, *callbacks],
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,  # type: ignore[arg-type]
        default_root_dir=default_root_dir,
        logger=False,
        enable_checkpointing=checkpoint is not None,  # only ours (EpochCheckpoint)
        enable_progress_bar=any(isinstance(cb, ProgressBar) for cb in callbacks),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        profiler=_SilentProfiler(),
    )
    windows = splits.windows
    source = None if windows is None else torch.as_tensor(windows.source)
    train = _TrainerBatches(
        trainer,
        splits.x_train,
        splits.y_train,
        settings.batch_size,
        shuffle=True,
        seed=seed,
        weights=splits.w_train,
        windows=None
        if windows is None or source is None
        else (source, windows.train_ends, windows.length),
    )
    val = _TrainerBatches(
        trainer,
        splits.x_val,
        splits.y_val,
        settings.batch_size,
        shuffle=False,
        seed=seed,
        windows=None
        if windows is None or source is None
        else (source, windows.val_ends, windows.length),
    )
    resume = None if checkpoint is None else checkpoint.resume_from
    if resume is not None and checkpoint is not None:
        train.begin_at_epoch(checkpoint.resume_epoch)
    started = time.perf_counter()
    trainer.fit(
        module,
        train_dataloaders=train,
        val_dataloaders=val,
        ckpt_path=resume,
        weights_only=False if resume is not None else None,  # our own files: RNG states
    )
    training_time = time.perf_counter() - started
    if history.best_state is not None:
        module.load_state_dict(history.best_state)
    stop_reason = _stop_reason(trainer, history)
    return FitOutcome(
        module=module,
        history=history.records,
        best_epoch=history.best_epoch,
        epochs_completed=len(history.records),
        early_stopped=stop_reason is not None,
        stop_reason=stop_reason,
        training_time_s=training_time,
        samples_per_epoch=int(splits.x_train.shape[0]),
        batches_per_epoch=int(trainer.num_training_batches),
        global_rank=int(trainer.global_rank),
    )


def _stop_reason(trainer: lightning.Trainer, history: _EpochHistory) -> StopReason | None:
    if history.early_stopped:
        return "early_stopping"
    if trainer.should_stop:
        return "stopped_by_callback"
    return None


def _check_splits(splits: DatasetSplits) -> None:
    for split in ("train", "val"):
        x: np.ndarray = getattr(splits, f"x_{split}")
        y: np.ndarray = getattr(splits, f"y_{split}")
        if x.ndim != 2 or x.shape[0] == 0:
            raise TrainingError(
                f"the {split} split has no samples (features shape {x.shape}); widen the date "
                "range or raise training.data_split fractions."
            )
        if y.shape != (x.shape[0],):
            raise TrainingError(
                f"the {split} split has {x.shape[0]} feature rows but labels of shape "
                f"{y.shape}; build features and labels from the same rows."
            )
        if y.dtype.kind == "f":  # regression targets: any finite values
            if not np.isfinite(y).all():
                raise TrainingError(
                    f"the {split} split has non-finite regression targets; check the label step."
                )
        elif y.min() < 0 or y.max() >= len(splits.class_names):
            classes = ", ".join(f"{i} ({name})" for i, name in enumerate(splits.class_names))
            raise TrainingError(
                f"the {split} split has labels outside {classes}: found "
                f"{sorted(set(np.unique(y).tolist()))}; check the label step."
            )
        if x.shape[1] != splits.x_train.shape[1]:
            raise TrainingError(
                f"the {split} split has {x.shape[1]} feature columns but train has "
                f"{splits.x_train.shape[1]}; build all splits from the same feature columns."
            )
