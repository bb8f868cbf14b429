"""What every page generator does with the page it renders: write it, or with ``--check`` say
whether the file on disk is current (exit 1 and the command that fixes it when stale)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(default: Path, text: str, script: str, argv: list[str]) -> int:
    """Write ``text`` to the page (``--path FILE`` instead of ``default``), or with
    ``--check`` compare only; ``script`` is named in the stale message."""
    target = Path(argv[argv.index("--path") + 1]) if "--path" in argv else default
    if "--check" in argv:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            sys.stderr.write(f"{target} is stale: run scripts/{script}\n")
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0
