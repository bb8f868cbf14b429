"""The training host: a Litestar service running the training core on its own device.

Start it with ``ktrdr serve host`` (token in ``KTRDR_HOST_TOKEN``); routes are under
``/host/v1`` and speak the Structs of :mod:`ktrdr_lib.schemas.host`.
"""

from host.app import HOST_PREFIX, create_app

__all__ = ["HOST_PREFIX", "create_app"]
