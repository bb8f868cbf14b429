"""The flat public namespace is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import ktrdr_lib

EXPECTED = [
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


def test_all_is_sorted_and_pinned() -> None:
    assert ktrdr_lib.__all__ == sorted(ktrdr_lib.__all__)
    assert ktrdr_lib.__all__ == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in ktrdr_lib.__all__:
        assert getattr(ktrdr_lib, name) is not None


def test_core_never_imports_web_or_widget_toolkits() -> None:
    code = (
        "import sys, ktrdr_lib\n"
        "for n in ktrdr_lib.__all__: getattr(ktrdr_lib, n)\n"
        "import ktrdr_lib.pipeline.run, ktrdr_lib.models.store, ktrdr_lib.operations.orchestrator\n"
        "bad = [m for m in ('litestar', 'ipywidgets', 'papermill') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plain_import_is_light() -> None:
    code = "import sys, ktrdr_lib; print('lightning' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
