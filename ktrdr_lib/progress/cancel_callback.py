"""CancelCallback: the Lightning callback that honours a run's cancel token every batch."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from typing_extensions import override

from ktrdr_lib.errors import OperationCancelled
from ktrdr_lib.progress.cancellation import CancelToken

__all__ = ["CancelCallback"]


class CancelCallback(pl.Callback):
    """Honours a :class:`CancelToken` during ``Trainer.fit``.

    * An **abort** is checked at the start of every training batch and raises
      :class:`~ktrdr_lib.errors.OperationCancelled`, so training stops within one batch.
    * A **graceful** stop lets the running epoch finish, its validation included, and stops at
      the epoch's end (``on_train_epoch_end``, which Lightning calls after the epoch's
      validation); the caller then evaluates and saves. A graceful stop that arrives before
      the first epoch therefore finishes that epoch. Escalating it to an abort stops within a
      batch like any abort.

    Under a distributed strategy the token lives in one process only, so the ranks agree with
    ``strategy.reduce_boolean_decision``: on aborts every ``sync_every`` batches (the same
    batches on every rank, so no rank waits on a collective the others skipped), on graceful
    stops at every epoch end. If any rank wants to stop, all stop at the same place.

    Args:
        token: the run's token.
        sync_every: batches between cross-rank abort agreements (distributed runs only).
    """

    def __init__(self, token: CancelToken, *, sync_every: int = 8) -> None:
        if not isinstance(token, CancelToken):
            raise TypeError(f"token must be a CancelToken, got {type(token).__name__}")
        if sync_every < 1:
            raise ValueError(f"sync_every must be >= 1, got {sync_every}")
        self.token = token
        self.sync_every = sync_every

    def _abort(self) -> None:
        self.token.mark_observed()
        raise OperationCancelled(self.token.reason or "cancelled on another rank")

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size == 1 and self.token.aborting:
            self._abort()

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.world_size == 1:
            if self.token.aborting:
                self._abort()
        elif batch_idx % self.sync_every == 0 and trainer.strategy.reduce_boolean_decision(
            self.token.aborting, all=False
        ):
            self._abort()

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size == 1:
            # An abort that arrived during validation is honoured at the next batch's start
            # (or, after the last epoch, before evaluation): the completed epoch is kept and
            # checkpointed first.
            stop = self.token.graceful
        else:
            abort, stop = (
                trainer.strategy.reduce_boolean_decision(flag, all=False)
                for flag in (self.token.aborting, self.token.is_set)
            )
            if abort:
                self._abort()
        if stop:
            self.token.mark_observed()
            trainer.should_stop = True
