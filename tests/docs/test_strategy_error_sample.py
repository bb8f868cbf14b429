"""The error sample in docs/strategy-format.md is what the loader says about the file beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .sandbox import REPO

PAGE = REPO / "docs" / "strategy-format.md"


def _file_and_message() -> tuple[str, str]:
    after = PAGE.read_text().split("For this file, `bad.yaml`:\n\n```yaml\n", 1)[1]
    yaml_text, rest = after.split("```\n", 1)
    message = rest.split("```text\n", 1)[1].split("```\n", 1)[0]
    return yaml_text, message


def test_the_loader_says_what_the_page_shows(tmp_path: Path) -> None:
    from ktrdr_lib.errors import StrategyError
    from ktrdr_lib.strategy.loader import load_strategy

    yaml_text, message = _file_and_message()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_text)
    with pytest.raises(StrategyError) as caught:
        load_strategy(bad)
    shown = str(caught.value).replace(str(bad), "bad.yaml")
    assert shown.strip() == message.strip()
