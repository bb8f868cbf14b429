"""Pages generated from the code (the CLI's parser, the settings, the API's OpenAPI schema, the
schemas' contracts) must not drift from it: each generator's ``--check`` passes on the page in
docs/, and refuses an edited copy naming the command that fixes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PAGES = [
    ("gen_cli_reference.py", "cli.md"),
    ("gen_settings_reference.py", "settings.md"),
    ("gen_api_reference.py", "api-reference.md"),
    ("gen_contracts.py", "contracts.md"),
]


def _check(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(("script", "page"), PAGES, ids=[page for _, page in PAGES])
def test_the_page_is_current(script: str, page: str) -> None:
    out = _check(script)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("script", "page"), PAGES, ids=[page for _, page in PAGES])
def test_a_stale_page_is_refused_with_the_command_that_fixes_it(
    script: str, page: str, tmp_path: Path
) -> None:
    copy = tmp_path / page
    copy.write_text((ROOT / "docs" / page).read_text(encoding="utf-8") + "edited\n")
    out = _check(script, "--path", str(copy))
    assert out.returncode == 1
    assert f"run scripts/{script}" in out.stderr
