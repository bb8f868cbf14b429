"""Render docs/cli.md from the ``ktrdr`` command line's own parser.

It walks the argparse objects :func:`ktrdr_lib.cli.parser.build_parser` builds (commands,
subcommands, argument groups, each argument's default and help), not the ``--help`` text. Run
``python scripts/gen_cli_reference.py`` after changing the parser; a test fails while the
committed page differs from what this prints (``--check``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "cli.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _page import write_or_check  # noqa: E402


def _subcommands(
    parser: argparse.ArgumentParser,
) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("ktrdr",), summary: str = ""
) -> Iterator[tuple[tuple[str, ...], str, argparse.ArgumentParser]]:
    """Every command below ``parser``, depth first: ``(path, help, parser)``."""
    yield path, summary, parser
    for name, help_text, sub in _subcommands(parser):
        yield from commands(sub, (*path, name), help_text)


def arguments(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, list[argparse.Action]]]:
    """The parser's arguments by group (``-h`` and subcommand choices left out)."""
    for group in parser._action_groups:
        actions = [
            action
            for action in group._group_actions
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        ]
        if actions:
            title = group.title or "options"
            yield ("arguments" if title == "positional arguments" else title), actions


def _spelling(action: argparse.Action) -> str:
    """How the argument is written: ``--mode {local,host,ray}``, ``strategy``."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    flag = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flag}`"
    if action.metavar is not None:
        value = str(action.metavar)
    elif action.choices is not None:
        value = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    else:
        value = action.dest.upper()
    return f"`{flag} {value}`"


def _notes(action: argparse.Action) -> list[str]:
    notes: list[str] = []
    if action.required and action.option_strings:
        notes.append("required")
    if action.nargs == "?":
        notes.append("optional")
    elif action.nargs == "+":
        notes.append("one or more")
    if isinstance(action, argparse._AppendAction):
        notes.append("repeatable")
    return notes


def _default(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "off"
    if action.default is None or action.default is argparse.SUPPRESS:
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render() -> str:
    """The reference as Markdown."""
    from ktrdr_lib.cli.parser import build_parser

    root = build_parser()
    everything = list(commands(root))
    lines = [
        "# Command line reference (`ktrdr`)",
        "",
        "Generated from the command line's parser (`ktrdr_lib/cli/parser.py`) by",
        "`scripts/gen_cli_reference.py`; do not edit by hand. Every command also takes `-h` /",
        "`--help`. `python -m ktrdr_lib.cli` is the same program as `ktrdr`.",
        "",
        "The commands that take the *remote API* options (`--api URL`, `--local`) drive a",
        "running `ktrdr serve api` when `--api` or `KTRDR_API_URL` names one, and work in this",
        "process otherwise. The environment variables named below are listed in",
        "[settings.md](settings.md).",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for path, summary, parser in everything[1:]:
        if not _subcommands(parser):
            lines.append(f"| [`{' '.join(path)}`](#{'-'.join(path)}) | {_cell(summary)} |")
    for path, summary, parser in everything[1:]:
        heading = "#" * min(len(path), 3)
        lines += ["", f"{heading} `{' '.join(path)}`", ""]
        description = parser.description or summary
        if description:
            lines += [_cell(description), ""]
        subcommands = _subcommands(parser)
        if subcommands:
            lines += ["| subcommand | what it does |", "|---|---|"]
            lines += [
                f"| [`{name}`](#{'-'.join((*path, name))}) | {_cell(text)} |"
                for name, text, _ in subcommands
            ]
        for title, actions in arguments(parser):
            lines += [f"**{title}**", "", "| argument | default | meaning |", "|---|---|---|"]
            for action in actions:
                notes = ", ".join(_notes(action))
                spelled = _spelling(action) + (f" ({notes})" if notes else "")
                lines.append(f"| {spelled} | {_default(action)} | {_cell(action.help or '')} |")
            lines.append("")
        while lines[-1] == "":
            lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page; with ``--check`` only compare and fail when it differs.

    ``--path FILE`` compares or writes ``FILE`` instead of docs/cli.md.
    """
    args = sys.argv[1:] if argv is None else argv
    return write_or_check(REFERENCE, render(), "gen_cli_reference.py", args)


if __name__ == "__main__":
    sys.exit(main())
