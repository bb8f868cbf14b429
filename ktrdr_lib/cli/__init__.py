"""The ``ktrdr`` command line.

``ktrdr train STRATEGY`` trains with progress on stderr and the result on stdout (``--mode
local|host|ray``: in this process, on the training host, or on a Ray cluster); ``ktrdr sweep
STRATEGY --space PATH=V1,V2`` trains it over a space of settings on Ray with a live table of
the trials and prints their ranking; ``ktrdr strategies validate|list`` and ``ktrdr models
list`` inspect what is there; ``ktrdr operations list|show|follow|cancel`` work on the
operations; ``ktrdr serve api|host`` runs a server. Errors end with a one-line message and a
non-zero exit status; Ctrl-C stops a training (or every trial of a sweep) cleanly.

With ``--api URL`` (or ``KTRDR_API_URL``; ``KTRDR_API_TOKEN`` is sent as the bearer token)
``train``, ``sweep``, ``operations`` and ``models list`` drive a running ``ktrdr serve api``
instead of this process: the same progress lines come from its event stream (a sweep's table
from its reads), the same summary from its result, and Ctrl-C cancels the remote operation and
waits for the server to confirm. That
needs httpx (the ``api`` extra), imported only then.

The package, one concept a module: ``parser`` (the grammar), ``backend`` (the
:class:`~ktrdr_lib.cli.backend.Backend` protocol and the choice between this process and an
API), ``local`` and ``remote`` (its two implementations), ``commands`` (each command once,
over a backend), ``render`` (what is printed), ``watch`` (following a stream while Ctrl-C
stays responsive) and ``serve`` (the servers).

Example:
    >>> main(["strategies", "list"])          # doctest: +SKIP
    rsi_mean_reversion    AAPL 1d    ok    .../rsi_mean_reversion.yaml
    0
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from ktrdr_lib.cli.backend import open_backend
from ktrdr_lib.cli.commands import COMMANDS, EXIT_CANCELLED, EXIT_ERROR
from ktrdr_lib.cli.parser import build_parser
from ktrdr_lib.cli.render import one_line
from ktrdr_lib.errors import KtrdrError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from ktrdr_lib.cli.serve import serve

            return serve(args)
        command = COMMANDS[(args.command, getattr(args, "action", None))]
        with contextlib.closing(open_backend(args)) as backend:
            return command(args, backend)
    except KtrdrError as exc:
        sys.stderr.write("error: " + one_line(exc.detail) + "\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_CANCELLED
