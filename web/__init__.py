"""Litestar pieces both servers share: the app shape, the error handlers, the guards, the
request caps and the uvicorn runner.

``api/`` (the HTTP API) and ``host/`` (the training host) are thin Litestar adapters over the
core, each a framework-free service behind one-line routes; what they have in common lives here
once: :mod:`web.app` (the app), :mod:`web.errors` (error answers), :mod:`web.auth` (the bearer
token), :mod:`web.guards` (open mode against web pages, body depth), :mod:`web.limits` (the
caps a request is checked against; framework free) and :mod:`web.server` (uvicorn with
connection limits). The core (``ktrdr_lib``) never imports this package.
"""
