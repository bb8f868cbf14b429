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

Every string field has a length cap (``Meta(max_length=...)``, listed in each Struct's
docstring), so a request over it is a 400 on the host and an answer over it a protocol error on
the client; the client also caps every answer's size (:mod:`ktrdr_lib.http.host_client`). The
nested :class:`~ktrdr_lib.schemas.progress.ProgressSnapshot` and the result are bounded by
those answer caps.

Example:
    >>> request = HostSessionRequest(strategy_yaml="name: demo", symbols=["SYNTH"],
    ...                              timeframes=["1h"], overrides={"epochs": 2})
    >>> msgspec.json.decode(msgspec.json.encode(request), type=HostSessionRequest) == request
    True
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.requests import Name, TrainingRequest
from ktrdr_lib.schemas.status import OperationStatus

__all__ = [
    "HOST_PREFIX",
    "HOST_TOKEN_ENV",
    "MAX_ERROR_CHARS",
    "MAX_ID_CHARS",
    "MAX_LISTED_SESSIONS",
    "MAX_REASON_CHARS",
    "MAX_STRATEGY_YAML_CHARS",
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

# Length caps of the protocol's strings (characters).
# A strategy's text: a ceiling over the host's own configurable cap (KTRDR_MAX_STRATEGY_BYTES,
# 256 KiB by default), which the host checks with a message naming its setting.
MAX_STRATEGY_YAML_CHARS = 16 << 20
MAX_ID_CHARS = 128  # a session, operation or model id
MAX_REASON_CHARS = 4096  # a stop's reason
MAX_ERROR_CHARS = 65_536  # an error message or cancellation reason (may list many problems)
MAX_LISTED_SESSIONS = 100_000  # sessions in one list (the host keeps far fewer)

Identifier = Annotated[str, Meta(max_length=MAX_ID_CHARS)]
Timestamp = Annotated[str, Meta(max_length=64)]
"""An ISO 8601 time as the host writes it."""
ShortName = Annotated[str, Meta(max_length=64)]
"""A status word, device or accelerator name."""


class HostSessionRequest(TrainingRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start a training session on the host: the training request plus the strategy's text.

    Attributes:
        strategy_yaml: the strategy file's content; the host validates it (at most
            :data:`MAX_STRATEGY_YAML_CHARS` characters).
        symbols: symbols to train on (the host reads bars from its own ``KTRDR_DATA_DIR``);
            each at most 64 characters, as in TrainingRequest.
        timeframes: timeframes to train on; each at most 64 characters.
        client_operation_id: the calling orchestrator's operation id, for tracing (at most
            :data:`MAX_ID_CHARS`).

    The other fields are :class:`~ktrdr_lib.schemas.requests.TrainingRequest`'s, with its
    bounds.
    """

    strategy_yaml: Annotated[str, Meta(max_length=MAX_STRATEGY_YAML_CHARS)]
    symbols: Annotated[list[Name], Meta(max_length=1000)]
    timeframes: Annotated[list[Name], Meta(max_length=64)]
    client_operation_id: Identifier | None = None


class HostSessionCreated(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a session start (``session_id`` at most :data:`MAX_ID_CHARS`,
    ``status`` at most 64 characters)."""

    session_id: Identifier
    status: ShortName


class HostSessionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A session at one moment; bounded in size (the epoch history is ``/metrics``).

    ``progress`` is the host orchestrator's ProgressSnapshot with ``host_session_id`` set to
    ``session_id`` (its ``operation_id`` is the host's id for the run, which equals
    ``session_id``).

    Caps: ``session_id`` :data:`MAX_ID_CHARS`; ``error_message`` and ``cancellation_reason``
    :data:`MAX_ERROR_CHARS`; the times 64 characters.
    """

    session_id: Identifier
    status: OperationStatus
    progress: ProgressSnapshot
    error_message: Annotated[str, Meta(max_length=MAX_ERROR_CHARS)] | None = None
    cancellation_reason: Annotated[str, Meta(max_length=MAX_ERROR_CHARS)] | None = None
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    model_available: bool = False


class HostSessionList(msgspec.Struct, frozen=True, kw_only=True):
    """Sessions the host remembers, newest first (at most :data:`MAX_LISTED_SESSIONS`)."""

    sessions: Annotated[list[HostSessionStatus], Meta(max_length=MAX_LISTED_SESSIONS)]


class HostStopRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Stop a session: abort within a batch, or ``graceful`` (finish, evaluate, save).

    ``reason`` is at most :data:`MAX_REASON_CHARS` (the client cuts a longer one).
    """

    graceful: bool = False
    reason: Annotated[str, Meta(max_length=MAX_REASON_CHARS)] | None = None


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

    Caps: ``status``, ``device``, ``accelerator`` 64 characters; at most 64 devices (their
    entries are bounded by the client's answer cap); at most 10,000 active ids of
    :data:`MAX_ID_CHARS`; at most 64 versions of 64-character names and 128-character values.
    """

    status: ShortName
    device: ShortName
    accelerator: ShortName
    devices: Annotated[list[dict[ShortName, Any]], Meta(max_length=64)]
    active_sessions: Annotated[list[Identifier], Meta(max_length=10_000)]
    max_concurrent: int
    versions: Annotated[dict[ShortName, Annotated[str, Meta(max_length=128)]], Meta(max_length=64)]


class ModelArchive(msgspec.Struct, frozen=True, kw_only=True):
    """A saved model version packed for the wire: a gzip'd tar, its SHA-256 and ``name/vN``.

    Built by the client from the answer's headers, which it checks: ``sha256`` is 64 hex
    digits, ``model_id`` at most :data:`MAX_ID_CHARS`. ``data`` is bounded by the client's
    archive cap.
    """

    data: bytes
    sha256: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
    model_id: Identifier | None = None
