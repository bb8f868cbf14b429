"""The Litestar error handlers both servers use, and the error responses the API documents.

Every error body has the same shape (:class:`~ktrdr_lib.schemas.errors.ErrorBody`): ``status_code``,
``detail`` (what went wrong, where, what to do), ``error_type`` and, for strategy files, every
``problem`` with its field path. No body ever carries a stack trace; anything unexpected is
logged with its traceback and answered with a generic 500 detail. The status of each of the
project's errors comes from the one table in :mod:`ktrdr_lib.http.status`; a full queue
(:class:`~ktrdr_lib.errors.QueueFullError`, 429) adds ``Retry-After``. Input too deeply nested
for the parsers (``RecursionError``) is a 400, never a 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from ktrdr_lib.errors import KtrdrError, QueueFullError, StrategyError
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
    403: _spec("Without a token: a request for another host name or from a page on another origin"),
    404: _spec("Unknown operation, model or route"),
    409: _spec("The operation's state forbids this (e.g. cancel a finished run)"),
    413: _spec("Request body too large"),
    415: _spec("Without a token: a body that is not Content-Type: application/json"),
    429: _spec("Too many runs wait already; try again after Retry-After seconds"),
    503: _spec("The training host is unavailable"),
}


def _respond(
    status: int,
    detail: str,
    error_type: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[ErrorBody]:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    body = ErrorBody(status_code=status, detail=detail, error_type=error_type, **extra)
    return Response(body, status_code=status, headers=headers or None)


def _ktrdr_error(request: Request[Any, Any, Any], exc: KtrdrError) -> Response[ErrorBody]:
    status = status_for(exc)
    problems = None
    if isinstance(exc, StrategyError):
        problems = exc.problems
    headers = None
    if isinstance(exc, QueueFullError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    if status >= 500 and status != 503:  # 503: a host is down, not a server fault
        log.error("%s %s failed: %s", request.method, request.url.path, exc.detail)
    return _respond(status, exc.detail, type(exc).__name__, headers=headers, problems=problems)


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ErrorBody]:
    log.warning("%s %s: input nested too deeply (%s)", request.method, request.url.path, exc)
    return _respond(
        400,
        "the request nests too deeply to be read (JSON or YAML nesting hundreds of levels); "
        "a request needs a few levels: flatten it",
        "ConfigError",
    )


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
        setting = request.app.state.get("max_body_env", "KTRDR_API_MAX_BODY")
        detail = (
            f"request body too large; the limit is set by the server ({setting}). Send less "
            "(a strategy by name, fewer overrides), or ask its operator to raise the limit."
        )
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
        RecursionError: _too_deep,
        Exception: unexpected,
    }
