"""Request and response Structs of the HTTP API's KTRDR v1 routes (and its added ones).

The v1 shapes (``KTRDR-API-V1``) are kept field for field; new fields are only ever added.
New routes return the core Structs (ProgressSnapshot, TrainingResult, …) directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ktrdr_lib.errors import StrategyProblem
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.results import (
    FeatureReport,
    HonestEvaluation,
    RegressionMetrics,
    ResourceUsage,
)
from ktrdr_lib.schemas.status import TrainingMode
from ktrdr_lib.schemas.strategies import StrategyLayout, StrategyListing, StrategyNotice

__all__ = [
    "CancelRequest",
    "CancelResponse",
    "CancelResult",
    "ModelDetailResponse",
    "ModelListItem",
    "ModelLoadResponse",
    "ModelSaveRequest",
    "ModelSaveResponse",
    "ModelsListResponse",
    "OperationEnvelope",
    "OperationInfo",
    "OperationListItem",
    "OperationListResponse",
    "OperationProgress",
    "PerformanceModelInfo",
    "PerformanceResponse",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "RegressionBlock",
    "ResumeResponse",
    "StrategiesResponse",
    "StrategyValidateRequest",
    "StrategyValidateResponse",
    "TrainingStartRequest",
    "TrainingStartResponse",
]

Identifier = Annotated[str, Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, Meta(max_length=1000)]


class _In(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies: immutable, unknown fields rejected."""


class _Out(msgspec.Struct, frozen=True, kw_only=True):
    """Response bodies."""


# -- trainings ---------------------------------------------------------------------------------


class TrainingStartRequest(TrainingRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /trainings/start``: v1's fields (``strategy_name``, ``symbols``, ``timeframes``,
    dates, ``task_id``, ``detailed_analytics``) plus the training request's ``overrides``,
    ``epochs``, ``seed`` and ``loggers``, and ``mode`` (``local``, ``host`` or ``ray``); with
    ``mode: ray``, ``num_cpus`` and ``num_gpus`` are what the run's Ray worker reserves."""

    symbols: Annotated[list[Identifier], Meta(min_length=1, max_length=100)]
    timeframes: Annotated[list[Identifier], Meta(min_length=1, max_length=10)]
    strategy_name: Identifier
    task_id: Identifier | None = None
    mode: TrainingMode = "local"
    epochs: Annotated[int, Meta(ge=1)] | None = None
    seed: Annotated[int, Meta(ge=0)] = 42

    def training_request(self) -> TrainingRequest:
        """The core request inside this body."""
        fields = {name: getattr(self, name) for name in TrainingRequest.__struct_fields__}
        return TrainingRequest(**fields)


class TrainingStartResponse(_Out, frozen=True, kw_only=True):
    """v1 start response; ``task_id`` is the operation id."""

    success: bool
    task_id: str
    status: str
    message: str
    symbols: list[str]
    timeframes: list[str]
    strategy_name: str
    estimated_duration_minutes: int
    mode: str = "local"


class PerformanceModelInfo(_Out, frozen=True, kw_only=True):
    """v1 ``model_info`` of the performance answer: the model the run saved.

    Attributes:
        model_size_bytes: total size of the saved version's files.
        parameters_count: trainable parameters of the network.
        architecture: model type and hidden-layer widths, as v1 shows them: ``mlp_25_15``;
            an LSTM or GRU lists one width per stacked layer (``gru_64_64``).
        model_id: ``name/vN`` of the saved version.
        model_path: the saved version's directory.

    All ``None`` when the run saved no model; ``parameters_count`` and ``architecture`` are
    read from the saved version's files, so they are ``None`` when it is gone.
    """

    model_size_bytes: int | None = None
    parameters_count: int | None = None
    architecture: str | None = None
    model_id: str | None = None
    model_path: str | None = None


