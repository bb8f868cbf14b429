"""``python -m ktrdr_lib.cli``: the ``ktrdr`` command."""

from __future__ import annotations

import sys

from ktrdr_lib.cli import main

__all__: list[str] = []

sys.exit(main())
