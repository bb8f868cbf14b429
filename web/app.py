"""The one Litestar app shape both servers have: a framework-free service behind thin routes.

``api/`` serves :class:`~api.service.TrainingApi` and ``host/`` serves
:class:`~host.service.TrainingHost` the same way: the routes under one path prefix, the service
injected into every handler that names it (from ``app.state``, where the server's start-up hook
puts it), the bearer guard, the shared error handlers, a body-size limit and the OpenAPI schema
at ``/schema``. What differs (the routes, how the service is built and shut down, the token's
setting) is passed in.

Example:
    >>> app = create_service_app(  # doctest: +SKIP
    ...     prefix="/host/v1", route_handlers=[SessionsController, health], service="host",
    ...     on_startup=[start], on_shutdown=[stop], token="s3cret",
    ...     token_env="KTRDR_HOST_TOKEN", title="KTRDR training host")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, LifespanHook

from ktrdr_lib import __version__
from web.auth import bearer_guard
from web.errors import exception_handlers

__all__ = ["DEFAULT_MAX_BODY", "create_service_app"]

DEFAULT_MAX_BODY = 1_000_000


def create_service_app(
    *,
    prefix: str,
    route_handlers: Sequence[ControllerRouterHandler],
    service: str,
    on_startup: Sequence[LifespanHook],
    on_shutdown: Sequence[LifespanHook],
    token: str | None,
    token_env: str,
    title: str,
    description: str | None = None,
    server_name: str = "the server",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    state: Mapping[str, Any] | None = None,
) -> Litestar:
    """Build a server's app around its service.

    Args:
        prefix: the path every route is under (``/api/v1``).
        route_handlers: the controllers and handlers.
        service: the name handlers take the service under, and its key in ``app.state``
            (``None`` there until ``on_startup`` sets it, unless ``state`` gives it).
        on_startup: hooks that build the service (and what it needs).
        on_shutdown: hooks that shut it down.
        token: the bearer token every route but the public ones needs (``None``: open).
        token_env: the setting the token comes from, named in 401 answers.
        title: the OpenAPI title.
        description: the OpenAPI description.
        server_name: where unexpected errors are said to be logged ("the host").
        max_body_bytes: request bodies above this are answered 413.
        state: more of ``app.state`` (e.g. an orchestrator given at construction).
    """

    def provide(state: State) -> Any:
        return state[service]

    return Litestar(
        route_handlers=[Router(path=prefix, route_handlers=list(route_handlers))],
        dependencies={service: Provide(provide, sync_to_thread=False)},
        guards=[bearer_guard],
        exception_handlers=exception_handlers(server_name),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        state=State(
            {service: None, **(state or {}), "bearer_token": token, "bearer_token_env": token_env}
        ),
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(title=title, version=__version__, description=description),
        debug=False,
    )
