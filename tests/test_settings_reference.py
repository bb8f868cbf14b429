"""docs/settings.md is generated from ktrdr_lib/settings.py and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ktrdr_lib.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_settings_reference.py"


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_reference_matches_the_settings() -> None:
    out = _check()
    assert out.returncode == 0, out.stderr


def test_a_stale_page_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    page = tmp_path / "settings.md"
    page.write_text((ROOT / "docs" / "settings.md").read_text(encoding="utf-8") + "edited\n")
    out = _check("--path", str(page))
    assert out.returncode == 1
    assert "run scripts/gen_settings_reference.py" in out.stderr


def test_every_setting_has_a_row() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `KTRDR_")]
    assert [row.split("`")[1] for row in rows] == list(SETTINGS)
