"""The Litestar error handlers both servers use, and the error responses the API documents.

Every error body has the same shape (:class:`~ktrdr_lib.schemas.errors.ErrorBody`): ``status_code``,
``detail`` (what went wrong, where, what to do), ``error_type`` and, for strategy files, every
``problem`` with its field path. No body ever carries a stack trace; anything unexpected is
logged with its traceback and answered with a generic 500 detail. The status of each of the
project's errors comes from the one table in :mod:`ktrdr_lib.http.status`.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from ktrdr_lib.errors import KtrdrError, StrategyError
from ktrdr_lib.http.status import status_for
from ktrdr_lib.schemas.errors import ErrorBody

__all__ = ["ERROR_RESPONSES", "exception_handlers"]

log = logging.getLogger(__name__)


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


# Documented on every route so clients (and schema checks) know the error body.
ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _spec("Invalid request: the detail names the field and what is allowed"),
    401: _spec("Missing or wrong bearer token (when the server has KTRDR_API_TOKEN)"),
    404: _spec("Unknown operation, model or route"),
    409: _spec("The operation's state forbids this (e.g. cancel a finished run)"),
    413: _spec("Request body too large"),
    503: _spec("The training host is unavailable"),
}


def _respond(status: int, detail: str, error_type: str, **extra: Any) -> Response[ErrorBody]:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = ErrorBody(status_code=status, detail=detail, error_type=error_type, **extra)
    return Response(body, status_code=status, headers=headers)


def _ktrdr_error(request: Request[Any, Any, Any], exc: KtrdrError) -> Response[ErrorBody]:
    status = status_for(exc)
    problems = None
    if isinstance(exc, StrategyError):
        problems = exc.problems
    if status >= 500 and status != 503:  # 503: a host is down, not a server fault
        log.error("%s %s failed: %s", request.method, request.url.path, exc.detail)
    return _respond(status, exc.detail, type(exc).__name__, problems=problems)


def _body_choices(request: Request[Any, Any, Any], key: str) -> tuple[Any, ...]:
    """The values the body field at ``key`` (dotted Struct fields) allows when it is a
    ``Literal``, so a wrong one is answered with the right ones; empty when unknown."""
    try:
        body = request.route_handler.parsed_fn_signature.parameters["data"].annotation
        info: Any = msgspec.inspect.type_info(body)
    except (AttributeError, KeyError, TypeError, ValueError):
        return ()
    for name in key.split("."):
        if not isinstance(info, msgspec.inspect.StructType):
            return ()
        info = next((f.type for f in info.fields if f.encode_name == name), None)
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return tuple(
        value
        for member in members
        if isinstance(member, msgspec.inspect.LiteralType)
        for value in member.values
    )


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ErrorBody]:
    messages: list[str] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", ""))
            source = item.get("source")
            where = f"{source} {key}" if source and key else (key or "")
            if source == "body" and key and message.startswith("Invalid enum value"):
                choices = _body_choices(request, str(key))
                if choices:
                    message += f"; use one of {', '.join(repr(c) for c in choices)}"
            messages.append(f"{where}: {message}" if where else message)
    detail = "; ".join(messages) if messages else str(exc.detail)
    return _respond(400, f"invalid request: {detail}", "ValidationError")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    detail = str(exc.detail)
    if status == 413:
        detail = "request body too large; the limit is set by the server (KTRDR_API_MAX_BODY)"
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, detail)
    return _respond(status, detail, type(exc).__name__)


def exception_handlers(server: str = "the server") -> ExceptionHandlersMap:
    """The handlers for ``Litestar(exception_handlers=...)``; ``server`` names where an
    unexpected error is logged ("the server", "the host")."""

    def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return _respond(
            500,
            f"internal error; it has been logged on {server}. Please report it with the time.",
            "InternalError",
        )

    return {
        KtrdrError: _ktrdr_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        Exception: unexpected,
    }
