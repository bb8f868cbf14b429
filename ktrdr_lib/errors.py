"""The project's one error root and its branches.

Every error a user can see says what was wrong, where (file, field, line or value) and what to
do. The core never raises HTTP errors; ``api/`` maps these classes to status codes in one table.

Hierarchy::

    KtrdrError
    ├── ConfigError              bad strategy, request or settings
    │   └── StrategyError        a strategy file with one or more problems (``problems``)
    ├── DataError                missing, malformed or too-short market data
    ├── TrainingError            training failed (NaN loss, no samples, ...)
    ├── NotFoundError            a named thing does not exist
    │   └── StrategyNotFoundError    lists the places searched
    ├── StateConflictError       the operation is in a state that forbids the request
    │   └── QueueFullError       too many runs wait already (``retry_after_s``)
    ├── OperationCancelled       raised inside a run when its cancel token is set
    └── HostUnavailableError     the remote training host cannot be reached
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

__all__ = [
    "MAX_PROBLEMS",
    "ConfigError",
    "DataError",
    "HostUnavailableError",
    "KtrdrError",
    "NotFoundError",
    "OperationCancelled",
    "QueueFullError",
    "StateConflictError",
    "StrategyError",
    "StrategyNotFoundError",
    "StrategyProblem",
    "TrainingError",
    "error_class",
    "located_line",
    "rebuild_error",
]


MAX_PROBLEMS = 100
"""The most problems one error (or one check) lists; the rest are counted in one more line."""


class KtrdrError(Exception):
    """Root of every error this project raises on purpose.

    Args:
        detail: one or more sentences: what was wrong, where, and what to do.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class ConfigError(KtrdrError):
    """A strategy, request or setting is invalid."""


class _Located(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def value(self) -> str | None: ...
    @property
    def file(self) -> str | None: ...
    @property
    def line(self) -> int | None: ...


def located_line(finding: _Located, *, tag: str, value_word: str) -> str:
    """One line for a finding in a strategy file: ``file:line: [tag: ]path: message (value_word
    value)``; ``<strategy>`` stands for a text that came from no file."""
    where = finding.file or "<strategy>"
    if finding.line is not None:
        where = f"{where}:{finding.line}"
    text = f"{where}: {tag + ': ' if tag else ''}{finding.path or '<top level>'}: {finding.message}"
    if finding.value is not None:
        text += f" ({value_word} {finding.value})"
    return text


class StrategyProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One problem found in a strategy file.

    Attributes:
        path: dotted field path, e.g. ``fuzzy_sets.rsi.oversold.parameters``.
        message: what is wrong and what is allowed.
        value: the offending value, rendered as text (``None`` when the field is missing).
        file: the file the strategy came from, when it came from a file.
        line: 1-based line in that file, when known.
    """

    path: str
    message: str
    value: str | None = None
    file: str | None = None
    line: int | None = None

    def render(self) -> str:
        """One line: ``file:line: path: message (got value)``."""
        return located_line(self, tag="", value_word="got")


class StrategyError(ConfigError):
    """A strategy has one or more problems; each is in ``problems``."""

    def __init__(self, problems: Sequence[StrategyProblem]) -> None:
        self.problems = list(problems)
        lines = [p.render() for p in self.problems]
        head = "strategy is invalid" if len(lines) != 1 else "strategy is invalid: " + lines[0]
        detail = head if len(lines) == 1 else head + ":\n  " + "\n  ".join(lines)
        super().__init__(detail)


class DataError(KtrdrError):
    """Market data is missing, malformed or too short for the request."""


class TrainingError(KtrdrError):
    """Training could not run or produced an unusable model."""


class NotFoundError(KtrdrError):
    """A named strategy, model, operation or session does not exist."""


class StrategyNotFoundError(NotFoundError):
    """No strategy of that name or path; ``searched`` lists the places looked in."""

    def __init__(self, name: str, searched: Sequence[str]) -> None:
        self.name = name
        self.searched = list(searched)
        places = "\n  ".join(self.searched) if self.searched else "(no places configured)"
        super().__init__(
            f"Strategy file not found: {name!r}. Searched:\n  {places}\n"
            "Pass a path to a YAML file, set KTRDR_STRATEGIES_DIR, or use a name from "
            "`ktrdr strategies list`."
        )


class StateConflictError(KtrdrError):
    """The operation's state forbids the request (e.g. cancelling a finished run)."""


class QueueFullError(StateConflictError):
    """Too many runs are waiting to start; nothing was stored. Try again later.

    Args:
        detail: how many wait and what to do.
        retry_after_s: a sensible wait before trying again (an HTTP ``Retry-After``).
    """

    def __init__(self, detail: str, retry_after_s: float = 30.0) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class OperationCancelled(KtrdrError):
    """Raised inside a run when its cancel token is set; the run ends ``cancelled``."""


class HostUnavailableError(KtrdrError):
    """The remote training host could not be reached or answered with garbage."""


def error_class(*names: str) -> type[KtrdrError] | None:
    """The first of ``names`` that names a class of this tree (the names an error travels
    under between processes), or ``None``."""
    for name in names:
        cls = _BY_NAME.get(name)
        if cls is not None:
            return cls
    return None


def rebuild_error(
    cls: type[KtrdrError], detail: str, problems: Sequence[StrategyProblem] = ()
) -> KtrdrError:
    """An error of class ``cls`` whose message is ``detail``, as another process rendered it.

    Constructors that take structured arguments (``StrategyError``, ``StrategyNotFoundError``)
    are bypassed: the detail already says everything, and ``problems`` are attached when given.
    """
    error = cls.__new__(cls)
    KtrdrError.__init__(error, detail)
    if isinstance(error, StrategyError):
        error.problems = list(problems)
    if isinstance(error, StrategyNotFoundError):
        error.name = ""
        error.searched = []
    if isinstance(error, QueueFullError):
        error.retry_after_s = 30.0
    return error


_BY_NAME: dict[str, type[KtrdrError]] = {
    cls.__name__: cls
    for cls in (
        KtrdrError,
        ConfigError,
        StrategyError,
        DataError,
        TrainingError,
        NotFoundError,
        StrategyNotFoundError,
        StateConflictError,
        QueueFullError,
        OperationCancelled,
        HostUnavailableError,
    )
}
