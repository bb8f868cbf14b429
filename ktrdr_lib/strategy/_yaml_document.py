"""A strategy's YAML text as data plus the nodes that know each value's line.

:func:`parse_document` reads the single document with PyYAML's ``SafeLoader`` (never a full
loader): it composes the node tree, whose marks give lines, and constructs the plain data the
checks walk. :func:`line_of` turns a field path back into the line a problem is reported on;
:func:`dotted` renders the path (``indicators[1].period``) and :func:`show_value` a value as
YAML would write it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from ktrdr_lib.errors import StrategyProblem

__all__ = [
    "FieldPath",
    "ParsedDocument",
    "dotted",
    "keep_numbers_as_written",
    "line_of",
    "parse_document",
    "show_value",
]

FieldPath = tuple[str | int, ...]
"""Keys and list indexes from the top of the document down to one value."""

MAX_DOCUMENT_CHARS = 1 << 20
"""The longest strategy text read (1 Mi characters; the shipped ones are under 10 Ki)."""
MAX_NODES = 50_000
"""The most YAML nodes (scalars, mappings, sequences) a strategy may have."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and sequences a strategy may have."""


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there


def _refusal(text: str, file: str | None) -> StrategyProblem | None:
    """The one problem that stops a document before it is built: too long, an alias (an
    alias can expand a small text into a huge document), too many nodes or too deep. Syntax
    errors are left to the parse that follows."""
    if len(text) > MAX_DOCUMENT_CHARS:
        return StrategyProblem(
            path="",
            message=f"the strategy text is {len(text)} characters, more than "
            f"{MAX_DOCUMENT_CHARS}; a strategy file is a few kilobytes: check that this is one",
            file=file,
        )
    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                return StrategyProblem(
                    path="",
                    message=f"YAML aliases (*{event.anchor}) are not allowed in strategy files; "
                    "write the value out where it is used",
                    file=file,
                    line=line,
                )
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return StrategyProblem(
                        path="",
                        message=f"the YAML nests deeper than {MAX_DEPTH} levels; a strategy "
                        "needs a handful",
                        file=file,
                        line=line,
                    )
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
            if isinstance(
                event, yaml.ScalarEvent | yaml.MappingStartEvent | yaml.SequenceStartEvent
            ):
                nodes += 1
                if nodes > MAX_NODES:
                    return StrategyProblem(
                        path="",
                        message=f"the YAML has more than {MAX_NODES} values; a strategy has a "
                        "few hundred: check that this is one",
                        file=file,
                        line=line,
                    )
    except yaml.YAMLError:
        return None  # the parse below reports it with its line and column
    return None


@dataclass(frozen=True)
class ParsedDocument:
    """The constructed data (``None`` for an empty document) and its root node."""

    data: object
    root: yaml.Node | None


def parse_document(text: str, file: str | None) -> ParsedDocument | StrategyProblem:
    """Compose and construct the single YAML document with the safe loader.

    Returns:
        The document, or one problem with the line and column of a syntax error (or a tag the
        safe loader refuses, such as ``!!python/object``), or the one that refuses it before
        it is built (longer than :data:`MAX_DOCUMENT_CHARS`, an alias, more than
        :data:`MAX_NODES` values, deeper than :data:`MAX_DEPTH`).
    """
    refused = _refusal(text, file)
    if refused is not None:
        return refused
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" {error.context}" if error.context else ""
        return StrategyProblem(
            path="",
            message=f"invalid YAML{where}: {error.problem}{context}; "
            "check the indentation, colons, quotes and brackets there",
            file=file,
            line=line,
        )
    except yaml.YAMLError as error:
        return StrategyProblem(path="", message=f"invalid YAML: {error}", file=file)
    finally:
        loader.dispose()
    return ParsedDocument(data, root)


def show_value(value: object) -> str:
    """A value as the user would write it in YAML, shortened when long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = repr(value)
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text if len(text) <= 80 else text[:77] + "..."


def dotted(path: FieldPath) -> str:
    """``("indicators", 1, "period")`` → ``indicators[1].period``."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def _child(node: yaml.Node, segment: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The (key node, value node) under ``node`` for one path segment, if present."""
    if isinstance(segment, int):
        if isinstance(node, yaml.SequenceNode) and 0 <= segment < len(node.value):
            return None, node.value[segment]
        return None
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in reversed(node.value):  # YAML keeps the last duplicate
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == segment:
                return key_node, value_node
    return None


def line_of(root: yaml.Node, path: FieldPath, *, at_key: bool) -> int:
    """1-based line of the deepest node along ``path`` (its key line for ``at_key``).

    A path that ends at a missing key gives the line of the section that lacks it.
    """
    node = root
    line: int = root.start_mark.line + 1
    for depth, segment in enumerate(path):
        found = _child(node, segment)
        if found is None:
            break
        key_node, node = found
        last = depth == len(path) - 1
        anchor = key_node if key_node is not None and (at_key or not last) else node
        line = anchor.start_mark.line + 1
    return line


def keep_numbers_as_written(top: dict[Any, Any], root: yaml.Node, keys: Iterable[str]) -> None:
    """Replace a finite number under each top-level key by its text as written, in place.

    YAML reads ``version: 2.10`` as the float ``2.1``; the text keeps ``"2.10"``.
    """
    for key in keys:
        value = top.get(key)
        finite = isinstance(value, int | float) and math.isfinite(value)
        if not finite or isinstance(value, bool):
            continue
        found = _child(root, key)
        if found is not None and isinstance(found[1], yaml.ScalarNode):
            top[key] = str(found[1].value)
