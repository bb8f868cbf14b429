"""A two-rank DDP training run that rank 0 cancels mid-epoch; run by test_ddp_cancel.py.

Lightning's ``ddp`` strategy launches rank 1 by re-running this very script (same argv, with
``LOCAL_RANK=1`` in the environment), so everything here runs on both ranks. Each rank trains
the small test strategy through :func:`ktrdr_lib.pipeline.run.run_training_pipeline` with its own
:class:`CancelToken`, a :class:`ProgressBridge` over its own :class:`ProgressTracker`, and a
recorder callback; only rank 0 also gets the callback that sets its token at the requested
epoch and batch. Each rank writes what it saw to ``<out>/rank<k>.json``; rank 0 waits for the
child rank to exit first and records its exit code.

Usage::

    python tests/integration/ddp_worker.py --strategy S.yaml --data-dir D --out O \\
        --kind abort --epoch 1 --batch 3

The caller sets ``MASTER_ADDR``/``MASTER_PORT``. Exit status is 0 whatever training did
(the outcome is in the JSON); a non-zero exit means the worker itself broke.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import OperationCancelled
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.pipeline.run import TrainerOptions, run_training_pipeline
from ktrdr_lib.progress.bridge import ProgressBridge
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.training.batches import TensorBatches

CHILD_WAIT_S = 120.0


class RankRecorder(pl.Callback):
    """Records, per rank, the batches each epoch ran and where training stopped."""

    def __init__(self) -> None:
        self.rank = -1
        self.world_size = 0
        self.launcher: Any = None
        self.completed: list[int] = []  # batches finished, per epoch
        self.num_training_batches: list[int] = []  # Lightning's count, per epoch
        self.loader_batches: list[int] = []  # len(TensorBatches), per epoch
        self.loader_samples: list[int] = []  # TensorBatches.samples, per epoch
        self.last_started: list[int] | None = None  # [epoch, batch_idx]
        self.exception: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.rank = trainer.global_rank
        self.world_size = trainer.world_size
        self.launcher = trainer.strategy.launcher

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.completed.append(0)
        self.num_training_batches.append(int(trainer.num_training_batches))
        loader = trainer.train_dataloader
        if isinstance(loader, TensorBatches):
            self.loader_batches.append(len(loader))
            self.loader_samples.append(loader.samples)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.last_started = [trainer.current_epoch, batch_idx]

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.completed[-1] += 1

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.exception = type(exception).__name__


class RequestCancelAt(pl.Callback):
    """Sets the token (abort or graceful) when training reaches ``(epoch, batch_idx)``.

    Added on rank 0 only: the other rank learns of the request through the agreement.
    """

    def __init__(self, token: CancelToken, *, epoch: int, batch_idx: int, graceful: bool) -> None:
        self.token = token
        self.epoch = epoch
        self.batch_idx = batch_idx
        self.graceful = graceful
        self.requested: list[int] | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.requested is None and (trainer.current_epoch, batch_idx) == (
            self.epoch,
            self.batch_idx,
        ):
            self.token.cancel(graceful=self.graceful, reason="test: rank 0 asked to stop")
            self.requested = [trainer.current_epoch, batch_idx]


def _ensure_data(data_dir: Path, rank: int) -> None:
    """Rank 0 writes the synthetic bars once; rank 1 starts later and finds them there."""
    path = data_dir / "SYNTH_1h.csv"
    if path.exists():
        return
    if rank != 0:
        raise RuntimeError(f"rank {rank} found no data at {path}; rank 0 writes it first")
    data_dir.mkdir(parents=True, exist_ok=True)
    write_ohlcv_csv(generate_ohlcv(3000, timeframe="1h", seed=7), path)


def _wait_for_children(launcher: Any) -> list[int | None]:
    """Rank 0: wait for the ranks Lightning launched, so the caller sees both results."""
    codes: list[int | None] = []
    for proc in getattr(launcher, "procs", []):
        try:
            codes.append(proc.wait(timeout=CHILD_WAIT_S))
        except Exception:  # a hung child: report it, the test fails on the code
            codes.append(None)
    return codes


def main(argv: list[str] | None = None) -> int:
    """Train, cancel from rank 0, and write this rank's report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kind", choices=("abort", "graceful"), required=True)
    parser.add_argument("--epoch", type=int, default=1, help="0-based epoch of the request")
    parser.add_argument("--batch", type=int, default=3, help="batch index of the request")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    rank = int(os.environ.get("LOCAL_RANK", "0"))
    report: dict[str, Any] = {"rank_env": rank, "pid": os.getpid()}
    _ensure_data(args.data_dir, rank)

    token = CancelToken()
    snapshots: list[ProgressSnapshot] = []
    context = build_training_context(args.strategy, data_dir=args.data_dir, epochs=args.epochs)
    tracker = ProgressTracker(
        context.operation_id,
        total_epochs=context.total_epochs,
        publish=snapshots.append,
        min_interval=0.0,
    )
    recorder = RankRecorder()
    callbacks: list[pl.Callback] = [ProgressBridge(tracker), recorder]
    requester: RequestCancelAt | None = None
    if rank == 0:
        requester = RequestCancelAt(
            token, epoch=args.epoch, batch_idx=args.batch, graceful=args.kind == "graceful"
        )
        callbacks.append(requester)

    try:
        result = run_training_pipeline(
            context,
            token=token,
            callbacks=callbacks,
            trainer_options=TrainerOptions(accelerator="cpu", devices=2, strategy="ddp"),
            save_model=True,  # the pipeline saves on rank 0 only
        )
    except OperationCancelled as exc:
        report.update(outcome="cancelled", error=str(exc))
    except Exception as exc:
        report.update(outcome="error", error=f"{type(exc).__name__}: {exc}")
        report["traceback"] = traceback.format_exc()
    else:
        tm = result.training_metrics
        report.update(
            outcome="completed",
            early_stopped=tm.early_stopped,
            epochs_completed=tm.epochs_completed,
            cancellation_reason=result.session_info.cancellation_reason,
            model_id=result.artifacts.model_id,
        )

    report.update(
        rank=recorder.rank,
        world_size=recorder.world_size,
        exception=recorder.exception,
        requested=requester.requested if requester else None,
        last_started=recorder.last_started,
        completed=recorder.completed,
        num_training_batches=recorder.num_training_batches,
        loader_batches=recorder.loader_batches,
        loader_samples=recorder.loader_samples,
        tracker_emitted=tracker.emitted,
        snapshots=len(snapshots),
        token_set=token.is_set,
        token_observed=token.observed_at is not None,
    )
    if rank == 0:
        report["child_exit_codes"] = _wait_for_children(recorder.launcher)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"rank{rank}.json"
    staging = target.with_suffix(".tmp")
    staging.write_text(json.dumps(report, indent=2), encoding="utf-8")
    staging.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
