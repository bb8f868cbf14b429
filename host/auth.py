"""Bearer-token guard for the host: every route but ``/health`` needs the host's token."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

__all__ = ["host_token_guard"]


async def host_token_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Refuse the request unless it carries ``Authorization: Bearer <host token>``.

    Handlers marked ``opt={"public": True}`` are open. Compares in constant time; a host started
    with ``insecure_no_token`` (loopback only) has ``host_token`` ``None`` and checks nothing.
    ``async`` so Litestar does not hop to a worker thread for it.
    """
    if handler.opt.get("public"):
        return
    expected: str | None = connection.app.state.get("host_token")
    if expected is None:
        return
    scheme, _, supplied = (connection.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            "missing or wrong bearer token; send 'Authorization: Bearer <KTRDR_HOST_TOKEN>'"
        )
