"""The API's routes under ``/api/v1``: each calls :class:`~api.service.TrainingApi` and returns
its Struct.

Handlers hold no logic: the paths, methods, status codes, summaries and documented error
answers are declared here; what happens is the service's. The only translation left is the
event stream's, from :mod:`api.events` objects to server-sent event messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery, JSONBody, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.events import Heartbeat, OperationEvent
from api.service import TrainingApi
from api.sweeps import SweepEnd, SweepEvent
from ktrdr_lib.schemas.health import HealthReport, HealthStatus, OperationMetrics
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot
from ktrdr_lib.schemas.v1 import (
    CancelRequest,
    CancelResponse,
    ModelDetailResponse,
    ModelLoadResponse,
    ModelSaveRequest,
    ModelSaveResponse,
    ModelsListResponse,
    OperationEnvelope,
    OperationListResponse,
    PerformanceResponse,
    PredictRequest,
    PredictResponse,
    ResumeResponse,
    StrategiesResponse,
    StrategyValidateRequest,
    StrategyValidateResponse,
    TrainingStartRequest,
    TrainingStartResponse,
)
from web.auth import has_bearer_token
from web.errors import ERROR_RESPONSES

__all__ = [
    "ModelsController",
    "OperationsController",
    "StrategiesController",
    "SweepsController",
    "TrainingsController",
    "health",
]

MAX_OFFSET = 2**62  # SQLite integers are 64-bit; a larger offset was a 500

Api: TypeAlias = NamedDependency[TrainingApi]
CancelBody: TypeAlias = Annotated[CancelRequest | None, Body()]
ResumeBody: TypeAlias = Annotated[dict[str, Any] | None, Body()]


class TrainingsController(Controller):
    """``/trainings``: v1 start and performance, and the run's detailed analytics."""

    path = "/trainings"
    tags = ["trainings"]  # noqa: RUF012 (Litestar declares it as an instance attribute)

    @post(
        "/start",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Start a training (v1)",
    )
    def start(self, api: Api, data: JSONBody[TrainingStartRequest]) -> TrainingStartResponse:
        """Validate the whole request, store the operation and queue it.

        ``strategy_name`` is a name only (searched in KTRDR_STRATEGIES_DIR, then the shipped
        examples); a missing strategy is a 400 listing the places searched.
        """
        return api.start_training(data)

    @get(
        "/{task_id:str}/performance",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Training performance (v1)",
    )
    def performance(self, api: Api, task_id: FromPath[str]) -> PerformanceResponse:
        """Final figures of a completed training; 409 while it is not completed."""
        return api.performance(task_id)

    @get(
        "/{task_id:str}/analytics",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Detailed analytics",
    )
    def analytics(self, api: Api, task_id: FromPath[str]) -> TrainingAnalytics:
        """Per-epoch gradient norms, parameter statistics, learning rate, per-class validation
        figures and confidence (or a regression's), fuzzy input activity, stop reason and best
        epoch; 404 when the run recorded none, 409 while it has not ended."""
        return api.analytics(task_id)