class PerformanceResponse(_Out, frozen=True, kw_only=True):
    """v1 ``GET /trainings/{task_id}/performance``, plus ``feature_report`` (which inputs were
    dead or constant on the training rows), ``resource_usage`` (device, the run's peak
    memory and the seconds each phase took) and ``evaluation``: the honest comparison (the
    model against the strongest baseline its label kind has, the signal economics on the test
    split beside buy-and-hold and that baseline, the placebo runs), the TrainingResult's own
    ``evaluation``; its ``headline`` says it in one line. ``test_metrics`` keeps v1's figures
    (``majority_baseline_accuracy`` among them), which are not the headline."""

    success: bool
    task_id: str
    status: str
    training_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    model_info: PerformanceModelInfo
    validation_metrics: dict[str, Any] | None = None
    feature_report: FeatureReport | None = None
    regression_metrics: RegressionBlock | None = None
    resource_usage: ResourceUsage | None = None
    evaluation: HonestEvaluation | None = None


class RegressionBlock(_Out, frozen=True, kw_only=True):
    """A regression run's figures on the performance route (its ``test_metrics`` is empty)."""

    validation: RegressionMetrics
    test: RegressionMetrics


# -- operations --------------------------------------------------------------------------------


class OperationProgress(_Out, frozen=True, kw_only=True):
    """v1 progress block; ``context`` carries the ProgressSnapshot's fields."""

    percentage: float
    current_step: str
    steps_completed: int
    steps_total: int
    items_processed: int
    items_total: int
    current_item: str | None
    context: dict[str, Any]


class OperationInfo(_Out, frozen=True, kw_only=True):
    """v1 operation shape; ``status`` is one of the five v1 statuses, ``status_detail`` the
    precise one (``cancelling``, ``interrupted``)."""

    operation_id: str
    operation_type: str
    status: str
    status_detail: str
    created_at: str
    started_at: str | None
    completed_at: str | None
    progress: OperationProgress
    metadata: dict[str, Any]
    error_message: str | None
    warnings: list[str]
    errors: list[str]
    result_summary: dict[str, Any] | None
    cancellation_reason: str | None = None


class OperationEnvelope(_Out, frozen=True, kw_only=True):
    """``{success, data}`` around one operation."""

    success: bool
    data: OperationInfo


class OperationListItem(_Out, frozen=True, kw_only=True):
    """One row of ``GET /operations``."""

    operation_id: str
    operation_type: str
    status: str
    status_detail: str
    created_at: str
    progress_percentage: float
    current_step: str
    symbol: str
    duration_seconds: float | None


class OperationListResponse(_Out, frozen=True, kw_only=True):
    """v1 ``GET /operations``."""

    success: bool
    total_count: int
    active_count: int
    data: list[OperationListItem]


class CancelRequest(_In, frozen=True, kw_only=True):
    """Optional body of ``DELETE /operations/{id}`` and ``POST /operations/{id}/cancel``.

    Attributes:
        reason: recorded as the cancellation reason.
        graceful: stop after the running epoch, then evaluate and save (ends ``completed``).
        force: v1's field: stop now, within a batch (an abort), even when a graceful stop is
            under way, which it escalates. It cannot be sent with ``graceful: true`` (the two
            ask for opposite stops: 400). Without ``graceful`` every cancel is an abort, so
            ``force`` only says so explicitly.
    """

    reason: ShortText | None = None
    force: bool = False
    graceful: bool = False


class CancelResult(_Out, frozen=True, kw_only=True):
    """v1 cancel ``data``: ``status`` is v1's ``cancelled`` once the operation has stopped
    (however it ended) or ``cancelling`` while it is stopping; ``status_detail`` (added to
    v1's fields) is the precise status (``completed`` for a graceful stop that finished,
    ``interrupted`` when its process was found gone)."""

    operation_id: str
    status: Literal["cancelled", "cancelling"]
    cancelled_at: str
    cancellation_reason: str
    task_cancelled: bool
    training_session_cancelled: bool
    graceful: bool = False
    status_detail: str | None = None


class ResumeResponse(_Out, frozen=True, kw_only=True):
    """``POST /operations/{id}/resume``: the stopped run continues as a new operation
    (``task_id``) linked to it (``resumed_from``), from the epoch its checkpoint holds."""

    success: bool
    task_id: str
    status: str
    resumed_from: str
    from_epoch: int
    message: str


