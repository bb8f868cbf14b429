"""Litestar pieces both servers share: the error handlers and the bearer-token guard.

``api/`` (the HTTP API) and ``host/`` (the training host) are thin Litestar adapters over the
core; what they have in common lives here once. The core (``ktrdr_lib``) never imports this
package.
"""
