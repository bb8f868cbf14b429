"""The indicator registry: one entry per indicator holds everything the library knows about it.

An :class:`IndicatorDef` names an indicator (and its aliases), declares the price columns it
reads, its parameters with their defaults and bounds, its outputs (the primary one first), the
function that computes it, its warm-up, and the TA-Lib expression the tests compare it with.
Strategy validation (:mod:`ktrdr_lib.strategy.loader`), the computation and the warm-up
(:mod:`ktrdr_lib.features.indicators.compute`) all read the same entry, so adding an indicator
is adding one entry to one family module of :mod:`ktrdr_lib.features.indicators`.

Entries are plain frozen dataclasses rather than msgspec Structs because they hold functions;
a parameter's bounds are handed to validation as a msgspec type
(:attr:`IndicatorParameter.constraint`), the same form the strategy Structs use.

Example:
    >>> from ktrdr_lib.features.indicators import INDICATOR_CATALOG
    >>> rsi = INDICATOR_CATALOG.require("rsi")
    >>> rsi.params, rsi.inputs, rsi.outputs
    ({'period': 14}, ('source',), ('rsi',))
    >>> INDICATOR_CATALOG.suggestion("rsii")
    'rsi'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from ktrdr_lib.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "SOURCE",
    "IndicatorDef",
    "IndicatorParameter",
    "IndicatorRegistry",
    "InputColumn",
    "ParameterValue",
    "choice",
    "flag",
    "normalize_indicator_name",
    "number",
    "period",
    "positive_number",
]

InputColumn = Literal["source", "open", "high", "low", "close", "volume"]
"""A bar column an indicator reads; ``source`` is the price column the strategy names."""

SOURCE: InputColumn = "source"

_UNBOUNDED = msgspec.Meta()

ParameterValue = float | bool | str
"""What an indicator parameter holds: a number, a flag or one of some words."""


@dataclass(frozen=True, kw_only=True, slots=True)
class IndicatorParameter:
    """One parameter of an indicator: its default and its bounds.

    Attributes:
        name: the key a strategy writes beside the indicator's ``name``.
        default: the value when the strategy leaves it out; ``None`` makes it required.
        whole: whether it is a whole number (periods) rather than any finite number.
        choices: for a parameter that is one of some words (``ma_type: SMA``), the words.
        flag: whether it is a yes/no parameter (``use_typical_price: true``).
        bounds: the allowed range as a msgspec ``Meta`` (``ge``, ``gt``, ``le``, ``lt``), as the
            strategy Structs declare theirs.
    """

    name: str
    default: ParameterValue | None = None
    whole: bool = True
    bounds: msgspec.Meta = _UNBOUNDED
    choices: tuple[str, ...] = ()
    flag: bool = False

    @property
    def numeric(self) -> bool:
        """Whether the parameter is a number (not a flag, not a choice of words)."""
        return not self.flag and not self.choices

    @property
    def required(self) -> bool:
        """Whether a strategy must give the parameter (it has no default)."""
        return self.default is None

    @property
    def constraint(self) -> Any:
        """The parameter as a msgspec type, ``Annotated[int, Meta(ge=1)]`` for a period.

        Strategy validation reads the bounds from this, as it does for the strategy Structs.
        """
        if self.flag:
            return bool
        if self.choices:
            return Literal[self.choices]
        return Annotated[int if self.whole else float, self.bounds]

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies within the bounds (its wholeness is not checked)."""
        low, low_open = _low(self.bounds)
        high, high_open = _high(self.bounds)
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return above and below

    def bounds_text(self) -> str:
        """The bounds in words, e.g. ``>= 1``; empty when there are none."""
        low, low_open = _low(self.bounds)
        high, high_open = _high(self.bounds)
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        return " and ".join(parts)


def _low(bounds: msgspec.Meta) -> tuple[float | None, bool]:
    """The lower bound and whether it is excluded."""
    return (bounds.gt, True) if bounds.gt is not None else (bounds.ge, False)


