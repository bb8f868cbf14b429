"""Every code block in README.md and docs/*.md that is meant to run, run in order, one test
per block (Sybil parses the pages).

``python`` blocks run in this process, in one namespace per page, so a later block uses what
an earlier one made; ``bash`` blocks run with ``bash -euo pipefail`` in the page's sandbox
(``tests/docs/sandbox.py`` says what it changes: 3 epochs, a free port). A block the tests
cannot run is marked on the page itself with ``<!-- skip: next "why" -->``, and shows as
skipped with that reason. Blocks in other languages (output, YAML fragments, diagrams) are
text, not code to run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sybil", reason="the doc tests need sybil (the dev extra)")

from sybil import Document, Example
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from .sandbox import REPO, DocSandbox

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_SANDBOX = "__doc_sandbox__"


def _run_python(example: Example) -> str | None:
    sandbox: DocSandbox = example.namespace[_SANDBOX]
    # Blank lines in front keep the page's line numbers in a traceback.
    source = "\n" * example.line + sandbox.rewrite(str(example.parsed))
    exec(compile(source, example.path, "exec"), example.namespace)
    return None


def _run_bash(example: Example) -> str | None:
    sandbox: DocSandbox = example.namespace[_SANDBOX]
    return sandbox.run_shell(str(example.parsed))


_PARSERS = (
    CodeBlockParser(language="python", evaluator=_run_python),
    CodeBlockParser(language="bash", evaluator=_run_bash),
    SkipParser(),
)


def _page_examples() -> list[Any]:
    params = []
    for page in PAGES:
        document = Document.parse(str(page), *_PARSERS)
        examples = list(document.examples())
        for index, example in enumerate(examples):
            params.append(
                pytest.param(
                    example,
                    index == len(examples) - 1,
                    id=f"{page.relative_to(REPO)}:{example.line}",
                )
            )
    return params


_open: dict[str, DocSandbox] = {}


@pytest.fixture(scope="session")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the pages' sandboxes go; any page left open (a run stopped early) is closed at
    the end of the session."""
    yield tmp_path_factory.mktemp("docs")
    for path in list(_open):
        _close_page(path)


def _sandbox_for(example: Example, root: Path) -> DocSandbox:
    sandbox = _open.get(example.path)
    if sandbox is None:
        sandbox = _open[example.path] = DocSandbox(root / Path(example.path).stem)
        example.namespace[_SANDBOX] = sandbox
    return sandbox


def _close_page(path: str) -> None:
    """Shut down what the page's Python made (orchestrators, APIs), then the sandbox."""
    sandbox = _open.pop(path)
    for value in list(sandbox.namespace.values()):
        shutdown = getattr(value, "shutdown", None)
        if callable(shutdown) and type(value).__module__.startswith(("ktrdr_lib", "api")):
            shutdown()
    sandbox.namespace.clear()
    sandbox.close()


@pytest.mark.parametrize(("example", "last"), _page_examples())
def test_doc_block(
    example: Example, last: bool, docs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block runs as the page shows it (epochs and port aside, see sandbox.py)."""
    sandbox = _sandbox_for(example, docs_root)
    sandbox.namespace = example.namespace
    for name in [n for n in os.environ if n.startswith("KTRDR_")]:
        monkeypatch.delenv(name)
    for name, value in sandbox.env.items():
        if name.startswith("KTRDR_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(sandbox.work)
    try:
        example.evaluate()
    finally:
        if last:
            _close_page(example.path)
