"""The indicator reference in docs/strategy-format.md is rendered from the catalog itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG

ROOT = Path(__file__).resolve().parent.parent


def test_reference_matches_the_catalog() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_indicator_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr


def test_every_indicator_has_a_section() -> None:
    text = (ROOT / "docs" / "strategy-format.md").read_text(encoding="utf-8")
    for name in INDICATOR_CATALOG:
        assert f"#### `{name}`" in text, name
