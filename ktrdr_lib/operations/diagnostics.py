"""Diagnostics: what an epoch history says about a run."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ktrdr_lib.schemas.health import TrainingDiagnostics
from ktrdr_lib.schemas.progress import EpochHistoryRow

__all__ = ["diagnose_history"]


def diagnose_history(
    history: Sequence[EpochHistoryRow], *, window: int = 3, min_improvement: float = 1e-3
) -> TrainingDiagnostics:
    """Overfitting and plateau flags from an epoch history (needs ``window + 1`` epochs)."""
    rows = [r for r in history if r.val_loss is not None and r.train_loss is not None]
    if not rows:
        return TrainingDiagnostics()
    best = min(rows, key=lambda r: r.val_loss or 0.0)
    last = rows[-1]
    gap = None
    if last.val_loss is not None and last.train_loss is not None:
        gap = round(last.val_loss - last.train_loss, 6)
    notes: list[str] = []
    overfitting = plateau = False
    if len(rows) > window:
        tail = rows[-(window + 1) :]
        val = [r.val_loss or 0.0 for r in tail]
        train = [r.train_loss or 0.0 for r in tail]
        rising = all(b > a for a, b in itertools.pairwise(val))
        falling = all(b < a for a, b in itertools.pairwise(train))
        overfitting = rising and falling
        if overfitting:
            notes.append(
                f"validation loss rose for {window} epochs while training loss fell: "
                "overfitting; consider early stopping, more dropout or fewer epochs"
            )
        before = min(r.val_loss or 0.0 for r in rows[:-window])
        recent = min(r.val_loss or 0.0 for r in rows[-window:])
        plateau = before - recent < min_improvement * abs(before)
        if plateau and not overfitting:
            notes.append(
                f"validation loss has not improved by {min_improvement:.1%} in {window} epochs: "
                "a plateau; a lower learning rate or early stopping may help"
            )
    return TrainingDiagnostics(
        overfitting=overfitting,
        plateau=plateau,
        best_epoch=best.epoch,
        generalization_gap=gap,
        notes=notes,
    )
