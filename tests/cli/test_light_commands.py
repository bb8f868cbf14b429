"""Commands that only read the store answer without loading torch or Lightning (seconds of
imports each, which a user pays on every `ktrdr operations list`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import sys
from ktrdr_lib.cli import main
code = main(sys.argv[1:])
heavy = sorted(name for name in ("torch", "lightning") if name in sys.modules)
print("HEAVY:" + ",".join(heavy))
raise SystemExit(code)
"""


@pytest.mark.parametrize(
    "argv",
    [["operations", "list"], ["models", "list"], ["strategies", "list"], ["operations", "prune"]],
    ids=" ".join,
)
def test_reading_commands_do_not_import_torch(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "KTRDR_HOME": str(tmp_path / "home")}
    env.pop("KTRDR_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY:\n" in done.stdout, done.stdout
