"""What a stored version is, read from its small JSON files (listing never loads weights)."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

from ktrdr_lib.errors import DataError
from ktrdr_lib.features.labels import LABEL_NAMES
from ktrdr_lib.models.layout import (
    METADATA,
    METRICS,
    MODEL_CONFIG,
    STRATEGY,
    directory_size,
    read_json,
)
from ktrdr_lib.schemas.models import ModelInfo
from ktrdr_lib.strategy.spec import ArchitectureSpec

__all__ = ["SELECTION_METRICS", "model_info", "selection_figure"]

SELECTION_METRICS = ("validation_accuracy", "validation_directional_accuracy")
"""What ``version="best"`` ranks a model's versions by (higher is better), read from each
version's ``metrics.json``: a classifier's validation accuracy, a regression's validation
directional accuracy. The validation split, never the test split: choosing by the test split
would make its figures optimistic."""


def selection_figure(metrics: Any) -> tuple[str, float] | None:
    """``(metric, value)`` a version is ranked by for ``version="best"``
    (:data:`SELECTION_METRICS`), from its ``metrics.json``; ``None`` when it has no validation
    figure, or records that it completed no epoch (an untrained network is never "best").

    Example:
        >>> selection_figure({"validation": {"accuracy": 0.61, "loss": 0.9}})
        ('validation_accuracy', 0.61)
    """
    if _number(metrics, ("training", "epochs_completed")) == 0:
        return None
    accuracy = _number(metrics, ("validation", "accuracy"))
    if accuracy is not None:
        return SELECTION_METRICS[0], accuracy
    directional = _number(metrics, ("validation", "directional_accuracy"))
    if directional is not None:
        return SELECTION_METRICS[1], directional
    return None


def model_info(name: str, version: int, path: Path) -> ModelInfo:
    # Listing shows what it can: a missing or broken file leaves its fields empty, and
    # load() / describe() report it.
    fields: dict[str, Any] = {}
    with contextlib.suppress(DataError, AttributeError):
        metadata = read_json(path / METADATA)
        fields["created_at"] = _text(metadata.get("created_at"))
        fields["description"] = _text(metadata.get("description"))
        fields["symbols"] = _texts(metadata.get("symbols"))
        fields["timeframes"] = _texts(metadata.get("timeframes"))
        fields["base_timeframe"] = _text(metadata.get("base_timeframe"))
    with contextlib.suppress(DataError):
        metrics = read_json(path / METRICS)
        fields["training_accuracy"] = _number(metrics, ("training", "final_train_accuracy"))
        fields["test_accuracy"] = _number(metrics, ("test", "accuracy"))
        epochs = _number(metrics, ("training", "epochs_completed"))
        fields["epochs_completed"] = None if epochs is None else int(epochs)
        figure = selection_figure(metrics)
        if figure is not None:
            fields["selection_metric"], fields["selection_value"] = figure
    with contextlib.suppress(DataError, AttributeError):
        fields.update(_network_summary(read_json(path / MODEL_CONFIG)))
    if fields.get("description") is None:
        with contextlib.suppress(DataError, AttributeError):
            fields["description"] = _text(read_json(path / STRATEGY).get("description"))
    return ModelInfo(
        name=name,
        version=version,
        model_id=f"{name}/v{version}",
        path=str(path),
        created_at=fields.pop("created_at", None),
        size_bytes=directory_size(path),
        **fields,
    )


def _network_summary(model_config: dict[str, Any]) -> dict[str, Any]:
    """``architecture`` and ``parameters_count`` from ``model_config.json`` (no weights read).

    ``architecture`` is the model type and the width of each hidden layer: ``mlp_32_16``, or
    for an LSTM/GRU one ``hidden_size`` per stacked layer (``gru_64_64``). Versions saved
    before ``parameters_count`` was stored get an MLP's computed from the layer widths: each
    ``Linear(a, b)`` holds ``a * b`` weights and ``b`` biases.
    """
    spec = model_config.get("model_spec")
    if not isinstance(spec, dict):
        return {}
    kind = str(spec.get("type", "mlp")).lower()
    architecture = spec.get("architecture")
    settings = architecture if isinstance(architecture, dict) else {}
    defaults = ArchitectureSpec()
    if kind in ("lstm", "gru"):
        size = settings.get("hidden_size", defaults.hidden_size)
        layers = settings.get("num_layers", defaults.num_layers)
        hidden = [size] * layers if isinstance(size, int) and isinstance(layers, int) else None
    else:
        hidden = settings.get("hidden_layers", defaults.hidden_layers)
    if not isinstance(hidden, list) or not all(isinstance(width, int) for width in hidden):
        return {}
    summary: dict[str, Any] = {"architecture": "_".join([kind, *map(str, hidden)])}
    stored = model_config.get("parameters_count")
    n_features = model_config.get("n_features")
    if isinstance(stored, int):
        summary["parameters_count"] = stored
    elif isinstance(n_features, int) and kind == "mlp":
        widths = [n_features, *hidden, _outputs(model_config)]
        summary["parameters_count"] = sum(a * b + b for a, b in itertools.pairwise(widths))
    return summary


def _outputs(model_config: dict[str, Any]) -> int:
    """The network's outputs: one for regression, else one per class (BUY/HOLD/SELL when
    the version predates the class list)."""
    if model_config.get("task") == "regression":
        return 1
    classes = model_config.get("classes")
    return len(classes) if isinstance(classes, list) and classes else len(LABEL_NAMES)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _number(document: Any, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return float(document) if isinstance(document, int | float) else None
