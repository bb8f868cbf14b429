"""The contracts between parts: every Struct that crosses a process or network boundary.

Importing this package loads msgspec and nothing heavier (no torch, Lightning, pandas or web
framework), so a client that only reads results, snapshots or errors stays light. The library,
the HTTP API, the training host, the CLI and the notebook view all encode and decode these
classes; none of them reads a result by string key.

Example:
    >>> import msgspec
    >>> from ktrdr_lib.schemas import ProgressSnapshot
    >>> snap = msgspec.json.decode(b'{"operation_id": "op_1", "percentage": 12.5}',
    ...                            type=ProgressSnapshot)
    >>> snap.percentage, snap.status
    (12.5, 'pending')
"""

from __future__ import annotations

from ktrdr_lib.schemas.errors import ErrorBody
from ktrdr_lib.schemas.health import (
    CancelLatency,
    HealthReport,
    HealthStatus,
    OperationMetrics,
    TrainingDiagnostics,
)
from ktrdr_lib.schemas.host import (
    HostHealth,
    HostSessionCreated,
    HostSessionList,
    HostSessionRequest,
    HostSessionStatus,
    HostStopRequest,
    ModelArchive,
)
from ktrdr_lib.schemas.models import ModelDetail, ModelInfo
from ktrdr_lib.schemas.operations import FinalEvent, OperationList, OperationSnapshot
from ktrdr_lib.schemas.progress import DeviceResources, EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    BarsSummary,
    ClassificationMetrics,
    ClassMetrics,
    DataSummary,
    FeatureReport,
    RayPlacement,
    RegressionMetrics,
    ResourceUsage,
    SessionInfo,
    TrainingMetrics,
    TrainingResult,
)
from ktrdr_lib.schemas.status import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OperationStatus,
    Phase,
    PipelinePhase,
    TrainingMode,
)
from ktrdr_lib.schemas.strategies import (
    StrategyCheck,
    StrategyLayout,
    StrategyListing,
    StrategyNotice,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "ArtifactsInfo",
    "BarsSummary",
    "CancelLatency",
    "ClassMetrics",
    "ClassificationMetrics",
    "DataSummary",
    "DeviceResources",
    "EpochHistoryRow",
    "ErrorBody",
    "FeatureReport",
    "FinalEvent",
    "HealthReport",
    "HealthStatus",
    "HostHealth",
    "HostSessionCreated",
    "HostSessionList",
    "HostSessionRequest",
    "HostSessionStatus",
    "HostStopRequest",
    "ModelArchive",
    "ModelDetail",
    "ModelInfo",
    "OperationList",
    "OperationMetrics",
    "OperationSnapshot",
    "OperationStatus",
    "Phase",
    "PipelinePhase",
    "ProgressSnapshot",
    "RayPlacement",
    "RegressionMetrics",
    "ResourceUsage",
    "SessionInfo",
    "StrategyCheck",
    "StrategyLayout",
    "StrategyListing",
    "StrategyNotice",
    "TrainingDiagnostics",
    "TrainingMetrics",
    "TrainingMode",
    "TrainingRequest",
    "TrainingResult",
]
