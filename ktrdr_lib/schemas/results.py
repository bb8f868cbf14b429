"""TrainingResult: one result shape for every runner, and the metric Structs inside it.

The keys are fixed by the design brief: ``training_metrics``, ``validation_metrics``,
``test_metrics``, ``resource_usage``, ``artifacts``, ``session_info``, ``data_summary``.
Pieces a run did not reach (a cancelled run has no test metrics) are ``None``, never missing.
"""

from __future__ import annotations

import msgspec

from ktrdr_lib.schemas.status import TrainingMode

__all__ = [
    "ArtifactsInfo",
    "BarsSummary",
    "ClassMetrics",
    "ClassificationMetrics",
    "DataSummary",
    "ResourceUsage",
    "SessionInfo",
    "TrainingMetrics",
    "TrainingResult",
]


class ClassMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Figures for one class.

    Attributes:
        precision: of the samples predicted as this class, the fraction that are.
        recall: of the samples of this class, the fraction predicted as it.
        f1: harmonic mean of precision and recall.
        support: samples of this class in the split.
    """

    precision: float
    recall: float
    f1: float
    support: int


class ClassificationMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """A model's figures on one split.

    Attributes:
        loss: mean cross-entropy.
        accuracy: fraction of samples classified right.
        precision: macro-averaged precision (classes absent from both truth and predictions
            are left out of the average).
        recall: macro-averaged recall.
        f1: macro-averaged F1.
        per_class: ``BUY``/``HOLD``/``SELL`` → :class:`ClassMetrics`.
        confusion_matrix: counts, rows the true class, columns the predicted class.
        samples: samples in the split.
        majority_class: the training split's most frequent class id.
        majority_baseline_accuracy: accuracy of always predicting ``majority_class`` here.
    """

    loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    samples: int
    majority_class: int
    majority_baseline_accuracy: float


class _Out(msgspec.Struct, frozen=True, kw_only=True):
    """Base of result Structs."""


class TrainingMetrics(_Out, frozen=True, kw_only=True):
    """How the fit went."""

    final_train_loss: float | None = None
    final_val_loss: float | None = None
    final_train_accuracy: float | None = None
    final_val_accuracy: float | None = None
    epochs_completed: int = 0
    best_epoch: int | None = None
    early_stopped: bool = False
    stop_reason: str | None = None
    training_time_s: float = 0.0
    samples_per_second: float | None = None


class ResourceUsage(_Out, frozen=True, kw_only=True):
    """Where and with what the run trained."""

    device: str = "cpu"
    accelerator: str = "cpu"
    gpu_name: str | None = None
    gpu_memory_peak_mb: float | None = None
    gpu_memory_total_mb: float | None = None
    gpu_utilization_percent: float | None = None
    process_peak_rss_mb: float | None = None
    cpu_threads: int | None = None


class ArtifactsInfo(_Out, frozen=True, kw_only=True):
    """What the run saved."""

    model_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    model_path: str | None = None
    checkpoint_paths: list[str] = msgspec.field(default_factory=list)
    size_bytes: int | None = None


class SessionInfo(_Out, frozen=True, kw_only=True):
    """Who, what and when."""

    operation_id: str
    mode: TrainingMode = "local"
    host_session_id: str | None = None
    strategy: str
    strategy_path: str | None = None
    symbols: list[str]
    timeframes: list[str]
    base_timeframe: str
    start_date: str | None = None
    end_date: str | None = None
    seed: int = 42
    started_at: str | None = None
    finished_at: str | None = None
    cancellation_reason: str | None = None


class BarsSummary(_Out, frozen=True, kw_only=True):
    """Bars used for one symbol and timeframe."""

    symbol: str
    timeframe: str
    bars: int
    first: str | None = None
    last: str | None = None
    resampled_from: str | None = None


class DataSummary(_Out, frozen=True, kw_only=True):
    """What the data became."""

    bars: list[BarsSummary] = msgspec.field(default_factory=list)
    samples: dict[str, int] = msgspec.field(default_factory=dict)
    label_distribution: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    feature_count: int = 0
    feature_names: list[str] = msgspec.field(default_factory=list)
    warmup_dropped: int = 0
    unlabelled_tail_dropped: int = 0
    purged: int = 0


class TrainingResult(_Out, frozen=True, kw_only=True):
    """The result of one training run, the same for local and host mode."""

    training_metrics: TrainingMetrics
    validation_metrics: ClassificationMetrics | None
    test_metrics: ClassificationMetrics | None
    resource_usage: ResourceUsage
    artifacts: ArtifactsInfo
    session_info: SessionInfo
    data_summary: DataSummary
