"""Render docs/settings.md from the declarations in :mod:`ktrdr_lib.settings`.

Run ``python scripts/gen_settings_reference.py`` after declaring or changing a setting; a test
fails while the committed page differs from what this prints (``--check``), so the page never
drifts from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "settings.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _page import write_or_check  # noqa: E402

_READERS = {
    "library": "library",
    "api": "API server",
    "host": "training host",
    "cli": "CLI",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The reference as Markdown."""
    from ktrdr_lib.settings import SETTINGS

    lines = [
        "# Settings (environment variables)",
        "",
        "Generated from `ktrdr_lib/settings.py` by `scripts/gen_settings_reference.py`; do not",
        "edit by hand. Every `KTRDR_*` variable ktrdr reads is declared there once, and read",
        "when it is needed (not when ktrdr is imported). An unset or empty variable takes its",
        "default; a value outside the range is refused with an error that names the variable,",
        "the value and what is accepted.",
        "",
        "*Read by*: **library** is every process that uses ktrdr_lib (notebooks, the CLI, both",
        "servers); **API server** is `ktrdr serve api`; **training host** is `ktrdr serve host`;",
        "**CLI** is the `ktrdr` command. Whole numbers may be written with `_` (`1_000_000`);",
        "lists are comma-separated; `KTRDR_STRATEGIES_DIR` takes several folders separated like",
        "`PATH` (`:`; `;` on Windows).",
        "",
        "| variable | type | default | range | read by | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for item in SETTINGS.values():
        readers = ", ".join(_READERS[reader] for reader in item.read_by)
        meaning = item.description + (" *(internal)*" if item.internal else "")
        default = item.default_words
        if item.default_text is None and item.default is not None:
            default = f"`{default}`"
        lines.append(
            f"| `{item.name}` | {item.kind} | {_cell(default)} | {_cell(item.range_text)} "
            f"| {readers} | {_cell(meaning)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page; with ``--check`` only compare and fail when it differs.

    ``--path FILE`` compares or writes ``FILE`` instead of docs/settings.md.
    """
    args = sys.argv[1:] if argv is None else argv
    return write_or_check(REFERENCE, render(), "gen_settings_reference.py", args)


if __name__ == "__main__":
    sys.exit(main())
