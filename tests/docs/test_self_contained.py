"""The README and docs/ stand alone: no file outside the repository, no link to a missing page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .sandbox import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OUTSIDE = re.compile(r"\.\./shared|KTRDR-STRATEGY-FORMATS|DESIGN\.md|KTRDR-API-V1|/work/")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_reference_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert not OUTSIDE.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(REPO), target
        assert resolved.exists(), f"{target} does not exist"


RUN = {"python", "bash"}
SHOWN = {"", "text", "yaml", "json"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_code_block_is_run_or_plainly_text(page: Path) -> None:
    """A block is ``python``/``bash`` (run by test_doc_blocks.py, or skipped with a reason on
    the page) or text, YAML or JSON shown as is: no runnable block hides under another tag
    (``sh``, ``console``, ``py``) where the doc tests would not see it."""
    languages = re.findall(r"^```(\S*)\s*$", page.read_text(), re.MULTILINE)[::2]
    assert set(languages) <= RUN | SHOWN, sorted(set(languages) - RUN - SHOWN)
