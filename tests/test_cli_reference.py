"""docs/cli.md is generated from the command line's parser and must not drift from it; every
argument says what it does, and a default its help names is the parser's."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

from ktrdr_lib.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_cli_reference.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_and_argument_is_on_the_page() -> None:
    script = _script()
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    paths = [" ".join(path) for path, _, _ in script.commands(build_parser())]
    for required in ("ktrdr operations list", "ktrdr operations cancel", "ktrdr serve api"):
        assert required in paths
    for path, _, parser in script.commands(build_parser()):
        if len(path) > 1:
            assert f"# `{' '.join(path)}`" in text, path
        for _, actions in script.arguments(parser):
            for action in actions:
                assert script._spelling(action) in text, (path, action.dest)


def _actions() -> list[tuple[str, argparse.Action]]:
    script = _script()
    return [
        (" ".join(path), action)
        for path, _, parser in script.commands(build_parser())
        for _, actions in script.arguments(parser)
        for action in actions
    ]


def test_every_argument_has_help() -> None:
    missing = [f"{path} {action.dest}" for path, action in _actions() if not action.help]
    assert missing == []


def test_a_default_the_help_names_is_the_parsers() -> None:
    wrong = [
        f"{path} {action.option_strings[0]}: {action.help!r} vs {action.default!r}"
        for path, action in _actions()
        if action.option_strings
        and action.default not in (None, False, argparse.SUPPRESS)
        and "default" in (action.help or "")
        and f"default {action.default}" not in (action.help or "")
    ]
    assert wrong == []