class CancelResponse(_Out, frozen=True, kw_only=True):
    """v1 cancel response."""

    success: bool
    data: CancelResult


# -- models ------------------------------------------------------------------------------------


class ModelSaveRequest(_In, frozen=True, kw_only=True):
    """``POST /models/save``."""

    task_id: Identifier
    model_name: Identifier
    description: ShortText | None = None


class ModelSaveResponse(_Out, frozen=True, kw_only=True):
    """v1 save response."""

    success: bool
    model_id: str
    model_name: str
    model_path: str
    task_id: str
    saved_at: str
    model_size_mb: float


class ModelLoadResponse(_Out, frozen=True, kw_only=True):
    """v1 load response."""

    success: bool
    model_name: str
    model_loaded: bool
    model_info: dict[str, Any]


class PredictRequest(_In, frozen=True, kw_only=True):
    """``POST /models/predict``."""

    model_name: Identifier
    symbol: Identifier
    timeframe: Identifier | None = None  # default: the model's base timeframe
    test_date: str | None = None


class Prediction(_Out, frozen=True, kw_only=True):
    """v1 prediction block; a regression model adds its ``predicted_return``, a regime model
    its ``regime``."""

    signal: str
    confidence: float
    signal_strength: float
    fuzzy_outputs: dict[str, float]
    probabilities: dict[str, float] | None = None
    predicted_return: float | None = None
    regime: str | None = None


class PredictResponse(_Out, frozen=True, kw_only=True):
    """v1 predict response."""

    success: bool
    model_name: str
    symbol: str
    test_date: str
    prediction: Prediction
    input_features: dict[str, float]
    timeframe: str | None = None
    model_version: int | None = None


class ModelListItem(_Out, frozen=True, kw_only=True):
    """One row of ``GET /models`` (``selection_value``: the validation figure
    ``version=best`` ranks by, added to v1's fields)."""

    model_id: str
    model_name: str
    symbol: str | None
    timeframe: str | None
    created_at: str
    training_accuracy: float | None
    test_accuracy: float | None
    description: str | None
    version: int | None = None
    selection_value: float | None = None


class ModelsListResponse(_Out, frozen=True, kw_only=True):
    """v1 ``GET /models``."""

    success: bool
    models: list[ModelListItem]


class ModelDetailResponse(_Out, frozen=True, kw_only=True):
    """``GET /models/{name}``: versions, the newest version's metrics and strategy, and which
    versions ``load`` picks: ``latest_version`` (the newest, the default) and
    ``best_version`` (the highest validation figure; ``None`` when no version has one)."""

    success: bool
    model_name: str
    versions: list[dict[str, Any]]
    metrics: dict[str, Any]
    strategy: dict[str, Any]
    latest_version: int | None = None
    best_version: int | None = None


# -- strategies --------------------------------------------------------------------------------


class StrategiesResponse(_Out, frozen=True, kw_only=True):
    """``GET /strategies``."""

    success: bool
    strategies: list[StrategyListing]


class StrategyValidateRequest(_In, frozen=True, kw_only=True):
    """``POST /strategies/validate``: the YAML text of a strategy."""

    content: Annotated[str, Meta(max_length=200_000)]
    file_name: ShortText | None = None


class StrategyValidateResponse(_Out, frozen=True, kw_only=True):
    """Every problem and notice, with field paths and lines; ``valid`` when there are no
    problems (notices never make a strategy invalid).

    Attributes:
        notices: where the strategy trains differently from what KTRDR would have done with
            the file (added; v1 clients ignore it).
        layout: the layout the text is written in: ``legacy``, ``v2`` or ``v3`` (added;
            ``None`` when the text is not a strategy mapping).
    """

    success: bool
    valid: bool
    name: str | None
    problems: list[StrategyProblem]
    notices: list[StrategyNotice] = msgspec.field(default_factory=list)
    layout: StrategyLayout | None = None
