"""docs/api-reference.md is generated from the OpenAPI schema and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_reference_matches_the_schema() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_api_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
