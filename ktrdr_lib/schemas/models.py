"""Stored models as listings and descriptions show them."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ModelDetail", "ModelInfo"]


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One stored model version, as listed.

    Everything comes from the version's small JSON files; listing never loads weights.

    Attributes:
        name: strategy name.
        version: version number.
        model_id: ``"name/vN"``.
        path: the version directory.
        created_at: UTC ISO time of saving (``None`` when the metadata is unreadable).
        size_bytes: total size of its files.
        training_accuracy: final training accuracy, when the metrics hold it.
        test_accuracy: test accuracy, when the metrics hold it.
        description: the description given when it was saved, else the strategy's.
        symbols: the symbols it was trained on.
        timeframes: the timeframes it was trained on.
        base_timeframe: the timeframe its rows (and predictions) are on.
        parameters_count: trainable parameters of the network.
        architecture: ``"mlp_32_16"``: model type and hidden-layer widths.
        epochs_completed: the epochs its run completed, when the metrics hold it.
        selection_metric: what ``version="best"`` ranks it by (``validation_accuracy``, or
            ``validation_directional_accuracy`` for a regression); ``None`` when it has no
            such figure (it is then never "best").
        selection_value: its value of ``selection_metric`` (higher is better).
    """

    name: str
    version: int
    model_id: str
    path: str
    created_at: str | None
    size_bytes: int
    training_accuracy: float | None = None
    test_accuracy: float | None = None
    description: str | None = None
    symbols: list[str] = msgspec.field(default_factory=list)
    timeframes: list[str] = msgspec.field(default_factory=list)
    base_timeframe: str | None = None
    parameters_count: int | None = None
    architecture: str | None = None
    epochs_completed: int | None = None
    selection_metric: str | None = None
    selection_value: float | None = None


class ModelDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One model name in full: every version, and the latest version's figures and strategy.

    Attributes:
        name: strategy (model) name.
        latest_version: the highest version number (the newest: what ``load_model(name)``
            loads).
        best_version: the version ``load_model(name, version="best")`` loads (highest
            ``selection_value``, the newest on a tie); ``None`` when no version has one.
        versions: every version's :class:`ModelInfo`, ascending.
        metrics: the latest version's ``metrics.json`` (training, validation, test, history).
        strategy_config: the strategy configuration the latest version was trained with.
        feature_names: the latest version's feature columns, in order.
    """

    name: str
    latest_version: int
    versions: list[ModelInfo]
    metrics: dict[str, Any]
    strategy_config: dict[str, Any]
    feature_names: list[str]
    best_version: int | None = None
