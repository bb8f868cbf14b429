"""The one table from the project's errors to HTTP status codes.

The core never raises HTTP errors; the HTTP adapters (``api/`` and ``host/``) answer with the
status this table gives. It is framework-free so both adapters share it.
"""

from __future__ import annotations

from ktrdr_lib.errors import (
    ConfigError,
    DataError,
    HostUnavailableError,
    KtrdrError,
    NotFoundError,
    OperationCancelled,
    StateConflictError,
    StrategyError,
    StrategyNotFoundError,
    TrainingError,
)

__all__ = ["STATUS_BY_ERROR", "status_for"]

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[KtrdrError], int], ...] = (
    (StrategyNotFoundError, 400),  # v1 clients expect 400 "Strategy file not found"
    (StrategyError, 400),
    (ConfigError, 400),
    (DataError, 400),
    (NotFoundError, 404),
    (StateConflictError, 409),
    (OperationCancelled, 409),
    (HostUnavailableError, 503),
    (TrainingError, 500),
)


def status_for(error: KtrdrError) -> int:
    """The HTTP status for one of the project's errors."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500
