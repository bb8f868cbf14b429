"""The progress contract: one snapshot Struct every view shows, and one row per epoch."""

from __future__ import annotations

import msgspec

from ktrdr_lib.schemas.status import OperationStatus, Phase

__all__ = ["DeviceResources", "EpochHistoryRow", "ProgressSnapshot"]


class DeviceResources(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The device a run trains on, as a progress snapshot shows it (``{}`` before training).

    Attributes:
        device: torch's name for it (``cpu``, ``cuda:0``).
        gpu_used: whether it is a GPU.
        gpu_name: the GPU's name.
        gpu_memory_allocated_mb: memory torch holds on it now.
        gpu_memory_total_mb: its memory.
        gpu_utilization_percent: how busy it is, where measurable.
    """

    device: str | None = None
    gpu_used: bool | None = None
    gpu_name: str | None = None
    gpu_memory_allocated_mb: float | None = None
    gpu_memory_total_mb: float | None = None
    gpu_utilization_percent: float | None = None


class ProgressSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What every view shows about a run at one moment (the progress contract, docs/contracts.md).

    ``sequence`` increases strictly with every snapshot of an operation; ``percentage`` never
    decreases within a run. ``metrics`` holds the latest epoch figures (``train_loss``,
    ``val_loss``, ``train_accuracy``, ``val_accuracy``, for epoch ``metrics_epoch``) and, between
    epoch ends, ``train_loss_batch``.
    """

    operation_id: str
    sequence: int = 0
    status: OperationStatus = "pending"
    phase: Phase = "queued"
    percentage: float = 0.0
    message: str = ""
    epoch: int = 0
    total_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    items_processed: int = 0
    items_total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    metrics: dict[str, float | None] = msgspec.field(default_factory=dict)
    metrics_epoch: int = 0
    resources: DeviceResources = msgspec.field(default_factory=DeviceResources)
    host_session_id: str | None = None
    updated_at: str = ""


class EpochHistoryRow(msgspec.Struct, frozen=True, kw_only=True):
    """One epoch of a run's history."""

    epoch: int
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    duration_s: float | None = None
