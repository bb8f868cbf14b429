"""Any strategy file as the v3 layout: what ``ktrdr strategies migrate FILE`` prints.

The v3 text is :func:`~ktrdr_lib.strategy.config.strategy_to_config` of the loaded strategy
(so it loads to the same model), with comments on top that say which layout it was migrated
from and list every notice, with the line it refers to in the original file. No market data
is needed.

Example:
    >>> text = "name: demo\\nindicators: [{name: rsi}]\\nfuzzy_sets: {rsi: {low: [0, 20, 40]}}"
    >>> print(migrate_strategy(text + "\\nmodel: {}\\n").splitlines()[0])
    # demo: migrated from the legacy layout to v3 by `ktrdr strategies migrate`.
"""

from __future__ import annotations

import textwrap

import yaml

from ktrdr_lib.errors import StrategyError
from ktrdr_lib.strategy.config import strategy_to_config
from ktrdr_lib.strategy.loader import _examine

__all__ = ["migrate_strategy"]

_WIDTH = 98


class _Dumper(yaml.SafeDumper):
    """Safe YAML with short lists of numbers or words on one line (``[0, 20, 40]``)."""


def _represent_list(dumper: yaml.SafeDumper, items: list[object]) -> yaml.Node:
    flat = len(items) <= 8 and all(isinstance(item, int | float | str) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def _comment(text: str, indent: str = "") -> list[str]:
    lines = textwrap.wrap(
        text, width=_WIDTH - 2 - len(indent), subsequent_indent="  ", break_on_hyphens=False
    )
    return [f"# {indent}{line}".rstrip() for line in lines]


def migrate_strategy(text: str, *, file: str | None = None) -> str:
    """The v3 YAML of a strategy file of any layout, with its notices as comments on top.

    Args:
        text: the strategy's YAML (legacy, v2 or v3).
        file: where it came from (named in the comments).

    Returns:
        The v3 document; loading it gives the same strategy.

    Raises:
        StrategyError: the file has problems; ``error.problems`` lists every one.
    """
    check, spec = _examine(text, file)
    if spec is None:
        raise StrategyError(check.problems)
    origin = f" ({file})" if file else ""
    header = _comment(
        f"{spec.name}: migrated from the {spec.layout} layout{origin} to v3 by "
        "`ktrdr strategies migrate`."
    )
    if check.notices:
        header.append("#")
        header += _comment(
            "Notices (where this trains differently from what KTRDR would have done with the "
            "original; lines are the original's):"
        )
        for notice in check.notices:
            line = f"line {notice.line}: " if notice.line is not None else ""
            header += _comment(f"- {line}{notice.path or '<top level>'}: {notice.message}", "  ")
    body = yaml.dump(
        strategy_to_config(spec),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
    )
    return "\n".join(header) + "\n\n" + body
