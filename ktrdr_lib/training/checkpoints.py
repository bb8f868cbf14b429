"""Epoch checkpoints of a run, written atomically, and what a resume needs from them.

A run with a :class:`CheckpointPlan` keeps, in its own directory
(``KTRDR_HOME/checkpoints/<operation id>/``):

``latest.ckpt``
    the state after the last completed epoch that was written (every ``every`` epochs, and
    whenever the run stops on an exception: an abort mid-epoch keeps the last *completed*
    epoch's state, never a half epoch);
``best.ckpt``
    the state after the best epoch so far (the early-stopping monitor's best);
``checkpoint.json``
    :class:`CheckpointMeta`: which epoch ``latest.ckpt`` holds, the best epoch, and the
    fingerprints of the strategy and of every data series, so a resume against changed ones
    is refused.

A checkpoint is Lightning's own (weights, optimiser, loop and callback state: the epoch
history, the best weights and the early-stopping counters) plus, under ``"ktrdr"``, the RNG
states of torch, numpy and Python and the run's extras (its fitted feature scaling). Files are
written to a temporary name and renamed over the old one, so a reader never sees half a file.
Nothing happens inside the batch loop: the state is taken at epoch ends.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import msgspec
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from typing_extensions import override

__all__ = [
    "BEST_FILE",
    "LATEST_FILE",
    "META_FILE",
    "CheckpointMeta",
    "CheckpointPlan",
    "EpochCheckpoint",
    "read_meta",
]

LATEST_FILE = "latest.ckpt"
BEST_FILE = "best.ckpt"
META_FILE = "checkpoint.json"


class CheckpointMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What ``checkpoint.json`` says about a run's checkpoints.

    Attributes:
        operation_id: the run that wrote them.
        epoch: completed epochs ``latest.ckpt`` holds.
        best_epoch: the epoch ``best.ckpt`` holds (0: none yet).
        total_epochs: the run's epoch budget.
        strategy_fingerprint: a digest of the strategy and the request as trained.
        data_fingerprints: a digest per data series (``"AAPL 1d"``) as loaded.
        reason: why ``latest.ckpt`` was last written (``epoch``, ``cancelled``, ``failed``).
        written_at: UNIX time of that write.
    """

    operation_id: str
    epoch: int
    best_epoch: int
    total_epochs: int
    strategy_fingerprint: str
    data_fingerprints: dict[str, str]
    reason: str = "epoch"
    written_at: float = 0.0


def read_meta(directory: Path) -> CheckpointMeta | None:
    """The checkpoint metadata in ``directory``, or ``None`` when it has none."""
    try:
        raw = (directory / META_FILE).read_bytes()
    except OSError:
        return None
    return msgspec.json.decode(raw, type=CheckpointMeta)


@dataclass
class CheckpointPlan:
    """Where and how often a run checkpoints, and what it resumes from.

    Attributes:
        directory: the run's checkpoint directory.
        every: write ``latest.ckpt`` every this many completed epochs (the state of the
            epochs between is still kept in memory and written if the run stops).
        meta: the fingerprints and ids the metadata carries (``epoch`` and ``best_epoch``
            are filled in at each write).
        extras: picklable objects stored under ``checkpoint["ktrdr"]["extras"]``.
        resume_from: a checkpoint file to continue from, or ``None`` for a fresh start.
        resume_epoch: the completed epochs ``resume_from`` holds.
    """

    directory: Path
    every: int
    meta: CheckpointMeta
    extras: dict[str, Any] = field(default_factory=dict)
    resume_from: Path | None = None
    resume_epoch: int = 0


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


class EpochCheckpoint(Checkpoint):
    """Takes the run's state at every completed epoch's end and writes it (see the module).

    A :class:`~lightning.pytorch.callbacks.Checkpoint`, so Lightning calls it after the other
    callbacks and the module at an epoch's end: the epoch history has recorded the epoch and a
    graceful stop has been decided when the state is taken.

    Args:
        plan: where and how often.
        best_epoch: reads the best epoch so far (the epoch history's).
    """

    def __init__(self, plan: CheckpointPlan, best_epoch: Callable[[], int]) -> None:
        if plan.every < 1:
            raise ValueError(f"every must be >= 1, got {plan.every}")
        self.plan = plan
        self.best_epoch = best_epoch
        self._pending: tuple[int, dict[str, Any]] | None = None
        self._written_epoch = 0
        self.writes = 0

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["ktrdr"] = {"rng": _rng_states(), "extras": dict(self.plan.extras)}

    @override
    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        ours = checkpoint.get("ktrdr")
        if ours is not None:
            _set_rng_states(ours["rng"])

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if getattr(pl_module, "train_batches_run", 0) < trainer.num_training_batches:
            return  # a partial epoch is never a checkpoint
        epoch = trainer.current_epoch + 1
        state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if epoch % self.plan.every == 0 or trainer.should_stop:
            self._pending = None
            self._write(epoch, state, reason="epoch")
        else:  # kept (copied: the dump shares the live tensors) until written or replaced
            self._pending = (epoch, copy.deepcopy(state))

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self._pending is None or not trainer.is_global_zero:
            return
        from ktrdr_lib.errors import OperationCancelled

        epoch, state = self._pending
        self._pending = None
        reason = "cancelled" if isinstance(exception, OperationCancelled) else "failed"
        self._write(epoch, state, reason=reason)

    def _write(self, epoch: int, state: dict[str, Any], *, reason: str) -> None:
        directory = self.plan.directory
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_save(state, directory / LATEST_FILE)
        best = self.best_epoch()
        if best == epoch:
            temporary = directory / f".{BEST_FILE}.{os.getpid()}.tmp"
            shutil.copyfile(directory / LATEST_FILE, temporary)
            os.replace(temporary, directory / BEST_FILE)
        meta = msgspec.structs.replace(
            self.plan.meta, epoch=epoch, best_epoch=best, reason=reason, written_at=time.time()
        )
        temporary = directory / f".{META_FILE}.{os.getpid()}.tmp"
        temporary.write_bytes(msgspec.json.encode(meta))
        os.replace(temporary, directory / META_FILE)
        self._written_epoch = epoch
        self.writes += 1
