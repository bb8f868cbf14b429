"""ExperimentLogging: the Lightning callback that writes a run to its experiment loggers.

See :mod:`ktrdr_lib.training.loggers` for which loggers there are and where they write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger
from typing_extensions import override

__all__ = ["ExperimentLogging"]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = ",".join(str(item) for item in value)
    else:
        out[prefix] = value


class ExperimentLogging(pl.Callback):
    """Writes a run to its loggers at the start, at every complete epoch's end, and at the end.

    Rank zero only; nothing happens per batch.

    Args:
        loggers: the run's Lightning loggers.
        hyperparameters: what the run was asked to do (flattened with dots for the loggers).
    """

    def __init__(self, loggers: Sequence[Logger], hyperparameters: Mapping[str, Any]) -> None:
        self.loggers = list(loggers)
        self.hyperparameters: dict[str, Any] = {}
        _flat("", hyperparameters, self.hyperparameters)
        self._enabled = True

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._enabled = trainer.is_global_zero
        if self._enabled:
            for logger in self.loggers:
                logger.log_hyperparams(self.hyperparameters)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled or trainer.sanity_checking:
            return
        if getattr(pl_module, "train_batches_run", 0) < trainer.num_training_batches:
            return  # a partial epoch is no epoch
        figures = {
            key: float(value)
            for key, value in dict(getattr(pl_module, "epoch_metrics", {}) or {}).items()
            if value is not None
        }
        if trainer.optimizers:
            figures["learning_rate"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        figures["epoch"] = float(trainer.current_epoch + 1)
        for logger in self.loggers:
            logger.log_metrics(figures, step=trainer.current_epoch + 1)

    def finish(self, final: Mapping[str, float | None], *, status: str, step: int) -> None:
        """Log the final figures and close every logger (``status``: ``success``, ``failed``
        or ``aborted``, as the loggers name them)."""
        if not self._enabled:
            return
        figures = {
            f"final/{key}": float(value) for key, value in final.items() if value is not None
        }
        for logger in self.loggers:
            if figures:
                logger.log_metrics(figures, step=step)
            logger.finalize(status)
            logger.save()
