"""docs/settings.md is generated from ktrdr_lib/settings.py and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from ktrdr_lib.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_settings_reference.py"


def test_every_setting_has_a_row() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `KTRDR_")]
    assert [row.split("`")[1] for row in rows] == list(SETTINGS)
