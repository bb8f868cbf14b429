"""Litestar pieces both servers share: the app shape, the error handlers, the bearer-token guard
and the uvicorn runner.

``api/`` (the HTTP API) and ``host/`` (the training host) are thin Litestar adapters over the
core, each a framework-free service behind one-line routes; what they have in common lives here
once (:mod:`web.app`, :mod:`web.errors`, :mod:`web.auth`, :mod:`web.server`). The core
(``ktrdr_lib``) never imports this package.
"""
