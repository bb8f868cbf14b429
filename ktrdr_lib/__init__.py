"""ktrdr_lib: train KTRDR neuro-fuzzy strategy models as observable, cancellable operations.

Importing the package is cheap; the heavy parts (torch, Lightning) load on first use of the
names that need them.

Example:
    >>> import ktrdr_lib
    >>> ctx = ktrdr_lib.build_training_context("rsi_mean_reversion", epochs=5)
    >>> result = ktrdr_lib.run_training_pipeline(ctx)  # doctest: +SKIP
    >>> result.test_metrics.accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ktrdr_lib.errors import (
    ConfigError,
    DataError,
    HostUnavailableError,
    KtrdrError,
    NotFoundError,
    OperationCancelled,
    StateConflictError,
    StrategyError,
    StrategyNotFoundError,
    StrategyProblem,
    TrainingError,
)

if TYPE_CHECKING:
    from ktrdr_lib.data.loader import load_ohlcv
    from ktrdr_lib.data.synthetic import generate_ohlcv
    from ktrdr_lib.inference import SignalPrediction, predict_signal
    from ktrdr_lib.models.store import ModelStore, list_models, load_model
    from ktrdr_lib.operations.handle import OperationHandle
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.operations.store import OperationStore
    from ktrdr_lib.pipeline.aggregate import ResultAggregator
    from ktrdr_lib.pipeline.context import TrainingOperationContext, build_training_context
    from ktrdr_lib.pipeline.prepare import check_features
    from ktrdr_lib.pipeline.run import TrainerOptions, run_training_pipeline
    from ktrdr_lib.progress.cancellation import CancelToken
    from ktrdr_lib.runners.host import HostTrainingRunner
    from ktrdr_lib.runners.local import LocalTrainingRunner
    from ktrdr_lib.runners.process import ProcessTrainingRunner
    from ktrdr_lib.schemas.health import HealthReport
    from ktrdr_lib.schemas.models import ModelDetail
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
    from ktrdr_lib.schemas.requests import TrainingRequest
    from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
    from ktrdr_lib.schemas.strategies import StrategyNotice
    from ktrdr_lib.strategy.discovery import list_strategies, resolve_strategy
    from ktrdr_lib.strategy.loader import check_strategy, check_strategy_text, load_strategy
    from ktrdr_lib.strategy.migrate import migrate_strategy
    from ktrdr_lib.strategy.spec import StrategySpec

__version__ = "0.1.0"

__all__ = [
    "CancelToken",
    "ConfigError",
    "DataError",
    "EpochHistoryRow",
    "HealthReport",
    "HostTrainingRunner",
    "HostUnavailableError",
    "KtrdrError",
    "LocalTrainingRunner",
    "ModelDetail",
    "ModelStore",
    "NotFoundError",
    "OperationCancelled",
    "OperationHandle",
    "OperationSnapshot",
    "OperationStore",
    "ProcessTrainingRunner",
    "ProgressSnapshot",
    "ResultAggregator",
    "SignalPrediction",
    "StateConflictError",
    "StrategyError",
    "StrategyNotFoundError",
    "StrategyNotice",
    "StrategyProblem",
    "StrategySpec",
    "TrainerOptions",
    "TrainingAnalytics",
    "TrainingError",
    "TrainingOperationContext",
    "TrainingOrchestrator",
    "TrainingRequest",
    "TrainingResult",
    "__version__",
    "build_training_context",
    "check_features",
    "check_strategy",
    "check_strategy_text",
    "generate_ohlcv",
    "list_models",
    "list_strategies",
    "load_model",
    "load_ohlcv",
    "load_strategy",
    "migrate_strategy",
    "predict_signal",
    "resolve_strategy",
    "run_training_pipeline",
]

_LAZY: dict[str, str] = {
    "CancelToken": "ktrdr_lib.progress.cancellation",
    "EpochHistoryRow": "ktrdr_lib.schemas.progress",
    "HealthReport": "ktrdr_lib.schemas.health",
    "HostTrainingRunner": "ktrdr_lib.runners.host",
    "LocalTrainingRunner": "ktrdr_lib.runners.local",
    "ModelDetail": "ktrdr_lib.schemas.models",
    "ModelStore": "ktrdr_lib.models.store",
    "OperationHandle": "ktrdr_lib.operations.handle",
    "OperationSnapshot": "ktrdr_lib.schemas.operations",
    "OperationStore": "ktrdr_lib.operations.store",
    "ProcessTrainingRunner": "ktrdr_lib.runners.process",
    "ProgressSnapshot": "ktrdr_lib.schemas.progress",
    "ResultAggregator": "ktrdr_lib.pipeline.aggregate",
    "SignalPrediction": "ktrdr_lib.inference",
    "StrategyNotice": "ktrdr_lib.schemas.strategies",
    "StrategySpec": "ktrdr_lib.strategy.spec",
    "TrainerOptions": "ktrdr_lib.pipeline.run",
    "TrainingAnalytics": "ktrdr_lib.schemas.results",
    "TrainingOperationContext": "ktrdr_lib.pipeline.context",
    "TrainingOrchestrator": "ktrdr_lib.operations.orchestrator",
    "TrainingRequest": "ktrdr_lib.schemas.requests",
    "TrainingResult": "ktrdr_lib.schemas.results",
    "build_training_context": "ktrdr_lib.pipeline.context",
    "check_features": "ktrdr_lib.pipeline.prepare",
    "check_strategy": "ktrdr_lib.strategy.loader",
    "check_strategy_text": "ktrdr_lib.strategy.loader",
    "generate_ohlcv": "ktrdr_lib.data.synthetic",
    "list_models": "ktrdr_lib.models.store",
    "list_strategies": "ktrdr_lib.strategy.discovery",
    "load_model": "ktrdr_lib.models.store",
    "load_ohlcv": "ktrdr_lib.data.loader",
    "load_strategy": "ktrdr_lib.strategy.loader",
    "migrate_strategy": "ktrdr_lib.strategy.migrate",
    "predict_signal": "ktrdr_lib.inference",
    "resolve_strategy": "ktrdr_lib.strategy.discovery",
    "run_training_pipeline": "ktrdr_lib.pipeline.run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ktrdr_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