class OperationsController(Controller):
    """``/operations``: v1 status, list and cancel, plus metrics, result and the event
    stream."""

    path = "/operations"
    tags = ["operations"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=False, summary="List operations (v1)")
    def list_operations(
        self,
        api: Api,
        status: FromQuery[str | None] = None,
        operation_type: FromQuery[str | None] = None,
        active_only: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> OperationListResponse:
        """Newest first; ``status`` takes the v1 statuses or the precise ones."""
        return api.list_operations(
            status=status,
            operation_type=operation_type,
            active_only=active_only,
            limit=limit,
            offset=offset,
        )

    @get(
        "/{operation_id:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="One operation (v1)",
    )
    def get_operation(self, api: Api, operation_id: FromPath[str]) -> OperationEnvelope:
        """The v1 OperationInfo with live progress in ``progress.context``."""
        return api.operation(operation_id)

    @delete(
        "/{operation_id:str}",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=False,
        summary="Cancel (v1)",
    )
    def delete_operation(
        self, api: Api, operation_id: FromPath[str], data: CancelBody = None
    ) -> CancelResponse:
        """Ask the operation to stop; 409 when it is already final."""
        return api.cancel(operation_id, data)

    @post(
        "/{operation_id:str}/cancel",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=False,
        summary="Cancel",
    )
    def cancel_operation(
        self, api: Api, operation_id: FromPath[str], data: CancelBody = None
    ) -> CancelResponse:
        """Same as ``DELETE /operations/{id}``."""
        return api.cancel(operation_id, data)

    @post(
        "/{operation_id:str}/resume",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,  # reads the checkpoint and hashes the data files
        summary="Resume from the last checkpoint",
    )
    def resume_operation(
        self, api: Api, operation_id: FromPath[str], data: ResumeBody = None
    ) -> ResumeResponse:
        """Continue a cancelled, failed or interrupted run from its last checkpoint, as a new
        operation linked to it; 409 when it is active, completed or left no checkpoint, 400
        when its strategy file or data changed since (the message names what), or when the
        body has fields (a resumed run continues with what it started with)."""
        return api.resume(operation_id, data)

    @get(
        "/{operation_id:str}/metrics",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Epoch history",
    )
    def metrics(self, api: Api, operation_id: FromPath[str]) -> OperationMetrics:
        """One row per epoch, with overfitting and plateau flags."""
        return api.metrics(operation_id)

    @get(
        "/{operation_id:str}/result",
        responses=ERROR_RESPONSES,
        sync_to_thread=False,
        summary="Training result",
    )
    def result(self, api: Api, operation_id: FromPath[str]) -> TrainingResult:
        """The run's TrainingResult: the full one once it completed, the partial one (the
        epochs that ran, no evaluation) once it was cancelled or failed; 409 while it has
        none."""
        return api.result(operation_id)

    @get(
        "/{operation_id:str}/events",
        responses=ERROR_RESPONSES,
        media_type="text/event-stream",
        summary="Live progress as server-sent events",
        description=(
            "One `progress` event per ProgressSnapshot (`id:` = its sequence, so "
            "`Last-Event-ID` resumes without gaps or repeats), then one `final` event with "
            "the terminal status; comment heartbeats while idle."
        ),
    )
    async def events(
        self, request: Request[Any, Any, Any], api: Api, operation_id: FromPath[str]
    ) -> ServerSentEvent:
        """Follow an operation until it is final."""
        return ServerSentEvent(
            _messages(api.events(operation_id, request.headers.get("last-event-id")))
        )


class SweepsController(Controller):
    """``/sweeps``: start a sweep on the Ray cluster, read it, follow it; cancel it with
    ``DELETE /operations/{sweep_id}``."""

    path = "/sweeps"
    tags = ["sweeps"]  # noqa: RUF012

    @post(
        "/",
        responses=ERROR_RESPONSES,
        status_code=201,
        sync_to_thread=True,  # loads the strategy and checks the data and the cluster
        summary="Start a sweep",
    )
    def start(self, api: Api, data: JSONBody[SweepRequest]) -> SweepSnapshot:
        """Train the strategy once per point of ``space`` (grid or random search) as
        ``mode: ray`` trials on the Ray cluster, ranked by ``metric``; answers the sweep as it
        starts, its id in ``operation.operation_id``. The whole body is checked first: a bad
        field, an unknown strategy, or no Ray cluster (``KTRDR_RAY_ADDRESS``) is a 400 and
        nothing is stored."""
        return api.sweeps.start(data)

    @get(
        "/{sweep_id:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="One sweep",
    )
    def get_sweep(self, api: Api, sweep_id: FromPath[str]) -> SweepSnapshot:
        """The sweep's record, settings and every trial's status, epoch and metric; its
        ranked result once it ended. 404 for an unknown id or one that is not a sweep."""
        return api.sweeps.get(sweep_id)

    @get(
        "/{sweep_id:str}/events",
        responses=ERROR_RESPONSES,
        media_type="text/event-stream",
        summary="A sweep as server-sent events",
        description=(
            "One `sweep` event (a SweepSnapshot) now and each time the sweep changes, then one "
            "`final` event with the ended sweep and its result, and the stream closes; comment "
            "heartbeats while idle. Each event is the whole sweep, so a client that reconnects "
            "starts from the current state."
        ),
    )
    async def events(self, api: Api, sweep_id: FromPath[str]) -> ServerSentEvent:
        """Follow a sweep until it has ended."""
        return ServerSentEvent(_sweep_messages(api.sweeps.events(sweep_id)))


class ModelsController(Controller):
    """``/models``: save an operation's model under a name, load, predict, list, describe."""

    path = "/models"
    tags = ["models"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=True, summary="Saved models (v1)")
    def list_models(self, api: Api) -> ModelsListResponse:
        """Every saved version, newest last."""
        return api.list_models()

    @get(
        "/{model_name:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="One model: versions, metrics, strategy",
    )
    def describe(self, api: Api, model_name: FromPath[str]) -> ModelDetailResponse:
        """All versions of a model, with the newest version's metrics and strategy, and
        which version is the newest and which the best."""
        return api.describe_model(model_name)

    @post(
        "/save",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Save a training's model (v1)",
    )
    def save(self, api: Api, data: JSONBody[ModelSaveRequest]) -> ModelSaveResponse:
        """Publish the model a completed training produced as the next version of
        ``model_name``."""
        return api.save_model(data)

    @post(
        "/{model_name:str}/load",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Load (v1)",
    )
    def load(
        self, api: Api, model_name: FromPath[str], version: FromQuery[str | None] = None
    ) -> ModelLoadResponse:
        """Load a version into memory for predictions: ``?version=`` ``newest`` (the
        default), ``best`` (highest validation figure) or a number."""
        return api.load_model(model_name, version)

    @post(
        "/predict",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Predict a signal (v1)",
    )
    def predict(self, api: Api, data: JSONBody[PredictRequest]) -> PredictResponse:
        """BUY/HOLD/SELL for a symbol's bar at ``test_date`` (default: the latest bar)."""
        return api.predict(data)


class StrategiesController(Controller):
    """``/strategies``: list what is found by name, and validate YAML text."""

    path = "/strategies"
    tags = ["strategies"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=True, summary="Strategies found by name")
    def list_all(self, api: Api) -> StrategiesResponse:
        """KTRDR_STRATEGIES_DIR first, then the shipped examples; invalid files included."""
        return api.list_strategies()

    @post(
        "/validate",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Validate strategy YAML",
    )
    def validate(
        self, api: Api, data: JSONBody[StrategyValidateRequest]
    ) -> StrategyValidateResponse:
        """Every problem in the text, each with its field path and line (YAML is only ever
        safe-loaded)."""
        return api.validate_strategy(data)


@get(
    "/health",
    responses=ERROR_RESPONSES,
    sync_to_thread=True,
    opt={"public": True},
    tags=["health"],
    summary="Health",
)
def health(request: Request[Any, Any, Any], api: Api) -> HealthReport | HealthStatus:
    """Needs no token: its status for everyone; the orchestrator's diagnostics (store path,
    host URL, active ids) only with the token, when the API has one."""
    return api.health(detailed=has_bearer_token(request))


_encode = msgspec.json.Encoder().encode
# A comment line only: Litestar's message defaults ``data`` to "", which would add an empty
# ``data:`` line, and a client would see an empty ``message`` event at every heartbeat.
_HEARTBEAT = ServerSentEventMessage(comment="heartbeat", data=None)


async def _messages(events: AsyncIterator[OperationEvent]) -> AsyncIterator[ServerSentEventMessage]:
    """Each event as a server-sent event: ``progress`` and ``final`` carry their sequence as
    ``id:``; a heartbeat is a comment."""
    async for event in events:
        if isinstance(event, Heartbeat):
            yield _HEARTBEAT
        elif isinstance(event, FinalEvent):
            yield ServerSentEventMessage(event="final", id=event.sequence, data=_json(event))
        else:
            yield ServerSentEventMessage(event="progress", id=event.sequence, data=_json(event))


def _json(event: OperationEvent) -> str:
    return _encode(event).decode()


async def _sweep_messages(
    events: AsyncIterator[SweepEvent],
) -> AsyncIterator[ServerSentEventMessage]:
    """Each sweep snapshot as a ``sweep`` event, the ended sweep as ``final``; a heartbeat is
    a comment."""
    async for event in events:
        if isinstance(event, Heartbeat):
            yield _HEARTBEAT
        elif isinstance(event, SweepEnd):
            yield ServerSentEventMessage(event="final", data=_encode(event.sweep).decode())
        else:
            yield ServerSentEventMessage(event="sweep", data=_encode(event).decode())
