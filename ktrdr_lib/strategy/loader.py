"""Load a KTRDR v2 strategy from YAML, reporting every problem at once.

:func:`check_strategy_text` returns one :class:`~ktrdr_lib.errors.StrategyProblem` per mistake,
each with its dotted field path, what is wrong and what is allowed, the offending value, and
the line it sits on; :func:`load_strategy` raises :class:`~ktrdr_lib.errors.StrategyError` with
that list, or builds the typed :class:`~ktrdr_lib.strategy.spec.StrategySpec`.

The work is shared by private modules, one concept each:

- :mod:`~ktrdr_lib.strategy._yaml_document`: the safe YAML parse, and lines for field paths;
- :mod:`~ktrdr_lib.strategy._spec_types`: what each field's type in
  :mod:`~ktrdr_lib.strategy.spec` allows (bounds, choices, patterns, lists), read through
  ``msgspec.inspect`` so the checks cannot drift from the Structs;
- :mod:`~ktrdr_lib.strategy._field_rules`: a section checked field by field against its
  Struct, every problem collected;
- :mod:`~ktrdr_lib.strategy._section_rules`: the rules across fields and sections, and the
  indicators and their parameters from the indicator catalog.

Example:
    >>> spec = load_strategy("rsi_mean_reversion.yaml")  # doctest: +SKIP
    >>> problems = check_strategy_text("name: x\\nindicators: []\\n")
    >>> problems[0].render()  # doctest: +SKIP
    '<strategy>:2: indicators: must be a non-empty list of indicators, ...'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.errors import ConfigError, StrategyError, StrategyNotFoundError, StrategyProblem
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.strategy._section_rules import REQUIRED_SECTIONS, StrategyChecker
from ktrdr_lib.strategy._yaml_document import (
    dotted,
    keep_numbers_as_written,
    line_of,
    parse_document,
    show_value,
)
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["check_strategy_text", "is_strategy_file_path", "load_strategy"]

_YAML_SUFFIXES = (".yaml", ".yml")
# Text fields where a YAML number is kept as written (`version: 2.10` is "2.10", not 2.1).
_NUMBERS_AS_WRITTEN = ("version",)


def _indicator_fields(item: dict[str, Any]) -> dict[str, Any]:
    """One YAML indicator item → IndicatorSpec fields, with catalog defaults filled in."""
    entry = INDICATOR_CATALOG.require(item["name"])
    given = dict(item)
    for old, new in entry.renamed_parameters.items():
        if old in given:
            given.setdefault(new, given.pop(old))
    fields: dict[str, Any] = {
        "name": item["name"],
        "feature_id": item.get("feature_id", item["name"]),
        "params": {key: given.get(key, default) for key, default in entry.params.items()},
    }
    if entry.uses_source and "source" in item:
        fields["source"] = item["source"]
    return fields


def _build(top: dict[str, Any], file: str | None) -> StrategySpec:
    fields = dict(top)
    fields["indicators"] = [_indicator_fields(item) for item in top["indicators"]]
    fields["source"] = file
    return msgspec.convert(fields, StrategySpec)


def _conversion_problem(error: msgspec.ValidationError, file: str | None) -> StrategyProblem:
    """A msgspec message such as ``Expected `int`... - at `$.model.x``` as a problem."""
    message, _, location = str(error).rpartition(" - at ")
    path = location.strip("`").removeprefix("$").removeprefix(".")
    return StrategyProblem(
        path=path,
        message=f"{message or error}; fix this field (see docs/strategy-format.md)",
        file=file,
    )


def _examine(text: str, file: str | None) -> tuple[list[StrategyProblem], StrategySpec | None]:
    parsed = parse_document(text, file)
    if isinstance(parsed, StrategyProblem):
        return [parsed], None
    top, root = parsed.data, parsed.root
    if root is None or top is None:
        message = "the document is empty; a strategy needs " + ", ".join(REQUIRED_SECTIONS)
        return [StrategyProblem(path="", message=message, file=file, line=1)], None
    if not isinstance(top, dict):
        message = (
            "the top level must be a mapping of sections (`name:`, `indicators:`, ...), "
            f"not a {type(top).__name__}"
        )
        problem = StrategyProblem(
            path="", message=message, value=show_value(top), file=file, line=1
        )
        return [problem], None
    keep_numbers_as_written(top, root, _NUMBERS_AS_WRITTEN)
    checker = StrategyChecker()
    checker.check(top)
    problems = [
        StrategyProblem(
            path=dotted(finding.path),
            message=finding.message,
            value=finding.value,
            file=file,
            line=line_of(root, finding.path, at_key=finding.at_key),
        )
        for finding in checker.findings
    ]
    if problems:
        return sorted(problems, key=lambda problem: problem.line or 0), None
    try:
        return [], _build(top, file)
    except msgspec.ValidationError as error:
        return [_conversion_problem(error, file)], None


def check_strategy_text(text: str, *, file: str | None = None) -> list[StrategyProblem]:
    """Every problem in a strategy's YAML text, in line order (empty when it is valid).

    Args:
        text: the YAML document.
        file: where the text came from, copied into each problem (``None`` for pasted text).

    Returns:
        The problems; an empty list means :func:`load_strategy` will succeed on this text.

    Example:
        >>> [p.path for p in check_strategy_text("name: demo\\nscope: global\\n")][-1]
        'scope'
    """
    return _examine(text, file)[0]


def is_strategy_file_path(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a file: a PathLike, or one line ending ``.yaml``/``.yml``."""
    if not isinstance(source, str):
        return True
    return "\n" not in source and source.lower().endswith(_YAML_SUFFIXES)


def _read(path: Path) -> str:
    """The file's text, or a clear error naming the path."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyNotFoundError(str(path), [str(path.absolute())]) from None
    except IsADirectoryError:
        raise ConfigError(
            f"Strategy path {str(path)!r} is a directory; pass a .yaml file inside it"
        ) from None
    except UnicodeDecodeError as error:
        problem = StrategyProblem(
            path="",
            message=f"the file is not UTF-8 text ({error.reason}); save it as UTF-8",
            file=str(path),
        )
        raise StrategyError([problem]) from None
    except OSError as error:
        raise ConfigError(
            f"Cannot read strategy file {str(path)!r}: {error.strerror}; check its permissions"
        ) from None


def load_strategy(source: str | os.PathLike[str]) -> StrategySpec:
    """Load and validate a strategy from a YAML file or YAML text.

    A ``Path`` (any PathLike), or a one-line string ending ``.yaml``/``.yml``, is read as a
    file; any other string is the YAML itself. Indicator parameters not given take the catalog
    defaults, ``feature_id`` defaults to the indicator's name, and ``source`` is kept only for
    indicators that read a price column.

    Args:
        source: a file path, or the YAML text.

    Returns:
        The validated strategy; ``spec.source`` is the file path, or ``None`` for text.

    Raises:
        StrategyNotFoundError: the file does not exist.
        StrategyError: the strategy has problems; ``error.problems`` lists every one.
        ConfigError: the path is a directory or cannot be read.

    Example:
        >>> from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
        >>> spec = load_strategy(SHIPPED_STRATEGIES_DIR / "rsi_mean_reversion.yaml")
        >>> spec.indicators[0].params
        {'period': 14.0}
    """
    if is_strategy_file_path(source):
        path = Path(source)
        file: str | None = str(path)
        text = _read(path)
    else:
        file = None
        text = str(source)
    problems, spec = _examine(text, file)
    if spec is None:
        raise StrategyError(problems)
    return spec
