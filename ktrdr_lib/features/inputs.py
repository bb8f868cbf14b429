"""The feature columns of a strategy, in order: what each one is and what it needs.

A strategy's ``nn_inputs`` list the network's inputs: a fuzzy set's memberships (one column per
membership) or an indicator's raw value (one column), each on some timeframes. :func:`plan_inputs`
resolves that list against a run's timeframes into :class:`InputPlan`: the columns in order
(``nn_inputs`` order, then timeframes, then memberships in file order), named
``{tf}_{fuzzy_set}_{membership}`` and ``{tf}_{indicator}[.{output}]_raw``, plus which indicator
outputs each timeframe must compute. Training and inference plan from the same spec, so the
columns are the same in both.

Example:
    >>> from ktrdr_lib.strategy.loader import load_strategy
    >>> spec = load_strategy("rsi_mean_reversion")                  # doctest: +SKIP
    >>> plan_inputs(spec, ["1d"]).names[:2]                          # doctest: +SKIP
    ['1d_rsi_14_oversold', '1d_rsi_14_neutral']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.strategy.spec import FuzzySetSpec, Normalization, StrategySpec

__all__ = ["InputColumn", "InputPlan", "OutputRef", "plan_inputs", "resolve_output"]


@dataclass(frozen=True)
class OutputRef:
    """One indicator output: ``indicator_id`` and the output's name (never empty)."""

    indicator_id: str
    output: str

    @property
    def text(self) -> str:
        """``id.output``."""
        return f"{self.indicator_id}.{self.output}"


@dataclass(frozen=True)
class InputColumn:
    """One feature column before lags.

    Attributes:
        name: the column's name.
        timeframe: the timeframe it is computed on.
        kind: ``fuzzy`` (a membership degree in [0, 1]) or ``raw`` (an indicator value).
        source: the indicator output it is computed from.
        fuzzy_set: the fuzzy set, for a membership column.
        membership: the membership's name, for a membership column.
        normalization: for a raw column, how it is scaled.
    """

    name: str
    timeframe: str
    kind: Literal["fuzzy", "raw"]
    source: OutputRef
    fuzzy_set: str | None = None
    membership: str | None = None
    normalization: Normalization = "none"


@dataclass(frozen=True)
class InputPlan:
    """A strategy's feature columns on a run's timeframes.

    Attributes:
        columns: every column before lags, in order.
        outputs_by_timeframe: timeframe → the indicator outputs it must compute.
    """

    columns: list[InputColumn]
    outputs_by_timeframe: dict[str, list[OutputRef]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [column.name for column in self.columns]

    def on(self, timeframe: str) -> list[InputColumn]:
        """The columns computed on ``timeframe``, in order."""
        return [column for column in self.columns if column.timeframe == timeframe]

    def indicator_ids(self, timeframe: str) -> list[str]:
        """The indicators ``timeframe`` computes, each once, in first-use order."""
        seen: dict[str, None] = {}
        for ref in self.outputs_by_timeframe.get(timeframe, []):
            seen.setdefault(ref.indicator_id, None)
        return list(seen)


def resolve_output(spec: StrategySpec, reference: str, where: str) -> OutputRef:
    """``id`` or ``id.output`` as an :class:`OutputRef` (the primary output for a bare id).

    Raises:
        ConfigError: the id names no indicator, or the output is not one of its outputs.
    """
    indicator_id, _, output = reference.partition(".")
    indicator = spec.indicators.get(indicator_id)
    if indicator is None:
        raise ConfigError(
            f"{where}: {reference!r} names no indicator; the strategy's indicators are "
            f"{', '.join(spec.indicators)}"
        )
    entry = INDICATOR_CATALOG.require(indicator.type, where=f" (indicator {indicator_id!r})")
    if not output:
        return OutputRef(indicator_id, entry.primary_output)
    if output not in entry.outputs:
        listed = ", ".join(entry.outputs)
        raise ConfigError(
            f"{where}: {entry.name} (indicator {indicator_id!r}) has no output {output!r}; "
            f"its outputs are {listed}"
        )
    return OutputRef(indicator_id, output)


def _timeframes_of(spec_timeframes: object, run: Sequence[str], where: str) -> list[str]:
    if spec_timeframes == "all":
        return list(run)
    assert isinstance(spec_timeframes, list)
    missing = [tf for tf in spec_timeframes if tf not in run]
    if missing:
        raise ConfigError(
            f"{where} asks for timeframe(s) {', '.join(missing)}, but this run trains on "
            f"{', '.join(run)}; add them to the run's timeframes or to training_data"
        )
    return [tf for tf in run if tf in spec_timeframes]


def _fuzzy_set(spec: StrategySpec, set_id: str, where: str) -> FuzzySetSpec:
    fuzzy_set = spec.fuzzy_sets.get(set_id)
    if fuzzy_set is None:
        raise ConfigError(
            f"{where}: no fuzzy set {set_id!r}; the strategy's fuzzy sets are "
            f"{', '.join(spec.fuzzy_sets)}"
        )
    return fuzzy_set


def plan_inputs(spec: StrategySpec, timeframes: Sequence[str]) -> InputPlan:
    """The strategy's feature columns on these timeframes (the run's, fastest first).

    Raises:
        ConfigError: an input names an unknown fuzzy set, indicator, output or timeframe.
    """
    columns: list[InputColumn] = []
    needed: dict[str, dict[str, OutputRef]] = {tf: {} for tf in timeframes}
    for index, entry in enumerate(spec.nn_inputs):
        where = f"nn_inputs[{index}]"
        for tf in _timeframes_of(entry.timeframes, timeframes, where):
            if entry.fuzzy_set is not None:
                fuzzy_set = _fuzzy_set(spec, entry.fuzzy_set, where)
                source = resolve_output(
                    spec, fuzzy_set.indicator, f"fuzzy_sets.{entry.fuzzy_set}.indicator"
                )
                for name in fuzzy_set.memberships:
                    columns.append(
                        InputColumn(
                            name=f"{tf}_{entry.fuzzy_set}_{name}",
                            timeframe=tf,
                            kind="fuzzy",
                            source=source,
                            fuzzy_set=entry.fuzzy_set,
                            membership=name,
                        )
                    )
            else:
                reference = entry.raw_indicator or ""
                source = resolve_output(spec, reference, where)
                columns.append(
                    InputColumn(
                        name=f"{tf}_{reference}_raw",
                        timeframe=tf,
                        kind="raw",
                        source=source,
                        normalization=entry.normalization or "none",
                    )
                )
            needed[tf].setdefault(source.text, source)
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ConfigError(
            f"nn_inputs give the same column twice: {', '.join(twice)}; list each input once"
        )
    return InputPlan(
        columns=columns,
        outputs_by_timeframe={tf: list(refs.values()) for tf, refs in needed.items()},
    )
