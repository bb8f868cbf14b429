"""The bearer-token guard: when a server has a token, every route but the public ones needs it.

A server puts the expected token in ``app.state.bearer_token`` (``None``: no authentication)
and the name of the setting that holds it in ``app.state.bearer_token_env`` (for the error
message). Handlers marked ``opt={"public": True}`` (health) are open.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

__all__ = ["bearer_guard", "require_token"]


def require_token(expected: str | None, header: str | None, *, setting: str) -> None:
    """Raise NotAuthorizedException unless ``header`` is ``Bearer <expected>``.

    Compares in constant time. ``expected=None`` means authentication is off; ``setting``
    names where the token comes from (``KTRDR_API_TOKEN``) in the message.
    """
    if expected is None:
        return
    scheme, _, supplied = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            f"missing or wrong bearer token; send 'Authorization: Bearer <{setting}>'"
        )


async def bearer_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard reading the expected token from ``app.state.bearer_token``.

    ``async`` although it never awaits: Litestar runs a sync guard in a worker thread, a
    thread hop (and, next to a training thread, a GIL hand-off) on every request.
    """
    if handler.opt.get("public"):
        return
    state = connection.app.state
    require_token(
        state.get("bearer_token"),
        connection.headers.get("authorization"),
        setting=state.get("bearer_token_env", "token"),
    )
