"""CancelCallback: the Lightning callback that honours a run's cancel token every batch."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from typing_extensions import override

from ktrdr_lib.errors import OperationCancelled
from ktrdr_lib.progress.cancellation import CancelToken

__all__ = ["CancelCallback"]


class CancelCallback(pl.Callback):
    """Checks a :class:`CancelToken` at the start of every training batch.

    Under a distributed strategy the token lives in one process only, so the ranks agree on
    the decision with ``strategy.reduce_boolean_decision`` every ``sync_every`` batches (the
    same batches on every rank, so no rank waits on a collective the others skipped): if any
    rank wants to stop, all stop at that batch, with the same kind of stop.

    Args:
        token: the run's token.
        sync_every: batches between cross-rank agreements (distributed runs only).
    """

    def __init__(self, token: CancelToken, *, sync_every: int = 8) -> None:
        if not isinstance(token, CancelToken):
            raise TypeError(f"token must be a CancelToken, got {type(token).__name__}")
        if sync_every < 1:
            raise ValueError(f"sync_every must be >= 1, got {sync_every}")
        self.token = token
        self.sync_every = sync_every

    def _agree(self, trainer: pl.Trainer, batch_idx: int) -> None:
        if batch_idx % self.sync_every:
            return
        strategy = trainer.strategy
        if not strategy.reduce_boolean_decision(self.token.is_set, all=False):
            return
        abort = strategy.reduce_boolean_decision(self.token.aborting, all=False)
        self.token.mark_observed()
        if abort:
            raise OperationCancelled(self.token.reason or "cancelled on another rank")
        trainer.should_stop = True

    def _check(self, trainer: pl.Trainer) -> None:
        if not self.token.is_set:
            return
        self.token.mark_observed()
        if self.token.aborting:
            raise OperationCancelled(self.token.reason or "cancelled")
        trainer.should_stop = True

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size == 1:
            self._check(trainer)

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.world_size > 1:
            self._agree(trainer, batch_idx)
        else:
            self._check(trainer)

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.world_size == 1 and self.token.graceful:
            self._check(trainer)
