"""What a run's history says, and what the orchestrator reports about itself."""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.progress import EpochHistoryRow

__all__ = ["CancelLatency", "HealthReport", "OperationMetrics", "TrainingDiagnostics"]


class TrainingDiagnostics(msgspec.Struct, frozen=True, kw_only=True):
    """Flags computed from the epoch history.

    Attributes:
        overfitting: validation loss rose over the last ``window`` epochs while training
            loss fell.
        plateau: the best validation loss of the last ``window`` epochs improved on the
            best before them by less than ``min_improvement`` (relative).
        best_epoch: epoch with the lowest validation loss.
        generalization_gap: last ``val_loss - train_loss``.
        notes: the flags in words.
    """

    overfitting: bool = False
    plateau: bool = False
    best_epoch: int | None = None
    generalization_gap: float | None = None
    notes: list[str] = msgspec.field(default_factory=list)


class OperationMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """An operation's epoch history and what it says."""

    operation_id: str
    epochs: list[EpochHistoryRow]
    diagnostics: TrainingDiagnostics


class CancelLatency(msgspec.Struct, frozen=True, kw_only=True):
    """How long one cancel took: request → the run noticed → final state."""

    operation_id: str
    graceful: bool
    observed_ms: float | None
    final_ms: float
    final_status: str


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``TrainingOrchestrator.health()`` reports."""

    status: str
    mode: str
    store_path: str
    store_size_bytes: int
    max_concurrent: int
    queue_depth: int
    active_operation_ids: list[str]
    host_url: str | None = None
    host_session_ids: list[str] = msgspec.field(default_factory=list)
    last_cancel_latencies: list[CancelLatency] = msgspec.field(default_factory=list)
    versions: dict[str, str] = msgspec.field(default_factory=dict)
    device: dict[str, Any] = msgspec.field(default_factory=dict)
    checkpoints_path: str | None = None
    checkpoints_bytes: int = 0
