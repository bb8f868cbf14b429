"""What a run's history says, and what the orchestrator reports about itself."""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.progress import EpochHistoryRow

__all__ = [
    "HIDDEN_DETAILS_NOTE",
    "CancelLatency",
    "HealthReport",
    "HealthStatus",
    "OperationMetrics",
    "TrainingDiagnostics",
]


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


HIDDEN_DETAILS_NOTE = "details (store, host, devices, active runs) are shown with the bearer token"


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What a server's public health route tells a caller without its token: only whether it
    is up. The details (store paths, host URL, host name, active ids) are for callers with the
    token.

    Attributes:
        status: ``"ok"``, or ``"shut down"`` while stopping.
        note: says where the details went (always there, so that this answer and the full
            report are told apart by their fields).
    """

    status: str
    note: str


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
