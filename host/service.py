"""TrainingHost: host sessions as operations of a host-side TrainingOrchestrator.

A session *is* an operation of the host's orchestrator (same id, same status machine, same
progress snapshots, same TrainingResult); this class turns protocol requests into orchestrator
calls and records into :class:`~ktrdr_lib.schemas.host.HostSessionStatus`. It is framework
free, so the routes in :mod:`host.routes` stay a few lines each.

Example:
    >>> host = TrainingHost(TrainingOrchestrator(data_dir=data))  # doctest: +SKIP
    >>> created = host.start(HostSessionRequest(strategy_yaml=text, symbols=["SYNTH"],
    ...                                         timeframes=["1h"]))  # doctest: +SKIP
    >>> host.status(created.session_id).progress.percentage  # doctest: +SKIP
"""

from __future__ import annotations

import platform
from pathlib import Path

import msgspec

from host.devices import device_kind, device_stats
from host.retention import SessionRetention
from ktrdr_lib import __version__
from ktrdr_lib.environment import library_versions
from ktrdr_lib.errors import ConfigError, StateConflictError
from ktrdr_lib.models.archive import pack_model_version
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.schemas.health import HIDDEN_DETAILS_NOTE, HealthStatus, OperationMetrics
from ktrdr_lib.schemas.host import (
    HostHealth,
    HostSessionCreated,
    HostSessionList,
    HostSessionRequest,
    HostSessionStatus,
    HostStopRequest,
    ModelArchive,
)
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.strategy.loader import is_strategy_file_path, load_strategy
from web.limits import RequestLimits

__all__ = ["TrainingHost"]


class TrainingHost:
    """Runs protocol requests against a host-side orchestrator.

    Args:
        orchestrator: the orchestrator that trains the sessions (its runner decides the device).
        retention_s: seconds finished sessions are kept.
        max_finished: most finished sessions kept.
        limits: the caps on a session request's form (``strategy_yaml``'s length); default:
            :class:`~web.limits.RequestLimits`'s defaults.
    """

    def __init__(
        self,
        orchestrator: TrainingOrchestrator,
        *,
        retention_s: float = 3600.0,
        max_finished: int = 100,
        limits: RequestLimits | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.limits = limits or RequestLimits()
        self.retention = SessionRetention(
            orchestrator, retention_s=retention_s, max_finished=max_finished
        )
        options = getattr(orchestrator.runner, "trainer_options", None)
        self.trainer_options = options if isinstance(options, TrainerOptions) else TrainerOptions()

    # -- sessions ----------------------------------------------------------------------------

    def start(self, request: HostSessionRequest) -> HostSessionCreated:
        """Validate and queue a session; it may wait ``pending`` when the host is busy.

        Raises:
            StrategyError: the strategy YAML has problems (each one listed).
            ConfigError: the rest of the request is invalid, the strategy text is longer than
                ``KTRDR_MAX_STRATEGY_BYTES``, or the run asks for more than a cap
                (``KTRDR_MAX_*``).
            QueueFullError: too many sessions wait already (answered 429 with Retry-After).
        """
        self.limits.check_strategy_text(request.strategy_yaml, field="strategy_yaml")
        self.retention.prune()
        text = request.strategy_yaml
        if not text.strip() or is_strategy_file_path(text):
            raise ConfigError(
                "strategy_yaml: send the strategy file's content, not a file name or path "
                "(the host does not read files named by clients)"
            )
        handle = self.orchestrator.start_training(load_strategy(text), request)
        return HostSessionCreated(session_id=handle.operation_id, status="pending")

    def resume(self, session_id: str) -> HostSessionCreated:
        """Continue a stopped session from its checkpoint on this host, as a new session.

        Raises:
            NotFoundError: unknown or forgotten session.
            StateConflictError: active, completed, or no checkpoint.
            DataError / ConfigError: the host's data (or strategy) changed since.
        """
        self.retention.prune()
        handle = self.orchestrator.resume(session_id)
        return HostSessionCreated(session_id=handle.operation_id, status="pending")

    def status(self, session_id: str) -> HostSessionStatus:
        """The session now. NotFoundError when unknown or forgotten."""
        self.retention.prune()
        return _status(self.orchestrator.get_operation(session_id))

    def list_sessions(self) -> HostSessionList:
        """Every remembered session, newest first."""
        self.retention.prune()
        page = self.orchestrator.list_operations(limit=self.retention.max_finished + 10_000)
        return HostSessionList(sessions=[_status(record) for record in page.items])

    def stop(self, session_id: str, request: HostStopRequest) -> HostSessionStatus:
        """Ask the session to stop; returns at once.

        Raises:
            NotFoundError: unknown session.
            StateConflictError: the session is already final.
        """
        record = self.orchestrator.cancel(
            session_id, graceful=request.graceful, reason=request.reason
        )
        return _status(record)

    def result(self, session_id: str) -> TrainingResult:
        """The TrainingResult. StateConflictError unless the session completed."""
        return self.orchestrator.result(session_id)

    def metrics(self, session_id: str) -> OperationMetrics:
        """The session's epoch history and diagnostics."""
        return self.orchestrator.metrics(session_id)

    def model_archive(self, session_id: str) -> ModelArchive:
        """The saved model version, packed. StateConflictError unless there is one."""
        record = self.orchestrator.get_operation(session_id)
        path = _model_path(record)
        if record.status != "completed" or path is None:
            raise StateConflictError(
                f"session {session_id} is {record.status} and has no saved model; a model "
                "archive exists only for a completed session that saved one"
            )
        body, digest = pack_model_version(path)
        model_id = record.result.artifacts.model_id if record.result is not None else None
        return ModelArchive(
            data=body, sha256=digest, model_id=model_id or f"{path.parent.name}/{path.name}"
        )

    # -- health ------------------------------------------------------------------------------

    def health(self, *, status: str = "ok", detailed: bool = True) -> HostHealth | HealthStatus:
        """Devices, active sessions and versions; only the status when not ``detailed`` (a
        caller without the token)."""
        if not detailed:
            return HealthStatus(status=status, note=HIDDEN_DETAILS_NOTE)
        accelerator = self.trainer_options.accelerator
        kind = device_kind(accelerator)
        page = self.orchestrator.list_operations(active_only=True, limit=10_000)
        versions = {**library_versions(), "ktrdr_lib": __version__, "host": platform.node()}
        return HostHealth(
            status=status,
            device=kind,
            accelerator=accelerator,
            devices=device_stats(kind),
            active_sessions=[record.operation_id for record in page.items],
            max_concurrent=self.orchestrator.max_concurrent,
            versions=versions,
        )


def _model_path(record: OperationSnapshot) -> Path | None:
    path = record.result.artifacts.model_path if record.result is not None else None
    return Path(path) if path and Path(path).is_dir() else None


def _status(record: OperationSnapshot) -> HostSessionStatus:
    progress = msgspec.structs.replace(record.progress, host_session_id=record.operation_id)
    return HostSessionStatus(
        session_id=record.operation_id,
        status=record.status,
        progress=progress,
        error_message=record.error_message,
        cancellation_reason=record.cancellation_reason,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        model_available=record.status == "completed" and _model_path(record) is not None,
    )
