"""The training-host wire protocol: the Structs both the host and its client use.

The host (``host/``, ``ktrdr serve host``) serves these under ``/host/v1``; the orchestrator's
host runner sends and decodes the same classes, so the two sides cannot drift apart.

Routes (every one but ``GET /host/v1/health`` needs ``Authorization: Bearer <KTRDR_HOST_TOKEN>``):

===========================================  =====================  =========================
route                                        body                   answer
===========================================  =====================  =========================
``POST /sessions``                           HostSessionRequest     201 HostSessionCreated
``GET /sessions``                                                   HostSessionList
``GET /sessions/{id}``                                              HostSessionStatus
``POST /sessions/{id}/stop``                 HostStopRequest (opt)  202 HostSessionStatus
``GET /sessions/{id}/result``                                       TrainingResult (409 unless
                                                                    completed)
``GET /sessions/{id}/metrics``                                      OperationMetrics
``GET /sessions/{id}/artifacts/model``                              gzip'd tar, headers
                                                                    ``X-Content-SHA256``,
                                                                    ``X-Model-Id``
``GET /health``                                                     HostHealth (public)
===========================================  =====================  =========================

Every error answers :class:`~ktrdr_lib.schemas.errors.ErrorBody`, as the API's errors do.

Example:
    >>> request = HostSessionRequest(strategy_yaml="name: demo", symbols=["SYNTH"],
    ...                              timeframes=["1h"], overrides={"epochs": 2})
    >>> msgspec.json.decode(msgspec.json.encode(request), type=HostSessionRequest) == request
    True
"""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.status import OperationStatus

__all__ = [
    "HOST_PREFIX",
    "HOST_TOKEN_ENV",
    "MODEL_ID_HEADER",
    "SHA256_HEADER",
    "HostHealth",
    "HostSessionCreated",
    "HostSessionList",
    "HostSessionRequest",
    "HostSessionStatus",
    "HostStopRequest",
    "ModelArchive",
]

HOST_PREFIX = "/host/v1"
HOST_TOKEN_ENV = "KTRDR_HOST_TOKEN"
SHA256_HEADER = "X-Content-SHA256"
MODEL_ID_HEADER = "X-Model-Id"


class HostSessionRequest(TrainingRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start a training session on the host: the training request plus the strategy's text.

    Attributes:
        strategy_yaml: the strategy file's content; the host validates it.
        symbols: symbols to train on (the host reads bars from its own ``KTRDR_DATA_DIR``).
        timeframes: timeframes to train on.
        client_operation_id: the calling orchestrator's operation id, for tracing.

    The other fields are :class:`~ktrdr_lib.schemas.requests.TrainingRequest`'s.
    """

    strategy_yaml: str
    symbols: list[str]
    timeframes: list[str]
    client_operation_id: str | None = None


class HostSessionCreated(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a session start."""

    session_id: str
    status: str


class HostSessionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A session at one moment; bounded in size (the epoch history is ``/metrics``).

    ``progress`` is the host orchestrator's ProgressSnapshot with ``host_session_id`` set to
    ``session_id`` (its ``operation_id`` is the host's id for the run, which equals
    ``session_id``).
    """

    session_id: str
    status: OperationStatus
    progress: ProgressSnapshot
    error_message: str | None = None
    cancellation_reason: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    model_available: bool = False


class HostSessionList(msgspec.Struct, frozen=True, kw_only=True):
    """Sessions the host remembers, newest first."""

    sessions: list[HostSessionStatus]


class HostStopRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Stop a session: abort within a batch, or ``graceful`` (finish, evaluate, save)."""

    graceful: bool = False
    reason: str | None = None


class HostHealth(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /host/v1/health`` reports (no token needed).

    Attributes:
        status: ``"ok"``, or ``"shut down"`` while stopping.
        device: the device training uses: ``"cuda"`` or ``"cpu"``.
        accelerator: the Lightning accelerator setting (``"auto"``, ``"gpu"``, ``"cpu"``).
        devices: one entry per visible device: ``name``, ``memory_total_mb``,
            ``memory_used_mb``, ``utilization_percent`` (``None`` where not measurable).
        active_sessions: ids of sessions pending, running or cancelling.
        max_concurrent: sessions that train at once; more wait ``pending``.
        versions: Python, library and host versions.
    """

    status: str
    device: str
    accelerator: str
    devices: list[dict[str, Any]]
    active_sessions: list[str]
    max_concurrent: int
    versions: dict[str, str]


class ModelArchive(msgspec.Struct, frozen=True, kw_only=True):
    """A saved model version packed for the wire: a gzip'd tar, its SHA-256 and ``name/vN``."""

    data: bytes
    sha256: str
    model_id: str | None = None
