"""Strategy texts that would cost a server dearly are refused at once, with one problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr_lib.strategy._yaml_document import MAX_DEPTH, MAX_DOCUMENT_CHARS, MAX_NODES
from ktrdr_lib.strategy.loader import MAX_PROBLEMS, check_strategy_text

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "ktrdr_lib/strategy/examples/rsi_mean_reversion.yaml"
).read_text(encoding="utf-8")


def test_thousands_of_unknown_keys_list_the_first_hundred_and_count_the_rest() -> None:
    extra = "\n".join(f"junk_key_{i}: {i}" for i in range(16_000))
    problems = check_strategy_text(EXAMPLE + "\n" + extra + "\n")
    assert len(problems) == MAX_PROBLEMS + 1
    assert all("unknown key" in p.message for p in problems[:MAX_PROBLEMS])
    assert problems[0].line is not None
    assert problems[-1].message.startswith(f"and {16_000 - MAX_PROBLEMS} more problems not listed")
    # Suggestions stop past the listed ones; the listed ones keep theirs.
    near = check_strategy_text(EXAMPLE + "\ntrainng: {}\n")
    assert "did you mean" in near[0].message


def test_yaml_aliases_are_refused_with_their_line() -> None:
    problems = check_strategy_text(EXAMPLE + "\nextra_a: &shared [1, 2]\nextra_b: *shared\n")
    assert len(problems) == 1
    assert "YAML aliases (*shared) are not allowed" in problems[0].message
    assert problems[0].line == EXAMPLE.count("\n") + 3
    # The billion-laughs shape: a few hundred bytes that would expand to gigabytes.
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    assert "YAML aliases" in check_strategy_text(bomb)[0].message


def test_documents_too_long_too_deep_or_too_large_are_refused() -> None:
    deep = "x: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    assert f"nests deeper than {MAX_DEPTH} levels" in check_strategy_text(deep)[0].message
    wide = "x: [" + ", ".join("1" for _ in range(MAX_NODES + 1)) + "]\n"
    assert f"more than {MAX_NODES} values" in check_strategy_text(wide)[0].message
    long = "# " + "x" * MAX_DOCUMENT_CHARS + "\n"
    assert f"more than {MAX_DOCUMENT_CHARS}" in check_strategy_text(long)[0].message


def test_a_syntax_error_still_reports_its_line_and_column() -> None:
    problems = check_strategy_text("name: x\nindicators: [\n")
    assert problems[0].message.startswith("invalid YAML at line")


@pytest.mark.parametrize("shipped", ["rsi_mean_reversion", "multi_timeframe_momentum"])
def test_the_shipped_strategies_are_far_inside_the_limits(shipped: str) -> None:
    path = EXAMPLE_DIR / f"{shipped}.yaml"
    assert check_strategy_text(path.read_text(encoding="utf-8")) == []


EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "ktrdr_lib/strategy/examples"
