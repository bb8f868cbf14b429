"""The notebook guide's papermill parameters are the notebooks' own: ``papermill
--help-notebook`` parses each parameters cell without a warning and lists every parameter the
guide documents (its table for batch_train.ipynb, and every ``-p``/``-y`` its commands pass)."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import pytest

from .sandbox import REPO

pytest.importorskip("papermill", reason="the notebook extra is not installed")

GUIDE = REPO / "docs" / "notebooks.md"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@functools.cache
def _help_notebook(notebook: Path) -> str:
    """What ``papermill --help-notebook NOTEBOOK`` prints (its click command, in this process)."""
    from click.testing import CliRunner
    from papermill.cli import papermill

    done = CliRunner().invoke(papermill, ["--help-notebook", str(notebook)])
    assert done.exit_code == 0, done.output
    return done.output


def _listed(help_text: str) -> set[str]:
    return set(re.findall(r"^  (\w+): ", help_text, re.MULTILINE))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_parameters_cell_parses_without_warnings(
    notebook: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        help_text = _help_notebook.__wrapped__(notebook)
    assert "Parameters inferred" in help_text
    assert not re.search(r"warn|unable to parse|could not", help_text, re.IGNORECASE), help_text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def _documented_table() -> set[str]:
    """The first column of the guide's batch_train parameter table."""
    section = GUIDE.read_text().split("## Batch runs with papermill", 1)[1]
    table = section.split("| parameter | default | meaning |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for first_cell in re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE):
        names.update(re.findall(r"`(\w+)`", first_cell))
    return names


def _passed_in_commands() -> dict[str, set[str]]:
    """Every parameter a papermill command of the guide passes, per notebook."""
    passed: dict[str, set[str]] = {}
    for block in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL):
        command = block.replace("\\\n", " ")
        for notebook, args in re.findall(r"papermill (notebooks/\S+\.ipynb) \S+(.*)", command):
            names = set(re.findall(r"-p (\w+) ", args))
            names |= set(re.findall(r"-y ['\"](\w+):", args))
            passed.setdefault(Path(notebook).name, set()).update(names)
    return passed


def test_every_parameter_the_guide_documents_is_listed() -> None:
    table = _documented_table()
    assert {"strategy", "symbols", "epochs", "output_json"} <= table
    listed = _listed(_help_notebook(REPO / "notebooks" / "batch_train.ipynb"))
    assert table <= listed, sorted(table - listed)
    passed = _passed_in_commands()
    assert {"batch_train.ipynb", "remote_host.ipynb"} <= set(passed)
    for notebook, names in passed.items():
        listed = _listed(_help_notebook(REPO / "notebooks" / notebook))
        assert names <= listed, (notebook, sorted(names - listed))
