"""DetailedAnalytics: the Lightning callback that records what KTRDR's training analytics did.

At the end of every completed epoch (after its validation; never per batch) and on global rank
zero only, it records:

* the learning rate and, per named parameter tensor, the L2 norm of the gradient of the
  epoch's last training batch, and the tensor's mean, standard deviation and largest absolute
  value (one host sync for all of them). The gradients are read at that batch's end (the
  per-batch hook only compares the batch index otherwise): Lightning releases ``p.grad``
  before validation runs, so they are gone by the epoch's end;
* for a classifier, per-class precision, recall and F1 on the validation split, their macro
  F1, and how confident the predictions were (mean highest probability, mean entropy, share
  above ``confidence_threshold``);
* for a regression, the validation MAE, RMSE, directional accuracy and the predictions' mean
  and spread.

The validation figures reuse the outputs of the validation Lightning runs anyway: a forward hook
on the network, present only while validation runs, keeps each batch's outputs (and the
callback keeps its labels), so the training steps are untouched and no second pass is paid.
Under DDP, where rank zero validates only its shard, the callback runs its own eval-mode pass
over the whole validation split (windows, for an LSTM/GRU) under ``torch.inference_mode()``
instead, with the tensors placed on the device once. Neither draws random numbers, so a run
with analytics trains to the same weights as one without. A partial epoch (a stop inside it)
is not recorded, as in the epoch history. Off, nothing of this exists: the pipeline adds the
callback only when a run asks for analytics.

:meth:`DetailedAnalytics.analytics` adds what is known at the end (stop reason, best epoch)
and the fuzzy inputs' activity on the training rows (computed once, while the data was
prepared) into one :class:`~ktrdr_lib.schemas.results.TrainingAnalytics`.

Example:
    >>> callback = DetailedAnalytics(x_val, y_val, class_names=("BUY", "HOLD", "SELL"))
    ... # doctest: +SKIP
    >>> outcome = fit_model(spec.model, splits, callbacks=[callback])  # doctest: +SKIP
    >>> callback.analytics(outcome, fuzzy_activity={}).epochs[-1].macro_f1  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import msgspec
import numpy as np
import torch
from typing_extensions import override

from ktrdr_lib.errors import ConfigError, NotFoundError, StateConflictError
from ktrdr_lib.features.report import ACTIVE_LEVEL
from ktrdr_lib.schemas.results import (
    ClassMetrics,
    ConfidenceFigures,
    EpochAnalytics,
    ParameterFigures,
    RegressionEpochFigures,
    TrainingAnalytics,
)
from ktrdr_lib.training.batches import cut_windows

if TYPE_CHECKING:
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.training.fit import FitOutcome

__all__ = ["DEFAULT_CONFIDENCE_THRESHOLD", "DetailedAnalytics", "recorded_analytics"]

DEFAULT_CONFIDENCE_THRESHOLD = 0.6
"""A classifier's prediction counts as confident above this highest class probability."""

_CHUNK_ROWS = 65_536


