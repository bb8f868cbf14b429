"""ProgressBridge: the Lightning callback that feeds a ProgressTracker.

It only translates hooks into tracker events: no I/O, no drawing. The tracker throttles and
hands snapshots to sinks. Progress is reported from global rank zero only; other ranks keep
the callback but stay silent.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.progress import DeviceResources

__all__ = ["ProgressBridge", "device_resources"]


def device_resources(device: torch.device) -> DeviceResources:
    """Device name and memory figures for a progress snapshot (cheap; no device sync)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return DeviceResources(device=str(device), gpu_used=device.type == "cuda")
    index = device.index or 0
    props = torch.cuda.get_device_properties(index)
    return DeviceResources(
        device=str(device),
        gpu_used=True,
        gpu_name=props.name,
        gpu_memory_allocated_mb=round(torch.cuda.memory_allocated(index) / 2**20, 1),
        gpu_memory_total_mb=round(props.total_memory / 2**20, 1),
    )


class ProgressBridge(pl.Callback):
    """Turns Lightning's training hooks into :class:`ProgressTracker` events.

    Args:
        tracker: the run's tracker (it owns throttling and publishing).
    """

    def __init__(self, tracker: ProgressTracker) -> None:
        if not isinstance(tracker, ProgressTracker):
            raise TypeError(f"tracker must be a ProgressTracker, got {type(tracker).__name__}")
        self.tracker = tracker
        self._enabled = True

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._enabled = trainer.is_global_zero

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled:
            self.tracker.set_resources(device_resources(pl_module.device))

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled:
            self.tracker.start_epoch(trainer.current_epoch + 1, int(trainer.num_training_batches))

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self._enabled:
            return
        tracker = self.tracker
        loss = getattr(pl_module, "latest_batch_loss", None) if tracker.due() else None
        tracker.batch_done(batch_idx + 1, loss)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled or trainer.sanity_checking:
            return
        if getattr(pl_module, "train_batches_run", 0) < trainer.num_training_batches:
            return  # a partial epoch (stopped mid-way) is no epoch of the history
        metrics = dict(getattr(pl_module, "epoch_metrics", {}) or {})
        lr = None
        if trainer.optimizers:
            lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.tracker.set_resources(device_resources(pl_module.device))
        self.tracker.epoch_done(metrics, learning_rate=lr)