def _high(bounds: msgspec.Meta) -> tuple[float | None, bool]:
    """The upper bound and whether it is excluded."""
    return (bounds.lt, True) if bounds.lt is not None else (bounds.le, False)


def period(
    name: str = "period", default: int | None = None, *, bounds: msgspec.Meta | None = None
) -> IndicatorParameter:
    """A look-back or smoothing period: a whole number within ``bounds`` (default ``>= 1``),
    required when it has no default."""
    return IndicatorParameter(
        name=name,
        default=default,
        whole=True,
        bounds=msgspec.Meta(ge=1) if bounds is None else bounds,
    )


def positive_number(name: str, default: float | None = None) -> IndicatorParameter:
    """A finite number > 0, such as a band width in standard deviations."""
    return IndicatorParameter(name=name, default=default, whole=False, bounds=msgspec.Meta(gt=0))


def number(
    name: str, default: float | None = None, *, bounds: msgspec.Meta = _UNBOUNDED
) -> IndicatorParameter:
    """Any finite number within ``bounds`` (a msgspec ``Meta`` with ``ge``/``gt``/``le``/``lt``)."""
    return IndicatorParameter(name=name, default=default, whole=False, bounds=bounds)


def flag(name: str, default: bool) -> IndicatorParameter:
    """A yes/no parameter."""
    return IndicatorParameter(name=name, default=default, flag=True)


def choice(name: str, default: str, choices: tuple[str, ...]) -> IndicatorParameter:
    """A parameter that is one of ``choices`` (matched without regard to case)."""
    return IndicatorParameter(name=name, default=default, choices=choices)


def normalize_indicator_name(name: str) -> str:
    """The form names are matched in: lower-case, no ``_``, no trailing ``indicator``.

    Every spelling KTRDR accepted in any era reduces to a canonical name or an alias this way
    (``RSIIndicator``, ``rsi`` and ``RSI`` to ``rsi``; ``williams_r`` and ``WilliamsR`` to
    ``williamsr``).

    Example:
        >>> normalize_indicator_name("BollingerBandsIndicator")
        'bollingerbands'
    """
    text = name.strip().lower().replace("_", "")
    if text.endswith("indicator") and text != "indicator":
        text = text[: -len("indicator")]
    return text


@dataclass(frozen=True, kw_only=True, slots=True)
class IndicatorDef:
    """Everything about one indicator.

    Attributes:
        name: the name strategies use.
        summary: what the fuzzy sets see, in words (the primary output).
        inputs: the bar columns ``compute`` takes, in order; :data:`SOURCE` stands for the
            strategy's ``source`` column (default ``close``).
        parameters: the parameters, in the order they are checked; ``compute`` and ``warmup``
            take each by name.
        outputs: the names of what ``compute`` gives, the primary one first (the one a fuzzy set
            or raw input that names the indicator without ``.output`` reads).
        compute: ``compute(*columns, **parameters)`` → one float64 array of the columns' length
            per output (a tuple in ``outputs`` order when there are several), NaN during
            warm-up. Whole-number parameters arrive as ``int``, other numbers as ``float``,
            flags as ``bool``, choices as the declared word.
        warmup: ``warmup(**parameters)`` → leading bars that are NaN or still carry a seed.
        aliases: other names that resolve to this entry (any spelling: names are matched after
            :func:`normalize_indicator_name`).
        reference: the TA-Lib expression the tests compare ``compute`` with, if there is one.
        renamed_parameters: parameter names a strategy may write for one of ``parameters``
            because the meaning is evidently the same (``std_dev`` for ``multiplier``).
        technical_columns: ``technical_columns(**parameters)`` → the column names late v2
            KTRDR gave this indicator's outputs (``{"DI_Plus_14": "plus_di", ...}``), which a v2
            fuzzy set may name; ``None`` when it had none beyond the indicator's id.
    """

    name: str
    summary: str
    inputs: tuple[InputColumn, ...]
    parameters: tuple[IndicatorParameter, ...]
    outputs: tuple[str, ...]
    compute: Callable[..., FloatArray | tuple[FloatArray, ...]]
    warmup: Callable[..., int]
    aliases: tuple[str, ...] = ()
    reference: str | None = None
    renamed_parameters: Mapping[str, str] = field(default_factory=dict)
    technical_columns: Callable[..., Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        names = [parameter.name for parameter in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"indicator {self.name!r} declares a parameter twice: {names}")
        unknown = set(self.renamed_parameters.values()) - set(names)
        if unknown:
            raise ValueError(f"indicator {self.name!r} renames to unknown parameters {unknown}")
        if not self.outputs or len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"indicator {self.name!r} needs distinct outputs, got {self.outputs}")

    @property
    def uses_source(self) -> bool:
        """Whether the strategy's ``source`` price column applies."""
        return SOURCE in self.inputs

    @property
    def params(self) -> dict[str, ParameterValue | None]:
        """Parameter name → default (``None``: required), in declaration order."""
        return {parameter.name: parameter.default for parameter in self.parameters}

    @property
    def primary_output(self) -> str:
        """The output fed to the fuzzy sets."""
        return self.outputs[0]

    def parameter(self, name: str) -> IndicatorParameter | None:
        """The parameter called ``name``, if the indicator takes one."""
        return next((p for p in self.parameters if p.name == name), None)