class DetailedAnalytics(pl.Callback):
    """Records :class:`~ktrdr_lib.schemas.results.EpochAnalytics` at every completed epoch.

    Args:
        x_val: the validation rows as the network sees them (scaled); for an LSTM/GRU the
            rows windows are cut from (``windows`` says where).
        y_val: validation labels: class ids, or float targets for a regression.
        class_names: the classes in output order (ignored for a regression).
        windows: for a recurrent model, ``(validation window ends, rows per window)``;
            ``None`` for an MLP.
        confidence_threshold: the highest probability above which a prediction is confident,
            in (0, 1).

    Raises:
        ConfigError: for a threshold outside (0, 1), no validation rows, or rows and labels
            that do not match.
    """

    def __init__(
        self,
        x_val: np.ndarray,
        y_val: np.ndarray,
        *,
        class_names: tuple[str, ...] | list[str] = (),
        windows: tuple[np.ndarray, int] | None = None,
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    ) -> None:
        if not 0.0 < confidence_threshold < 1.0:
            raise ConfigError(f"confidence_threshold must be in (0, 1); got {confidence_threshold}")
        samples = len(windows[0]) if windows is not None else x_val.shape[0]
        if samples == 0 or samples != y_val.shape[0]:
            raise ConfigError(
                f"detailed analytics need one validation label per validation sample; got "
                f"{samples} samples and {y_val.shape[0]} labels. Widen the date range or "
                "training.data_split.validation."
            )
        self.regression = y_val.dtype.kind == "f"
        self.class_names = tuple(class_names)
        if not self.regression and len(self.class_names) < 2:
            raise ConfigError(f"a classifier's analytics need its class names; got {class_names}")
        self.confidence_threshold = confidence_threshold
        self.records: list[EpochAnalytics] = []
        self._x = torch.as_tensor(x_val, dtype=torch.float32)
        self._y = torch.as_tensor(y_val, dtype=torch.float32 if self.regression else torch.int64)
        self._ends = None if windows is None else torch.as_tensor(windows[0], dtype=torch.int64)
        self._length = 0 if windows is None else int(windows[1])
        self._enabled = True
        self._last_batch = -1
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._hook: torch.utils.hooks.RemovableHandle | None = None
        self._outputs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    # -- Lightning hooks ---------------------------------------------------------------------

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._enabled = trainer.is_global_zero

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled:  # the validation tensors move to the training device once
            device = pl_module.device
            self._x, self._y = self._x.to(device), self._y.to(device)
            if self._ends is not None:
                self._ends = self._ends.to(device)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_batch = int(trainer.num_training_batches) - 1 if self._enabled else -1
        self._grad_norms = {}

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if batch_idx == self._last_batch:
            self._grad_norms = _gradient_norms(getattr(pl_module, "network", pl_module))

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._outputs, self._labels = [], []
        network = getattr(pl_module, "network", None)
        if (
            self._enabled
            and not trainer.sanity_checking
            and trainer.world_size == 1
            and isinstance(network, torch.nn.Module)
        ):
            self._hook = network.register_forward_hook(self._keep_outputs)

    def _keep_outputs(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self._outputs.append(output.detach())

    @override
    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._hook is not None:
            self._labels.append(batch[1])

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._unhook()
        if not self._enabled or trainer.sanity_checking:
            return
        if getattr(pl_module, "train_batches_run", 0) < trainer.num_training_batches:
            return  # a partial epoch is no epoch
        self.records.append(self._epoch(trainer, pl_module))
        self._outputs, self._labels = [], []

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._unhook()  # a fit that stopped inside validation

    def _unhook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"records": msgspec.to_builtins(self.records)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = msgspec.convert(state_dict.get("records", []), list[EpochAnalytics])

    # -- the figures -------------------------------------------------------------------------

    def _epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> EpochAnalytics:
        network = getattr(pl_module, "network", pl_module)
        parameters, total_norm = _parameter_figures(network, self._grad_norms)
        if self._outputs and len(self._outputs) == len(self._labels):
            outputs, target = torch.cat(self._outputs).float(), torch.cat(self._labels)
        else:
            outputs, target = self._validation_outputs(pl_module), self._y
        learning_rate = float(trainer.optimizers[0].param_groups[0]["lr"])
        epoch = trainer.current_epoch + 1
        if self.regression:
            return EpochAnalytics(
                epoch=epoch,
                learning_rate=learning_rate,
                gradient_norm=total_norm,
                parameters=parameters,
                regression=_regression_figures(outputs.reshape(-1), target.float()),
            )
        per_class, macro_f1 = _class_figures(outputs, target, self.class_names)
        return EpochAnalytics(
            epoch=epoch,
            learning_rate=learning_rate,
            gradient_norm=total_norm,
            parameters=parameters,
            per_class=per_class,
            macro_f1=macro_f1,
            confidence=_confidence(outputs, self.confidence_threshold),
        )

    def _validation_outputs(self, pl_module: pl.LightningModule) -> torch.Tensor:
        """The network's outputs on every validation sample, in eval mode (mode restored)."""
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.inference_mode():
                if self._ends is None:
                    chunks = [pl_module(chunk) for chunk in torch.split(self._x, _CHUNK_ROWS)]
                else:
                    step = max(_CHUNK_ROWS // max(self._length, 1), 1)
                    chunks = [
                        pl_module(cut_windows(self._x, ends, self._length))
                        for ends in torch.split(self._ends, step)
                    ]
                return torch.cat(chunks).float()
        finally:
            pl_module.train(was_training)

    def analytics(
        self, outcome: FitOutcome, *, fuzzy_activity: Mapping[str, float]
    ) -> TrainingAnalytics:
        """Everything recorded, with how the fit ended.

        Args:
            outcome: what the fit returned (stop reason, best epoch, epochs completed).
            fuzzy_activity: per fuzzy membership input, the share of training rows where it is
                above :data:`~ktrdr_lib.features.report.ACTIVE_LEVEL` (the data summary's
                feature report holds it).
        """
        return TrainingAnalytics(
            task="regression" if self.regression else "classification",
            classes=[] if self.regression else list(self.class_names),
            confidence_threshold=self.confidence_threshold,
            epochs=list(self.records),
            fuzzy_activity=dict(fuzzy_activity),
            fuzzy_active_level=ACTIVE_LEVEL,
            stop_reason=outcome.stop_reason or "max_epochs",
            best_epoch=outcome.best_epoch or None,
            epochs_completed=outcome.epochs_completed,
        )


def _gradient_norms(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter's gradient L2 norm, as a tensor on its device (no host sync)."""
    with torch.no_grad():
        return {
            name: torch.linalg.vector_norm(parameter.grad.detach().float())
            for name, parameter in network.named_parameters()
            if parameter.grad is not None
        }


def _parameter_figures(
    network: torch.nn.Module, grad_norms: Mapping[str, torch.Tensor]
) -> tuple[dict[str, ParameterFigures], float]:
    """Per named parameter: gradient norm (from ``grad_norms``), mean, std, abs-max; and the
    total gradient norm.

    Every figure is a tensor until one ``tolist()`` at the end (one host sync).
    """
    names: list[str] = []
    rows: list[torch.Tensor] = []
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            values = parameter.detach().float()
            grad_norm = grad_norms.get(name)
            if grad_norm is None:
                grad_norm = values.new_tensor(math.nan)
            rows.append(
                torch.stack(
                    (
                        grad_norm,
                        values.mean(),
                        values.std(correction=0),
                        values.abs().max(),
                    )
                )
            )
            names.append(name)
    if not rows:
        return {}, 0.0
    table = torch.stack(rows).cpu().tolist()
    figures = {
        name: ParameterFigures(
            grad_norm=None if math.isnan(row[0]) else row[0],
            mean=row[1],
            std=row[2],
            abs_max=row[3],
        )
        for name, row in zip(names, table, strict=True)
    }
    total = math.sqrt(sum(f.grad_norm**2 for f in figures.values() if f.grad_norm is not None))
    return figures, total


def _class_figures(
    logits: torch.Tensor, target: torch.Tensor, names: tuple[str, ...]
) -> tuple[dict[str, ClassMetrics], float]:
    """Per-class precision, recall, F1 and support from the confusion matrix (a class never
    predicted, or absent, scores 0, as torchmetrics does), and the macro F1."""
    n = len(names)
    predicted = logits.argmax(dim=1)
    confusion = torch.bincount(target * n + predicted, minlength=n * n).reshape(n, n)
    hits = confusion.diagonal().double()
    support = confusion.sum(dim=1).double()
    claimed = confusion.sum(dim=0).double()
    precision = torch.where(claimed > 0, hits / claimed.clamp(min=1), 0.0)
    recall = torch.where(support > 0, hits / support.clamp(min=1), 0.0)
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), 0.0)
    table = torch.stack((precision, recall, f1, support)).cpu().tolist()
    per_class = {
        name: ClassMetrics(
            precision=table[0][i], recall=table[1][i], f1=table[2][i], support=int(table[3][i])
        )
        for i, name in enumerate(names)
    }
    return per_class, float(sum(table[2]) / n)


def _confidence(logits: torch.Tensor, threshold: float) -> ConfidenceFigures:
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    top = p.max(dim=1).values
    entropy = -(p * log_p).sum(dim=1)
    figures = torch.stack((top.mean(), entropy.mean(), (top > threshold).float().mean()))
    mean_top, mean_entropy, share = figures.cpu().tolist()
    return ConfidenceFigures(
        mean_max_probability=mean_top, mean_entropy=mean_entropy, confident_share=share
    )


def _regression_figures(predicted: torch.Tensor, target: torch.Tensor) -> RegressionEpochFigures:
    error = predicted - target
    figures = torch.stack(
        (
            error.abs().mean(),
            error.square().mean().sqrt(),
            (torch.sign(predicted) == torch.sign(target)).float().mean(),
            predicted.mean(),
            predicted.std(correction=0),
        )
    )
    mae, rmse, direction, mean, std = figures.cpu().tolist()
    return RegressionEpochFigures(
        mae=mae,
        rmse=rmse,
        directional_accuracy=direction,
        prediction_mean=mean,
        prediction_std=std,
    )


def recorded_analytics(record: OperationSnapshot) -> TrainingAnalytics:
    """The analytics an operation recorded (its result carries them).

    Raises:
        StateConflictError: the operation has not ended yet (pending, running, cancelling).
        NotFoundError: it ended without analytics: they were not asked for, or it did not
            complete (a cancelled or failed run keeps none; a graceful stop completes).
    """
    op = record.operation_id
    if not record.is_final:
        raise StateConflictError(
            f"operation {op} is {record.status}; its detailed analytics exist once it has "
            "completed: wait for it to end, then ask again"
        )
    if record.status != "completed":
        raise NotFoundError(
            f"operation {op} ended {record.status}, so it recorded no detailed analytics "
            "(only a completed run keeps them; a graceful stop completes)"
        )
    if record.result is None or record.result.analytics is None:
        raise NotFoundError(
            f"operation {op} recorded no detailed analytics: they are recorded only when asked "
            "for. Train again with detailed_analytics=true (`ktrdr train --analytics`) or set "
            "model.training.analytics.enabled: true in the strategy."
        )
    return record.result.analytics
