"""Epoch checkpoints and exact continuation at the fit level: a run stopped mid-epoch and
resumed from its last completed epoch ends bit for bit where the uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from ktrdr_lib.errors import OperationCancelled
from ktrdr_lib.strategy.spec import EarlyStoppingSpec
from ktrdr_lib.training.checkpoints import (
    BEST_FILE,
    LATEST_FILE,
    CheckpointMeta,
    CheckpointPlan,
    read_meta,
)
from ktrdr_lib.training.fit import FitOutcome, fit_model
from tests.integration.test_fit import make_splits, model_spec

pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

EPOCHS = 6


class AbortIn(Callback):
    """Raises the project's cancel exception at batch ``batch`` of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(
        self, trainer: lightning.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            raise OperationCancelled("test abort")


def _plan(directory: Path, *, every: int = 1, resume: bool = False) -> CheckpointPlan:
    meta = read_meta(directory) if resume else None
    return CheckpointPlan(
        directory=directory,
        every=every,
        meta=CheckpointMeta(
            operation_id="op_test",
            epoch=0,
            best_epoch=0,
            total_epochs=EPOCHS,
            strategy_fingerprint="s",
            data_fingerprints={"SYNTH 1h": "d"},
        ),
        resume_from=directory / LATEST_FILE if resume else None,
        resume_epoch=meta.epoch if meta is not None else 0,
    )


def _same(a: FitOutcome, b: FitOutcome) -> None:
    for (name, x), (_, y) in zip(
        a.module.state_dict().items(), b.module.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    strip = (
        [{k: v for k, v in vars_of(r).items() if k != "duration_s"} for r in a.history],
        [{k: v for k, v in vars_of(r).items() if k != "duration_s"} for r in b.history],
    )
    assert strip[0] == strip[1]
    assert (a.best_epoch, a.epochs_completed) == (b.best_epoch, b.epochs_completed)


def vars_of(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}


@pytest.mark.parametrize("every", [1, 2])
def test_an_aborted_fit_resumed_from_its_checkpoint_matches_the_uninterrupted_fit(
    tmp_path: Path, every: int
) -> None:
    splits = make_splits()
    whole = fit_model(
        model_spec(epochs=EPOCHS), splits, seed=3, checkpoint=_plan(tmp_path / "whole")
    )
    directory = tmp_path / "stopped"
    with pytest.raises(OperationCancelled):
        fit_model(
            model_spec(epochs=EPOCHS),
            make_splits(),
            seed=3,
            callbacks=[AbortIn(epoch=3, batch=4)],  # in the 4th epoch, 3 completed
            checkpoint=_plan(directory, every=every),
        )
    meta = read_meta(directory)
    assert meta is not None and meta.epoch == 3  # never the half epoch
    assert meta.reason == ("epoch" if every == 1 else "cancelled")
    resumed = fit_model(
        model_spec(epochs=EPOCHS),
        make_splits(),
        seed=3,
        checkpoint=_plan(directory, every=every, resume=True),
    )
    assert [r.epoch for r in resumed.history] == list(range(1, EPOCHS + 1))
    _same(whole, resumed)


def test_early_stopping_state_survives_a_resume(tmp_path: Path) -> None:
    stopping = EarlyStoppingSpec(patience=2, monitor="val_loss", min_delta=10.0)  # stops at 3
    whole = fit_model(
        model_spec(epochs=EPOCHS, early_stopping=stopping),
        make_splits(),
        seed=5,
        checkpoint=_plan(tmp_path / "whole"),
    )
    assert whole.stop_reason == "early_stopping" and whole.epochs_completed == 3
    directory = tmp_path / "stopped"
    with pytest.raises(OperationCancelled):
        fit_model(
            model_spec(epochs=EPOCHS, early_stopping=stopping),
            make_splits(),
            seed=5,
            callbacks=[AbortIn(epoch=2, batch=1)],
            checkpoint=_plan(directory),
        )
    resumed = fit_model(
        model_spec(epochs=EPOCHS, early_stopping=stopping),
        make_splits(),
        seed=5,
        checkpoint=_plan(directory, resume=True),
    )
    assert resumed.stop_reason == "early_stopping"
    _same(whole, resumed)


def test_latest_and_best_files_are_written_atomically_with_their_metadata(
    tmp_path: Path,
) -> None:
    outcome = fit_model(model_spec(epochs=4), make_splits(), seed=1, checkpoint=_plan(tmp_path))
    meta = read_meta(tmp_path)
    assert meta is not None
    assert (meta.epoch, meta.best_epoch) == (4, outcome.best_epoch)
    assert meta.data_fingerprints == {"SYNTH 1h": "d"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [LATEST_FILE, BEST_FILE, "checkpoint.json"]
    )  # no temporary file left behind
    best = torch.load(tmp_path / BEST_FILE, weights_only=False)
    assert best["epoch"] == outcome.best_epoch - 1  # Lightning counts epochs from 0
    assert "ktrdr" in best and set(best["ktrdr"]["rng"]) >= {"torch", "numpy", "python"}
