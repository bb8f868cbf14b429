"""Load a KTRDR strategy file of any layout (legacy, v2, v3), reporting every problem at once.

:func:`check_strategy` returns a :class:`~ktrdr_lib.schemas.strategies.StrategyCheck`: one
:class:`~ktrdr_lib.errors.StrategyProblem` per mistake (its dotted field path, what is wrong
and what is allowed, the offending value, the line), every
:class:`~ktrdr_lib.schemas.strategies.StrategyNotice` (where the file trains differently from
what KTRDR would have done with it), and the layout. :func:`check_strategy_text` returns the
problems only; :func:`load_strategy` raises :class:`~ktrdr_lib.errors.StrategyError` with them,
or builds the one internal model, :class:`~ktrdr_lib.strategy.spec.StrategySpec`, with the
notices in ``spec.notices``.

The work is shared by private modules, one concept each:

- :mod:`~ktrdr_lib.strategy._yaml_document`: the safe YAML parse, and lines for field paths;
- :mod:`~ktrdr_lib.strategy._spec_types` and :mod:`~ktrdr_lib.strategy._field_rules`: what each
  field's type in the spec allows, read through ``msgspec.inspect``, checked field by field;
- :mod:`~ktrdr_lib.strategy._layout`: which layout, and which KTRDR era, a file is from;
- :mod:`~ktrdr_lib.strategy._section_rules`: the whole file read section by section (one
  module per section) into the internal model's mapping;
- :mod:`~ktrdr_lib.strategy._kept_keys`: keys KTRDR did not use, kept and noticed.

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

from ktrdr_lib.errors import MAX_PROBLEMS as ERRORS_MAX_PROBLEMS
from ktrdr_lib.errors import ConfigError, StrategyError, StrategyNotFoundError, StrategyProblem
from ktrdr_lib.schemas.strategies import StrategyCheck, StrategyNotice
from ktrdr_lib.strategy._field_rules import Finding
from ktrdr_lib.strategy._section_rules import REQUIRED_SECTIONS, StrategyChecker
from ktrdr_lib.strategy._yaml_document import (
    dotted,
    keep_numbers_as_written,
    line_of,
    parse_document,
    show_value,
)
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["check_strategy", "check_strategy_text", "is_strategy_file_path", "load_strategy"]

MAX_PROBLEMS = ERRORS_MAX_PROBLEMS
"""The most problems one check lists; the rest are counted in one more (the one cap a data
file's check uses too: :data:`ktrdr_lib.errors.MAX_PROBLEMS`)."""

_YAML_SUFFIXES = (".yaml", ".yml")
# Text fields where a YAML number is kept as written (`version: 2.10` is "2.10", not 2.1).
_NUMBERS_AS_WRITTEN = ("version",)


def _conversion_problem(error: msgspec.ValidationError, file: str | None) -> StrategyProblem:
    """A msgspec message such as ``Expected `int`... - at `$.model.x``` as a problem."""
    message, _, location = str(error).rpartition(" - at ")
    path = location.strip("`").removeprefix("$").removeprefix(".")
    return StrategyProblem(
        path=path,
        message=f"{message or error}; fix this field (see docs/strategy-format.md)",
        file=file,
    )


def _top_level(text: str, file: str | None) -> tuple[dict[Any, Any], Any] | StrategyProblem:
    """The parsed top-level mapping and its node, or the one problem that stops it."""
    parsed = parse_document(text, file)
    if isinstance(parsed, StrategyProblem):
        return parsed
    top, root = parsed.data, parsed.root
    if root is None or top is None:
        message = "the document is empty; a strategy needs " + ", ".join(REQUIRED_SECTIONS)
        return StrategyProblem(path="", message=message, file=file, line=1)
    if not isinstance(top, dict):
        message = (
            "the top level must be a mapping of sections (`name:`, `indicators:`, ...), "
            f"not a {type(top).__name__}"
        )
        return StrategyProblem(path="", message=message, value=show_value(top), file=file, line=1)
    keep_numbers_as_written(top, root, _NUMBERS_AS_WRITTEN)
    return top, root


def _examine(text: str, file: str | None) -> tuple[StrategyCheck, StrategySpec | None]:
    found = _top_level(text, file)
    if isinstance(found, StrategyProblem):
        return StrategyCheck(problems=[found], notices=[]), None
    top, root = found

    def where(finding: Finding) -> dict[str, Any]:
        return {
            "path": dotted(finding.path),
            "message": finding.message,
            "value": finding.value,
            "file": file,
            "line": line_of(root, finding.path, at_key=finding.at_key),
        }

    checker = StrategyChecker()
    internal = checker.read(top)
    # The first MAX_PROBLEMS only (the walk finds them in file order), plus one that counts
    # the rest: a file of 16k unknown keys is answered at once, not after a line search each.
    shown = checker.findings[:MAX_PROBLEMS]
    problems = [StrategyProblem(**where(finding)) for finding in shown]
    notices = [StrategyNotice(**where(finding)) for finding in checker.notes[:MAX_PROBLEMS]]
    problems.sort(key=lambda problem: problem.line or 0)
    notices.sort(key=lambda notice: notice.line or 0)
    hidden = len(checker.findings) - len(shown)
    if hidden > 0:
        problems.append(
            StrategyProblem(
                path="",
                message=f"and {hidden} more problem{'s' if hidden != 1 else ''} not listed (the "
                f"first {MAX_PROBLEMS} are); fix these and check again",
                file=file,
            )
        )
    check = StrategyCheck(problems=problems, notices=notices, layout=checker.layout)
    if internal is None and not problems:  # pragma: no cover - every refusal is reported
        problems = [StrategyProblem(path="", message="the strategy could not be read", file=file)]
        check = StrategyCheck(problems=problems, notices=notices, layout=checker.layout)
    if problems or internal is None:
        return check, None
    internal.update(notices=msgspec.to_builtins(notices), source=file)
    try:
        return check, msgspec.convert(internal, StrategySpec)
    except msgspec.ValidationError as error:  # pragma: no cover - the checks cover the Structs
        problem = _conversion_problem(error, file)
        return StrategyCheck(problems=[problem], notices=notices, layout=checker.layout), None


def check_strategy(text: str, *, file: str | None = None) -> StrategyCheck:
    """Everything checking a strategy's YAML text finds: problems, notices and layout.

    Args:
        text: the YAML document (legacy, v2 or v3 layout).
        file: where the text came from, copied into each problem and notice.

    Returns:
        The check; ``check.valid`` (no problems) means :func:`load_strategy` will succeed.
        Notices never block loading.

    Example:
        >>> text = "name: demo\\nscope: universal\\nindicators: [{name: rsi}]\\n"
        >>> text += "fuzzy_sets: {rsi: {low: [0, 20, 40]}}\\nmodel: {}\\ntraining: {}\\n"
        >>> check = check_strategy(text)
        >>> check.valid, check.layout, [n.path for n in check.notices][:2]
        (True, 'v2', ['scope', 'fuzzy_sets.rsi.low'])
    """
    return _examine(text, file)[0]


def check_strategy_text(text: str, *, file: str | None = None) -> list[StrategyProblem]:
    """Every problem in a strategy's YAML text, in line order (empty when it is valid).

    Args:
        text: the YAML document.
        file: where the text came from, copied into each problem (``None`` for pasted text).

    Returns:
        The problems; an empty list means :func:`load_strategy` will succeed on this text.
        :func:`check_strategy` gives the notices too.

    Example:
        >>> "decision" in [p.path for p in check_strategy_text("name: demo\\ndecision: {}\\n")]
        True
    """
    return _examine(text, file)[0].problems


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
    file; any other string is the YAML itself. Legacy, v2 and v3 files all become the one
    internal model: indicator parameters not given take the catalog defaults, v2 indicators
    are keyed by ``feature_id`` (else ``name``), and ``spec.notices`` lists every place where
    the strategy trains differently from what KTRDR would have done with the file.

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
        >>> spec.indicators["rsi"].params
        {'period': 14.0}
    """
    if is_strategy_file_path(source):
        path = Path(source)
        file: str | None = str(path)
        text = _read(path)
    else:
        file = None
        text = str(source)
    check, spec = _examine(text, file)
    if spec is None:
        raise StrategyError(check.problems)
    return spec
