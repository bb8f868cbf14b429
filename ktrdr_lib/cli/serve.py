"""``ktrdr serve api|host``: the servers, imported only when asked for.

The command line is a front door like the servers: it never imports them at module level,
so ``ktrdr train`` does not load the web framework and the core never sees them.
"""

from __future__ import annotations

import argparse

__all__ = ["serve"]


def serve(args: argparse.Namespace) -> int:
    """Run the server ``args.action`` names (``api`` or ``host``) until it is stopped."""
    if args.action == "api":
        from api.server import serve as serve_api

        serve_api(
            args.host, args.port, allow_remote=args.allow_remote, local_runner=args.local_runner
        )
        return 0
    from host.server import serve as serve_host

    serve_host(
        args.host,
        args.port,
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        precision=args.precision,
        insecure_no_token=args.insecure_no_token,
    )
    return 0
