"""Render the indicator catalog section of docs/strategy-format.md from the registry itself.

Every indicator's entry (names, the bar columns it reads, parameters with defaults and bounds,
outputs, TA-Lib reference) and its compute function's description of the formula go between
the ``<!-- catalog:start -->`` and ``<!-- catalog:end -->`` markers. Run
``python scripts/gen_indicator_reference.py`` after changing an entry; a test fails while the
committed section differs from what this renders, so the reference never drifts.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.registry import IndicatorDef, IndicatorParameter

DOC = Path(__file__).resolve().parent.parent / "docs" / "strategy-format.md"
START, END = "<!-- catalog:start -->", "<!-- catalog:end -->"


def _allowed(parameter: IndicatorParameter) -> str:
    if parameter.flag:
        return "true or false"
    if parameter.choices:
        return " or ".join(parameter.choices)
    bounds = parameter.bounds_text()
    kind = "whole number" if parameter.whole else "number"
    return f"{kind} {bounds}" if bounds else kind


def _default(parameter: IndicatorParameter) -> str:
    if parameter.default is None:
        return "required"
    if isinstance(parameter.default, bool):
        return "true" if parameter.default else "false"
    if isinstance(parameter.default, float) and parameter.whole:
        return str(int(parameter.default))
    return str(parameter.default)


def _formula(entry: IndicatorDef) -> str:
    text = inspect.getdoc(entry.compute) or ""
    body = text.split("\nArgs:", 1)[0].strip()
    joined = " ".join(line.strip() for line in body.splitlines() if line.strip())
    return joined.replace("``", "`").replace(":func:", "").replace(":class:", "")


def _section(entry: IndicatorDef) -> list[str]:
    names = ", ".join(f"`{alias}`" for alias in entry.aliases)
    reads = ", ".join("the strategy's `source`" if c == "source" else c for c in entry.inputs)
    outputs = ", ".join(f"**`{o}`**" if i == 0 else f"`{o}`" for i, o in enumerate(entry.outputs))
    lines = [f"#### `{entry.name}`", ""]
    lines.append(f"{entry.summary[0].upper()}{entry.summary[1:]}.")
    lines.append("")
    if names:
        lines.append(f"Also written: {names}.")
    lines.append(f"Reads: {reads}. Outputs (the primary in bold): {outputs}.")
    renamed = ", ".join(f"`{old}` for `{new}`" for old, new in entry.renamed_parameters.items())
    if renamed:
        lines.append(f"Accepted under other names: {renamed}.")
    lines.append("")
    if entry.parameters:
        lines += ["| parameter | default | allowed |", "|---|---|---|"]
        lines += [f"| `{p.name}` | {_default(p)} | {_allowed(p)} |" for p in entry.parameters]
    else:
        lines.append("No parameters.")
    lines += ["", f"Formula: {_formula(entry)}"]
    if entry.reference:
        lines.append(f"Checked against TA-Lib: `{entry.reference}`.")
    lines.append("")
    return lines


def render() -> str:
    """The catalog section, markers included."""
    lines = [
        START,
        "",
        (
            f"{len(INDICATOR_CATALOG)} indicators, by canonical name (any spelling that reduces "
            "to a name or an alias after lower-casing and dropping `_` and a trailing "
            "`indicator` works: `RSI`, `RSIIndicator`, `williams_r`)."
        ),
        "",
    ]
    for entry in INDICATOR_CATALOG.values():
        lines += _section(entry)
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Rewrite the section, or with ``--check`` say whether it is current."""
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.stderr.write(f"{DOC} has no {START} … {END} markers\n")
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = head + render() + tail
    if "--check" in argv:
        if updated != text:
            sys.stderr.write(f"{DOC.name} is stale: run scripts/gen_indicator_reference.py\n")
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
