"""The host's routes under ``/host/v1``: each parses, calls :class:`TrainingHost`, encodes."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from host.service import TrainingHost
from ktrdr_lib.schemas.health import HealthStatus, OperationMetrics
from ktrdr_lib.schemas.host import (
    MODEL_ID_HEADER,
    SHA256_HEADER,
    HostHealth,
    HostSessionCreated,
    HostSessionList,
    HostSessionRequest,
    HostSessionStatus,
    HostStopRequest,
)
from ktrdr_lib.schemas.results import TrainingResult
from web.auth import has_bearer_token

__all__ = ["SessionsController", "health"]


class SessionsController(Controller):
    """Start, watch, stop and collect training sessions."""

    path = "/sessions"
    tags = ["sessions"]  # noqa: RUF012 (Litestar declares it as an instance attribute)

    @post("/", status_code=HTTP_201_CREATED, sync_to_thread=True, summary="Start a session")
    def start(
        self, host: NamedDependency[TrainingHost], data: JSONBody[HostSessionRequest]
    ) -> HostSessionCreated:
        """Validate the strategy and queue a session (``pending`` when the host is busy)."""
        return host.start(data)

    @get("/", sync_to_thread=True, summary="List sessions")
    def list_sessions(self, host: NamedDependency[TrainingHost]) -> HostSessionList:
        """Remembered sessions, newest first."""
        return host.list_sessions()

    @get("/{session_id:str}", sync_to_thread=True, summary="Session status")
    def status(
        self, host: NamedDependency[TrainingHost], session_id: FromPath[str]
    ) -> HostSessionStatus:
        """Status, latest progress snapshot and error; bounded in size."""
        return host.status(session_id)

    @post(
        "/{session_id:str}/stop",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        summary="Stop a session",
    )
    def stop(
        self,
        host: NamedDependency[TrainingHost],
        session_id: FromPath[str],
        data: Annotated[HostStopRequest | None, Body()] = None,
    ) -> HostSessionStatus:
        """Abort within a batch, or ``graceful``: finish, evaluate and save. Returns at once."""
        return host.stop(session_id, data or HostStopRequest())

    @post(
        "/{session_id:str}/resume",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Resume a stopped session from its checkpoint",
    )
    def resume(
        self, host: NamedDependency[TrainingHost], session_id: FromPath[str]
    ) -> HostSessionCreated:
        """Continue a cancelled, failed or interrupted session from its last checkpoint as a
        new session (409 when it is active, completed or left none; 400 when the host's data
        changed since)."""
        return host.resume(session_id)

    @get("/{session_id:str}/result", sync_to_thread=True, summary="Training result")
    def result(
        self, host: NamedDependency[TrainingHost], session_id: FromPath[str]
    ) -> TrainingResult:
        """The TrainingResult of a completed session (409 otherwise)."""
        return host.result(session_id)

    @get("/{session_id:str}/metrics", sync_to_thread=True, summary="Epoch history")
    def metrics(
        self, host: NamedDependency[TrainingHost], session_id: FromPath[str]
    ) -> OperationMetrics:
        """Every epoch's figures and the diagnostics drawn from them."""
        return host.metrics(session_id)

    @get(
        "/{session_id:str}/artifacts/model",
        sync_to_thread=True,
        media_type="application/gzip",
        summary="Saved model archive",
    )
    def model(
        self, host: NamedDependency[TrainingHost], session_id: FromPath[str]
    ) -> Response[bytes]:
        """The saved version directory as a deterministic tar.gz with its SHA-256."""
        archive = host.model_archive(session_id)
        return Response(
            archive.data,
            media_type="application/gzip",
            headers={SHA256_HEADER: archive.sha256, MODEL_ID_HEADER: archive.model_id or ""},
        )


@get("/health", sync_to_thread=True, opt={"public": True}, tags=["health"], summary="Health")
def health(
    request: Request[Any, Any, Any], host: NamedDependency[TrainingHost]
) -> HostHealth | HealthStatus:
    """Needs no token: the status for everyone; devices, active sessions, host name and
    versions only with the token."""
    return host.health(detailed=has_bearer_token(request))
