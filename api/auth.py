"""Bearer-token guard: when a token is configured every route but ``/health`` needs it."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

__all__ = ["bearer_guard", "require_token"]


def require_token(expected: str | None, header: str | None) -> None:
    """Raise NotAuthorizedException unless ``header`` is ``Bearer <expected>``.

    Compares in constant time. ``expected=None`` means authentication is off.
    """
    if expected is None:
        return
    scheme, _, supplied = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            "missing or wrong bearer token; send 'Authorization: Bearer <KTRDR_API_TOKEN>'"
        )


async def bearer_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard reading the expected token from ``app.state.api_token``.

    ``async`` although it never awaits: Litestar runs a sync guard in a worker thread, a
    thread hop (and, next to a training thread, a GIL hand-off) on every request.
    """
    if handler.opt.get("public"):
        return
    require_token(connection.app.state.get("api_token"), connection.headers.get("authorization"))
