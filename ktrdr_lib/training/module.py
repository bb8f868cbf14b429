"""FuzzyMLP: the neuro-fuzzy classifier as a LightningModule with a lean training step.

The network maps fuzzy-membership features to three logits (0 BUY, 1 HOLD, 2 SELL); the loss
is cross-entropy on logits (or the focal loss, optionally weighted by inverse class frequency:
:func:`classification_loss`) and softmax is applied only by :meth:`FuzzyMLP.predict_proba`.

Training uses manual optimisation and keeps the epoch's losses and hits as tensors on
the module's device, so a step costs no host sync and no ``self.log`` call. Figures are read
once per validation epoch (one sync), checked for NaN, and kept in
:attr:`FuzzyMLP.epoch_metrics` for callbacks (early stopping and progress read them there;
``self.log`` would cost about half a millisecond a call).

Example:
    >>> import torch
    >>> from ktrdr_lib.strategy.spec import ModelSpec
    >>> module = FuzzyMLP(ModelSpec(), n_features=6)
    >>> module.predict_proba(torch.zeros(2, 6)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import lightning
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import Tensor, nn

from ktrdr_lib.errors import ConfigError, TrainingError
from ktrdr_lib.features.labels import LABEL_NAMES
from ktrdr_lib.strategy.spec import ModelSpec

__all__ = [
    "CLASS_NAMES",
    "N_CLASSES",
    "EpochTally",
    "FuzzyMLP",
    "SequenceNetwork",
    "build_network",
    "classification_loss",
    "inverse_frequency_weights",
]

CLASS_NAMES: tuple[str, ...] = LABEL_NAMES
N_CLASSES = len(CLASS_NAMES)

# Attributes set on every hook call or batch that never hold parameters, buffers or modules:
# they bypass ``nn.Module.__setattr__`` (see ``FuzzyMLP.__setattr__``).
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "_last_loss"})

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}

_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def build_network(model_spec: ModelSpec, n_features: int, n_outputs: int = N_CLASSES) -> nn.Module:
    """The network ``model`` describes: for ``type: mlp`` the MLP ``n_features → hidden layers
    → n_outputs``; for ``lstm`` / ``gru`` a :class:`SequenceNetwork` over windows (3 logits for
    a classifier, 1 value for a regression).

    Each hidden layer is ``Linear → activation → Dropout`` (dropout omitted when 0).

    Raises:
        ConfigError: for ``n_features < 1``, a hidden width < 1 or dropout outside [0, 1).
    """
    architecture = model_spec.architecture
    if n_features < 1:
        raise ConfigError(
            f"the model needs at least one feature column; got {n_features}. Check the "
            "strategy's indicators and fuzzy_sets."
        )
    if any(width < 1 for width in architecture.hidden_layers):
        raise ConfigError(
            f"model.architecture.hidden_layers must be widths ≥ 1; got "
            f"{architecture.hidden_layers}."
        )
    if not 0.0 <= architecture.dropout < 1.0:
        raise ConfigError(
            f"model.architecture.dropout must be in [0, 1); got {architecture.dropout}."
        )
    if model_spec.type in ("lstm", "gru"):
        if architecture.sequence_length is None:
            raise ConfigError(
                f"a {model_spec.type} model needs model.architecture.sequence_length (rows per "
                "input window), e.g. 20"
            )
        return SequenceNetwork(model_spec, n_features, n_outputs)
    layers: list[nn.Module] = []
    width_in = n_features
    for width in architecture.hidden_layers:
        layers += [nn.Linear(width_in, width), _ACTIVATIONS[architecture.activation]()]
        if architecture.dropout > 0:
            layers.append(nn.Dropout(architecture.dropout))
        width_in = width
    layers.append(nn.Linear(width_in, n_outputs))
    return nn.Sequential(*layers)


class SequenceNetwork(nn.Module):
    """An LSTM or GRU over windows ``(batch, sequence_length, n_features)``: the last layer's
    final hidden state → Dropout → Linear to ``n_outputs`` (KTRDR's recurrent networks).

    Stacked layers (``num_layers > 1``) get ``dropout`` between them.
    """

    def __init__(self, model_spec: ModelSpec, n_features: int, n_outputs: int) -> None:
        super().__init__()
        architecture = model_spec.architecture
        cell = nn.LSTM if model_spec.type == "lstm" else nn.GRU
        self.recurrent = cell(
            input_size=n_features,
            hidden_size=architecture.hidden_size,
            num_layers=architecture.num_layers,
            dropout=architecture.dropout if architecture.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(architecture.dropout)
        self.head = nn.Linear(architecture.hidden_size, n_outputs)

    def forward(self, windows: Tensor) -> Tensor:
        """Outputs ``(batch, n_outputs)`` for windows ``(batch, length, n_features)``."""
        _, state = self.recurrent(windows)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        out: Tensor = self.head(self.dropout(hidden[-1]))
        return out


class EpochTally:
    """Loss, hits and sizes of one epoch's batches, with no host sync per batch.

    Each batch costs one row write (its mean loss, kept per batch so a NaN can be traced to
    the batch that produced it) and one in-place add (its hits); batch sizes are plain ints.
    Rows are indexed by batch number and grow by doubling, so the tally needs no batch count
    up front; rows of batches not run (an epoch stopped early) stay zero and count for nothing.
    """

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self.reset(torch.device("cpu"))

    def reset(self, device: torch.device) -> None:
        """Zero the tally on ``device``."""
        self.loss = torch.zeros(self._capacity, device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.sizes: dict[int, int] = {}

    @property
    def batches(self) -> int:
        """Batches recorded since the last reset."""
        return len(self.sizes)

    def add(self, batch_idx: int, loss: Tensor, logits: Tensor, y: Tensor) -> None:
        """Record batch ``batch_idx``: its mean ``loss`` and predictions ``logits`` vs ``y``.

        Class logits ``(n, classes)`` count hits by argmax; a regression's values ``(n,)``
        count a hit where the predicted and the true value have the same sign (directional
        accuracy).
        """
        if batch_idx >= self._capacity:
            self._grow(batch_idx + 1)
        self.loss[batch_idx] = loss
        if logits.ndim == 1:
            self.correct.add_((torch.sign(logits) == torch.sign(y)).sum())
        else:
            self.correct.add_((logits.argmax(dim=1) == y).sum())
        self.sizes[batch_idx] = y.shape[0]

    def totals(self) -> Tensor:
        """``[loss sum, correct, count]`` as one float tensor (loss sum is size-weighted)."""
        count = torch.zeros_like(self.loss)
        if self.sizes:
            rows = torch.tensor(list(self.sizes), dtype=torch.int64)
            sizes = torch.tensor(list(self.sizes.values()), dtype=self.loss.dtype)
            count[rows.to(count.device)] = sizes.to(count.device)
        return torch.stack(((self.loss * count).sum(), self.correct.to(count.dtype), count.sum()))

    def first_non_finite_batch(self) -> int:
        """Index of the first batch whose loss is NaN or infinite (-1 when none)."""
        bad = torch.nonzero(~torch.isfinite(self.loss)).flatten()
        return int(bad[0]) if bad.numel() else -1

    def _grow(self, needed: int) -> None:
        while self._capacity < needed:
            self._capacity *= 2
        grown = torch.zeros(self._capacity, device=self.loss.device, dtype=self.loss.dtype)
        grown[: self.loss.shape[0]] = self.loss
        self.loss = grown


def classification_loss(
    logits: Tensor,
    y: Tensor,
    *,
    gamma: float = 0.0,
    weights: Tensor | None = None,
) -> Tensor:
    """Cross-entropy, or the focal loss with ``gamma > 0``, optionally class-weighted.

    Per sample ``w[y] · (1 − p_y)^gamma · (−log p_y)``, averaged with the weights
    (``sum / sum(w[y])``), so ``gamma = 0`` is PyTorch's weighted cross-entropy.
    """
    if gamma == 0.0:
        return nn.functional.cross_entropy(logits, y, weight=weights)
    log_p = torch.log_softmax(logits, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
    per_sample = -((1.0 - log_p.exp()) ** gamma) * log_p
    if weights is None:
        return per_sample.mean()
    w = weights[y]
    return (w * per_sample).sum() / w.sum()


def inverse_frequency_weights(y: Tensor, n_classes: int = N_CLASSES) -> Tensor:
    """Class weights ``1 / frequency`` on ``y``, scaled to mean 1 over the classes present
    (an absent class gets weight 0)."""
    counts = torch.bincount(y, minlength=n_classes).to(torch.float32)
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = counts[present].sum() / counts[present]
    weights[present] /= weights[present].mean()
    return weights


class FuzzyMLP(lightning.LightningModule):
    """The strategy's network over fuzzy features (an MLP on rows, or an LSTM/GRU on windows of
    ``sequence_length`` rows), three class logits or one value, trained with manual
    optimisation.

    Args:
        model_spec: the strategy's ``model`` section (architecture and optimiser settings).
        n_features: number of input columns.
        focal_gamma: train with the focal loss of this gamma (``0``: cross-entropy).
        class_weights: per-class loss weights (``None``: unweighted).
        regression: one output, a value (a return), instead of class logits.
        class_names: the classes, in output order (BUY, HOLD, SELL unless the labels have
            others, e.g. a regime's four).
        regression_loss: ``huber`` or ``mse`` for a regression.
        huber_delta: where the Huber loss turns from quadratic to linear.

    Attributes:
        epoch_metrics: the latest completed epoch's ``train_loss``, ``train_accuracy``,
            ``val_loss`` and ``val_accuracy`` (empty before the first validation).
    """

    def __init__(
        self,
        model_spec: ModelSpec,
        n_features: int,
        *,
        focal_gamma: float = 0.0,
        class_weights: Tensor | None = None,
        regression: bool = False,
        regression_loss: str = "huber",
        huber_delta: float = 0.01,
        class_names: tuple[str, ...] = CLASS_NAMES,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model_spec = model_spec
        self.n_features = n_features
        self.regression = regression
        self.regression_loss = regression_loss
        self.huber_delta = huber_delta
        self.class_names = tuple(class_names)
        self.network = build_network(
            model_spec, n_features, 1 if regression else len(self.class_names)
        )
        # The common case (unweighted cross-entropy) calls torch directly: a small model's step
        # is short enough that two Python calls per batch show in the benchmark.
        self._plain_ce: Callable[[Tensor, Tensor], Tensor] | None = (
            nn.functional.cross_entropy
            if not regression and focal_gamma == 0.0 and class_weights is None
            else None
        )
        self.sequence_length: int | None = (
            model_spec.architecture.sequence_length if model_spec.type in ("lstm", "gru") else None
        )
        self.focal_gamma = focal_gamma
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.epoch_metrics: dict[str, float] = {}
        self._train_tally = EpochTally()
        self._val_tally = EpochTally()
        self._last_loss: Tensor | None = None
        self._raw_optimizer: torch.optim.Optimizer | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        """Set plain per-call attributes directly, everything else the ``nn.Module`` way.

        Lightning assigns ``_current_fx_name`` twice around every hook call (~35 times a batch);
        ``nn.Module.__setattr__`` checks each value against parameters, buffers and modules,
        which costs several percent of a small model's step.
        """
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def latest_batch_loss(self) -> float | None:
        """The last training batch's loss (read on demand, so steps never sync for it)."""
        return None if self._last_loss is None else float(self._last_loss)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape ``(n, 3)``, or a regression's values of shape ``(n,)``."""
        out: Tensor = self.network(x)
        return out.squeeze(1) if self.regression else out

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities (softmax over logits), shape ``(n, 3)``, in eval mode.

        The module's training/eval mode is restored afterwards.
        """
        if self.regression:
            raise TrainingError(
                "a regression model predicts values, not class probabilities; use predict_values"
            )
        was_training = self.training
        self.eval()
        try:
            return torch.softmax(self.network(x.to(self.device)), dim=1)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def predict_values(self, x: Tensor) -> Tensor:
        """A regression's predicted values, shape ``(n,)``, in eval mode (the mode is restored).

        Raises:
            TrainingError: the model is a classifier.
        """
        if not self.regression:
            raise TrainingError("a classifier predicts probabilities; use predict_proba")
        was_training = self.training
        self.eval()
        try:
            values: Tensor = self.forward(x.to(self.device))
            return values
        finally:
            self.train(was_training)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The optimiser named by ``model.training.optimizer``."""
        settings = self.model_spec.training
        if settings.learning_rate <= 0 or not math.isfinite(settings.learning_rate):
            raise ConfigError(
                f"model.training.learning_rate must be a positive number; got "
                f"{settings.learning_rate}."
            )
        optimizer_class = _OPTIMIZERS[settings.optimizer]
        return optimizer_class(
            self.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )

    def on_fit_start(self) -> None:
        """Choose the step path: direct torch calls when nothing needs Lightning's plumbing.

        On a single device with plain precision, ``manual_backward`` and ``LightningOptimizer``
        only add hook calls (~20 % of a small model's step); mixed precision (gradient scaling)
        and distributed strategies keep Lightning's path. The direct path does not fire
        ``on_before_backward``/``on_after_backward``/``on_before_optimizer_step``.
        """
        trainer = self.trainer
        plain = type(trainer.strategy) is SingleDeviceStrategy and (
            type(trainer.precision_plugin) is Precision
        )
        self._raw_optimizer = trainer.optimizers[0] if plain else None

    @property
    def train_batches_run(self) -> int:
        """Training batches recorded in the current (or last) epoch."""
        return self._train_tally.batches

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """Pass ``(x, y)`` batches through when already on ``device``; else Lightning's move.

        The in-memory batch source slices tensors that already live on the training device, so
        the default's walk over the batch would only find nothing to move.
        """
        if type(batch) is tuple and len(batch) == 2:
            x, y = batch
            if (
                isinstance(x, Tensor)
                and isinstance(y, Tensor)
                and x.device == device
                and y.device == device
            ):
                return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_train_epoch_start(self) -> None:
        """Reset the training tally."""
        self._train_tally.reset(self.device)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """One optimiser step; records the batch's loss and hits in the epoch tally."""
        x, y = batch
        logits = self.network(x)
        if self.regression:
            logits = logits.squeeze(1)
        loss = (
            self._plain_ce(logits, y)
            if self._plain_ce is not None
            else self.compute_loss(logits, y)
        )
        if self._raw_optimizer is not None:
            self._raw_optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            self._raw_optimizer.step()
        else:
            optimizer = self.optimizers()
            assert not isinstance(optimizer, list)  # configure_optimizers returns one
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        self._last_loss = loss.detach()
        self._train_tally.add(batch_idx, self._last_loss, logits.detach(), y)

    def on_validation_epoch_start(self) -> None:
        """Reset the validation tally."""
        self._val_tally.reset(self.device)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Records the batch's loss and hits in the validation tally."""
        x, y = batch
        logits = self.forward(x)
        self._val_tally.add(batch_idx, self.compute_loss(logits, y), logits, y)

    def compute_loss(self, out: Tensor, y: Tensor) -> Tensor:
        """The training loss of outputs ``out`` against ``y`` (per the strategy)."""
        if self.regression:
            if self.regression_loss == "mse":
                return nn.functional.mse_loss(out, y)
            return nn.functional.huber_loss(out, y, delta=self.huber_delta)
        return classification_loss(out, y, gamma=self.focal_gamma, weights=self.class_weights)

    def on_validation_epoch_end(self) -> None:
        """Turn the tallies into figures (one sync across ranks) and check them.

        Raises:
            TrainingError: when the training or validation loss is NaN or infinite.
        """
        if self.trainer.sanity_checking:
            return
        self._close_epoch()

    def _close_epoch(self) -> None:
        """Reduce both tallies across ranks, check them and store :attr:`epoch_metrics`."""
        totals = torch.cat((self._train_tally.totals(), self._val_tally.totals()))
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        loss_sum, correct, count, val_loss_sum, val_correct, val_count = totals.tolist()
        figures = {
            "train_loss": loss_sum / max(count, 1.0),
            "train_accuracy": correct / max(count, 1.0),
            "val_loss": val_loss_sum / max(val_count, 1.0),
            "val_accuracy": val_correct / max(val_count, 1.0),
        }
        self._check_finite(figures)
        self.epoch_metrics = figures

    def _check_finite(self, figures: dict[str, float]) -> None:
        for split, tally in (("train", self._train_tally), ("val", self._val_tally)):
            value = figures[f"{split}_loss"]
            if not math.isfinite(value):
                batch = tally.first_non_finite_batch()
                raise TrainingError(
                    f"{split}_loss became {value} in epoch {self.current_epoch + 1}, first at "
                    f"{split} batch {batch + 1}; the model diverged. Lower "
                    "model.training.learning_rate, keep model.features.scale_features on, and "
                    "check the features for extreme values."
                )


# Lightning inspects ``training_step``'s signature on every batch (to decide whether to pass
# ``batch_idx``); a precomputed ``__signature__`` turns that into an attribute lookup (~3 % of
# a small model's step).
FuzzyMLP.training_step.__signature__ = inspect.signature(FuzzyMLP.training_step)  # type: ignore[attr-defined]
