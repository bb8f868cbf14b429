"""Model routes (v1): save an operation's model under a name, load, predict, list, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.names import check_name
from ktrdr_lib.errors import StateConflictError
from ktrdr_lib.inference import predict_signal
from ktrdr_lib.models.store import LoadedModel, ModelInfo, ModelStore
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.v1 import (
    ModelDetailResponse,
    ModelListItem,
    ModelLoadResponse,
    ModelSaveRequest,
    ModelSaveResponse,
    ModelsListResponse,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from ktrdr_lib.timestamps import utc_now
from web.errors import ERROR_RESPONSES

__all__ = ["ModelsController"]


def _store(orchestrator: TrainingOrchestrator) -> ModelStore:
    return ModelStore(orchestrator.models_dir)


def _info(model: LoadedModel | ModelInfo) -> dict[str, Any]:
    if isinstance(model, ModelInfo):
        info: dict[str, Any] = msgspec.to_builtins(model)
        return info
    return {
        "model_id": model.model_id,
        "name": model.name,
        "version": model.version,
        "path": str(model.path),
        "feature_names": list(model.feature_names),
        "metadata": model.metadata,
    }


def _loaded(request: Request[Any, Any, Any]) -> dict[str, LoadedModel]:
    cache: dict[str, LoadedModel] = request.app.state.setdefault("loaded_models", {})
    return cache


class ModelsController(Controller):
    """``/models``."""

    path = "/models"
    tags = ["models"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=True, summary="Saved models (v1)")
    def list_models(
        self, orchestrator: NamedDependency[TrainingOrchestrator]
    ) -> ModelsListResponse:
        """Every saved version, newest last."""
        items = [
            ModelListItem(
                model_id=m.model_id,
                model_name=m.name,
                symbol=(m.symbols[0] if len(m.symbols) == 1 else "MULTI") if m.symbols else None,
                timeframe=(m.timeframes[0] if len(m.timeframes) == 1 else "MULTI")
                if m.timeframes
                else None,
                created_at=m.created_at or "",
                training_accuracy=m.training_accuracy,
                test_accuracy=m.test_accuracy,
                description=m.description,
                version=m.version,
            )
            for m in _store(orchestrator).list_models()
        ]
        return ModelsListResponse(success=True, models=items)

    @get(
        "/{model_name:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="One model: versions, metrics, strategy",
    )
    def describe(
        self, orchestrator: NamedDependency[TrainingOrchestrator], model_name: FromPath[str]
    ) -> ModelDetailResponse:
        """All versions of a model, with the latest version's metrics and strategy."""
        detail = _store(orchestrator).describe(check_name("model name", model_name))
        return ModelDetailResponse(
            success=True,
            model_name=model_name,
            versions=[msgspec.to_builtins(v) for v in detail.versions],
            metrics=detail.metrics,
            strategy=detail.strategy_config,
        )

    @post(
        "/save",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Save a training's model (v1)",
    )
    def save(
        self, orchestrator: NamedDependency[TrainingOrchestrator], data: JSONBody[ModelSaveRequest]
    ) -> ModelSaveResponse:
        """Publish the model a completed training produced as the next version of
        ``model_name``."""
        check_name("task_id", data.task_id)
        check_name("model name", data.model_name)
        result = orchestrator.result(data.task_id)
        source = result.artifacts.model_id
        if source is None:
            raise StateConflictError(
                f"training {data.task_id} did not save a model; nothing to save as "
                f"{data.model_name}"
            )
        name, _, version = source.rpartition("/v")
        store = _store(orchestrator)
        saved = store.copy_as(
            (name, int(version)),
            data.model_name,
            description=data.description,
            extra_metadata={"task_id": data.task_id},
        )
        return ModelSaveResponse(
            success=True,
            model_id=saved.model_id,
            model_name=data.model_name,
            model_path=str(saved.path),
            task_id=data.task_id,
            saved_at=utc_now(),
            model_size_mb=round(saved.size_bytes / 2**20, 4),
        )

    @post(
        "/{model_name:str}/load",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Load (v1)",
    )
    def load(
        self,
        request: Request[Any, Any, Any],
        orchestrator: NamedDependency[TrainingOrchestrator],
        model_name: FromPath[str],
    ) -> ModelLoadResponse:
        """Load the latest version into memory for predictions."""
        model = _store(orchestrator).load(check_name("model name", model_name))
        _loaded(request)[model_name] = model
        return ModelLoadResponse(
            success=True, model_name=model_name, model_loaded=True, model_info=_info(model)
        )

    @post(
        "/predict",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Predict a signal (v1)",
    )
    def predict(
        self,
        request: Request[Any, Any, Any],
        orchestrator: NamedDependency[TrainingOrchestrator],
        data: JSONBody[PredictRequest],
    ) -> PredictResponse:
        """BUY/HOLD/SELL for a symbol's bar at ``test_date`` (default: the latest bar)."""
        check_name("model name", data.model_name)
        check_name("symbol", data.symbol)
        cache = _loaded(request)
        model = cache.get(data.model_name)
        if model is None:
            model = _store(orchestrator).load(data.model_name)
            cache[data.model_name] = model
        signal = predict_signal(
            model,
            data.symbol,
            timeframe=data.timeframe,
            at=data.test_date,
            data_dir=Path(orchestrator.data_dir) if orchestrator.data_dir else None,
        )
        return PredictResponse(
            success=True,
            model_name=data.model_name,
            symbol=data.symbol,
            test_date=signal.bar_time,
            prediction=Prediction(
                signal=signal.signal,
                confidence=signal.confidence,
                signal_strength=signal.signal_strength,
                fuzzy_outputs=signal.fuzzy_outputs,
                probabilities=signal.probabilities,
            ),
            input_features=signal.input_features,
            timeframe=signal.timeframe,
            model_version=model.version,
        )
