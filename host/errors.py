"""The host's one table from errors to HTTP status codes, and the handlers that use it.

Every error answers :class:`~ktrdr_lib.host_protocol.HostErrorBody` (the API's error shape);
no body carries a stack trace. The table mirrors ``api/errors.py`` without importing ``api/``.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from ktrdr_lib.errors import KtrdrError, StrategyError
from ktrdr_lib.host_protocol import HostErrorBody
from ktrdr_lib.http_status import STATUS_BY_ERROR, status_for

__all__ = ["STATUS_BY_ERROR", "exception_handlers", "status_for"]

log = logging.getLogger(__name__)


def _respond(
    status: int, detail: str, error_type: str, problems: list[dict[str, Any]] | None = None
) -> Response[HostErrorBody]:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = HostErrorBody(
        status_code=status, detail=detail, error_type=error_type, problems=problems
    )
    return Response(body, status_code=status, headers=headers)


def _ktrdr_error(request: Request[Any, Any, Any], exc: KtrdrError) -> Response[HostErrorBody]:
    status = status_for(exc)
    problems = None
    if isinstance(exc, StrategyError):
        problems = [msgspec.to_builtins(p) for p in exc.problems]
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.detail)
    return _respond(status, exc.detail, type(exc).__name__, problems)


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[HostErrorBody]:
    messages: list[str] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key, message = item.get("key"), str(item.get("message", ""))
            messages.append(f"{key}: {message}" if key else message)
    detail = "; ".join(messages) if messages else str(exc.detail)
    return _respond(400, f"invalid request: {detail}", "ValidationError")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[HostErrorBody]:
    if exc.status_code >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.detail)
    return _respond(exc.status_code, str(exc.detail), type(exc).__name__)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[HostErrorBody]:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return _respond(
        500,
        "internal error; it has been logged on the host. Please report it with the time.",
        "InternalError",
    )


def exception_handlers() -> ExceptionHandlersMap:
    """The handlers for ``Litestar(exception_handlers=...)``."""
    return {
        KtrdrError: _ktrdr_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