class IndicatorRegistry(Mapping[str, IndicatorDef]):
    """The indicators, by name: a read-only mapping of primary names to entries, sorted.

    :meth:`find` and :meth:`require` also resolve aliases and every spelling that
    :func:`normalize_indicator_name` reduces to a name or an alias (``RSIIndicator``, ``RSI``).

    Args:
        entries: the indicators; names and aliases must be unique across all of them.

    Raises:
        ValueError: two entries share a name or an alias.
    """

    def __init__(self, entries: Iterable[IndicatorDef]) -> None:
        by_name: dict[str, IndicatorDef] = {}
        primary: dict[str, IndicatorDef] = {}
        for entry in entries:
            for name in {normalize_indicator_name(n) for n in (entry.name, *entry.aliases)}:
                if name in by_name:
                    raise ValueError(
                        f"indicator name {name!r} is taken by {by_name[name].name!r}; "
                        f"{entry.name!r} cannot use it too"
                    )
                by_name[name] = entry
            primary[entry.name] = entry
        self._by_name = by_name
        self._entries = dict(sorted(primary.items()))

    def __getitem__(self, name: str) -> IndicatorDef:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """The primary names, sorted (what error messages list)."""
        return list(self._entries)

    def find(self, name: str) -> IndicatorDef | None:
        """The entry that ``name`` (a name or an alias, in any of the spellings
        :func:`normalize_indicator_name` reduces) resolves to, if any."""
        return self._by_name.get(normalize_indicator_name(name))

    def suggestion(self, name: object) -> str | None:
        """The known name or alias closest to ``name``, for a "did you mean"."""
        if not isinstance(name, str):
            return None
        choices = sorted(self._by_name)
        wanted = normalize_indicator_name(name)
        close = difflib.get_close_matches(wanted, choices, n=1, cutoff=0.6)
        close = close or [choice for choice in choices if wanted and choice.startswith(wanted)]
        return self._by_name[close[0]].name if close else None

    def require(self, name: str, *, where: str = "") -> IndicatorDef:
        """The entry for ``name``, or a :class:`ConfigError` listing the known names.

        Args:
            name: a name or an alias.
            where: words placed after the name in the error, e.g. ``" (feature_id 'x')"``.

        Raises:
            ConfigError: no indicator has that name; the message suggests the closest one.
        """
        entry = self.find(name)
        if entry is not None:
            return entry
        close = self.suggestion(name)
        ending = f"; did you mean `{close}`?" if close else "."
        raise ConfigError(
            f"unknown indicator {name!r}{where}; known indicators: {', '.join(self.names())}"
            + ending
        )
