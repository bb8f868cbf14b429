"""The one table between the project's errors and HTTP status codes, both ways.

The core never raises HTTP errors. The servers (``api/`` and ``host/``) answer an error with
the status :func:`status_for` gives and an :class:`~ktrdr_lib.schemas.errors.ErrorBody`; the
clients (:mod:`ktrdr_lib.http.client`, :mod:`ktrdr_lib.http.host_client`) turn such an answer
back into the same error class with :func:`error_class_for` and :func:`read_error_body`. It is
framework-free so every side shares it.
"""

from __future__ import annotations

import msgspec

from ktrdr_lib.errors import (
    ConfigError,
    DataError,
    HostUnavailableError,
    KtrdrError,
    NotFoundError,
    OperationCancelled,
    QueueFullError,
    StateConflictError,
    StrategyError,
    StrategyNotFoundError,
    TrainingError,
    error_class,
)
from ktrdr_lib.schemas.errors import ErrorBody

__all__ = ["ERROR_BY_STATUS", "STATUS_BY_ERROR", "error_class_for", "read_error_body", "status_for"]

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[KtrdrError], int], ...] = (
    (StrategyNotFoundError, 400),  # v1 clients expect 400 "Strategy file not found"
    (StrategyError, 400),
    (ConfigError, 400),
    (DataError, 400),
    (NotFoundError, 404),
    (QueueFullError, 429),  # with Retry-After (the servers add it from retry_after_s)
    (StateConflictError, 409),
    (OperationCancelled, 409),
    (HostUnavailableError, 503),
    (TrainingError, 500),
)

# The other way, for answers whose error_type is not one of ours: the widest class the table
# sends to each status, plus the statuses the servers answer on their own (body too large,
# malformed body, not JSON). 401/403 are each client's own authentication error.
ERROR_BY_STATUS: dict[int, type[KtrdrError]] = {
    400: ConfigError,
    404: NotFoundError,
    409: StateConflictError,
    413: ConfigError,
    415: ConfigError,
    422: ConfigError,
    429: QueueFullError,
    500: TrainingError,
    503: HostUnavailableError,
}

_decode_body = msgspec.json.Decoder(ErrorBody).decode


def status_for(error: KtrdrError) -> int:
    """The HTTP status for one of the project's errors."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def error_class_for(status: int, error_type: str | None = None) -> type[KtrdrError]:
    """The error class an error answer stands for: its ``error_type`` when that is one of the
    project's classes, else the class the table sends to ``status`` (``KtrdrError`` if none)."""
    cls = error_class(error_type) if error_type else None
    return cls or ERROR_BY_STATUS.get(status, KtrdrError)


def read_error_body(content: bytes) -> ErrorBody | None:
    """The :class:`ErrorBody` in an error answer's body, or ``None`` when it is not one."""
    try:
        return _decode_body(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
