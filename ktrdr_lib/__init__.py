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
    from ktrdr_lib.aggregator import ResultAggregator
    from ktrdr_lib.cancellation import CancelToken
    from ktrdr_lib.context import TrainingOperationContext, build_training_context
    from ktrdr_lib.data.loader import load_ohlcv
    from ktrdr_lib.data.synthetic import generate_ohlcv
    from ktrdr_lib.diagnostics import HealthReport
    from ktrdr_lib.host_runner import HostTrainingRunner
    from ktrdr_lib.inference import SignalPrediction, predict_signal
    from ktrdr_lib.models.store import ModelDetail, ModelStore, list_models, load_model
    from ktrdr_lib.operations import (
        EpochHistoryRow,
        OperationSnapshot,
        OperationStore,
        ProgressSnapshot,
    )
    from ktrdr_lib.orchestrator import OperationHandle, TrainingOrchestrator
    from ktrdr_lib.pipeline import TrainerOptions, run_training_pipeline
    from ktrdr_lib.process_runner import ProcessTrainingRunner
    from ktrdr_lib.results import TrainingResult
    from ktrdr_lib.runners import LocalTrainingRunner
    from ktrdr_lib.strategy.discovery import list_strategies, resolve_strategy
    from ktrdr_lib.strategy.loader import check_strategy_text, load_strategy
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
    "StrategyProblem",
    "StrategySpec",
    "TrainerOptions",
    "TrainingError",
    "TrainingOperationContext",
    "TrainingOrchestrator",
    "TrainingResult",
    "__version__",
    "build_training_context",
    "check_strategy_text",
    "generate_ohlcv",
    "list_models",
    "list_strategies",
    "load_model",
    "load_ohlcv",
    "load_strategy",
    "predict_signal",
    "resolve_strategy",
    "run_training_pipeline",
]

_LAZY: dict[str, str] = {
    "CancelToken": "ktrdr_lib.cancellation",
    "EpochHistoryRow": "ktrdr_lib.operations",
    "HealthReport": "ktrdr_lib.diagnostics",
    "HostTrainingRunner": "ktrdr_lib.host_runner",
    "LocalTrainingRunner": "ktrdr_lib.runners",
    "ModelDetail": "ktrdr_lib.models.store",
    "ModelStore": "ktrdr_lib.models.store",
    "OperationHandle": "ktrdr_lib.orchestrator",
    "OperationSnapshot": "ktrdr_lib.operations",
    "OperationStore": "ktrdr_lib.operations",
    "ProcessTrainingRunner": "ktrdr_lib.process_runner",
    "ProgressSnapshot": "ktrdr_lib.operations",
    "ResultAggregator": "ktrdr_lib.aggregator",
    "SignalPrediction": "ktrdr_lib.inference",
    "StrategySpec": "ktrdr_lib.strategy.spec",
    "TrainerOptions": "ktrdr_lib.pipeline",
    "TrainingOperationContext": "ktrdr_lib.context",
    "TrainingOrchestrator": "ktrdr_lib.orchestrator",
    "TrainingResult": "ktrdr_lib.results",
    "build_training_context": "ktrdr_lib.context",
    "check_strategy_text": "ktrdr_lib.strategy.loader",
    "generate_ohlcv": "ktrdr_lib.data.synthetic",
    "list_models": "ktrdr_lib.models.store",
    "list_strategies": "ktrdr_lib.strategy.discovery",
    "load_model": "ktrdr_lib.models.store",
    "load_ohlcv": "ktrdr_lib.data.loader",
    "load_strategy": "ktrdr_lib.strategy.loader",
    "predict_signal": "ktrdr_lib.inference",
    "resolve_strategy": "ktrdr_lib.strategy.discovery",
    "run_training_pipeline": "ktrdr_lib.pipeline",
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
