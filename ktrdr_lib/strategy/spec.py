"""StrategySpec: the one internal model of a strategy, whatever layout its file was written in.

The shape is KTRDR's v3 layout: indicators by id, fuzzy sets naming ``id`` or ``id.output``,
an ordered list of network inputs. Legacy (``data:``) and v2 files are normalised to it right
after they are checked (:mod:`ktrdr_lib.strategy.loader`), so features, training, storage and
inference have one path. The sections every layout shares are declared in
:mod:`ktrdr_lib.strategy.sections` and :mod:`ktrdr_lib.strategy.label_kinds` and re-exported
here.

These Structs are the one declaration of what each field allows: bounds as
``Annotated[int, Meta(ge=1)]``, choices as ``Literal[...]``, text formats as
``Meta(pattern=...)`` with the words an error uses as the Meta's ``description``. The loader
reads them through ``msgspec.inspect``, so a bound changed here is checked and explained
everywhere. ``msgspec.to_builtins(spec)`` gives the model back as data;
:func:`ktrdr_lib.strategy.config.strategy_to_config` gives it back as a v3 strategy file.

Example:
    >>> model_name("v15_rsi_zigzag_1.5")
    'v15_rsi_zigzag_1_5'
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ktrdr_lib.schemas.strategies import StrategyLayout, StrategyNotice
from ktrdr_lib.strategy.label_kinds import (
    LABEL_KINDS,
    ContextLabelsSpec,
    ForwardReturnLabelsSpec,
    LabelsSpec,
    RegimeLabelsSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)
from ktrdr_lib.strategy.sections import (
    TIMEFRAME_PATTERN,
    ArchitectureSpec,
    ContextDataSpec,
    CostModelSpec,
    DataSplitSpec,
    DecisionsSpec,
    EarlyStoppingSpec,
    FeaturesSpec,
    FreeForm,
    ModelSpec,
    ModelTrainingSpec,
    SymbolsSpec,
    Timeframe,
    TimeframesSpec,
    TrainingDataSpec,
    TrainingSpec,
    _Spec,
)

__all__ = [
    "IDENTIFIER_PATTERN",
    "LABEL_KINDS",
    "MEMBERSHIP_PARAMETER_COUNTS",
    "STRATEGY_NAME_PATTERN",
    "TIMEFRAME_PATTERN",
    "ArchitectureSpec",
    "ContextDataSpec",
    "ContextLabelsSpec",
    "CostModelSpec",
    "DataSplitSpec",
    "DecisionsSpec",
    "EarlyStoppingSpec",
    "FeaturesSpec",
    "ForwardReturnLabelsSpec",
    "FreeForm",
    "FuzzySetSpec",
    "IndicatorSpec",
    "InputTransformSpec",
    "LabelsSpec",
    "MembershipSpec",
    "MembershipType",
    "ModelSpec",
    "ModelTrainingSpec",
    "NNInputSpec",
    "Normalization",
    "ParameterValue",
    "PriceSource",
    "RegimeLabelsSpec",
    "SourceColumn",
    "StrategySpec",
    "SymbolsSpec",
    "TimeframesSpec",
    "TrainingDataSpec",
    "TrainingSpec",
    "TripleBarrierLabelsSpec",
    "ZigzagLabelsSpec",
    "model_name",
]

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""Indicator ids and safe model directory names (matched in full)."""

STRATEGY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""Strategy names: an identifier that may also hold dots (``v15_rsi_zigzag_1.5``)."""

MembershipType = Literal["triangular", "trapezoidal", "gaussian", "sigmoid"]
PriceSource = Literal["open", "high", "low", "close"]
SourceColumn = Literal["open", "high", "low", "close", "volume"]
"""The bar column an indicator that reads a ``source`` is computed on."""

MEMBERSHIP_PARAMETER_COUNTS: dict[str, int] = {
    "triangular": 3,
    "trapezoidal": 4,
    "gaussian": 2,
    "sigmoid": 2,
}
"""How many ``parameters`` each membership ``type`` takes."""

Identifier = Annotated[
    str,
    Meta(
        pattern=f"^{IDENTIFIER_PATTERN.pattern}$",
        description="letters, digits, '_' and '-', starting with a letter or digit",
    ),
]
StrategyName = Annotated[
    str,
    Meta(
        pattern=f"^{STRATEGY_NAME_PATTERN.pattern}$",
        description="letters, digits, '.', '_' and '-', starting with a letter or digit",
    ),
]
"""A strategy's ``name``."""

ParameterValue = float | bool | str
"""An indicator parameter: a number, a flag or one of some words."""

Normalization = Literal["minmax", "zscore", "none"]
"""How a raw indicator input is scaled, fitted on the training split only."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def model_name(name: str) -> str:
    """A safe model directory name for a strategy name: letters, digits, ``_`` and ``-``.

    Every other character (dots included) becomes ``_``; a name left without a leading letter
    or digit gets ``strategy`` in front. Names that differ only in such characters
    (``a.1`` and ``a_1``) give the same directory name.

    Example:
        >>> model_name("v15_rsi_zigzag_1.5"), model_name("my strategy"), model_name("..")
        ('v15_rsi_zigzag_1_5', 'my_strategy', 'strategy_')
    """
    safe = _UNSAFE.sub("_", name)
    return safe if IDENTIFIER_PATTERN.fullmatch(safe) else f"strategy{safe}"


# -- the v3 sections -----------------------------------------------------------------------------


class IndicatorSpec(_Spec, frozen=True, kw_only=True):
    """``indicators.<id>``: one indicator the strategy computes, under the id others name it by.

    Attributes:
        type: the indicator's catalog name (canonical, whatever spelling the file used).
        params: every parameter the indicator takes, defaults filled in.
        source: the bar column for indicators that read one (``close`` unless the file says).
        data_source: a ``context_data`` series to compute it on instead of the instrument's
            bars.
    """

    type: str
    params: dict[str, ParameterValue] = msgspec.field(default_factory=dict)
    source: SourceColumn = "close"
    data_source: str | None = None


class MembershipSpec(_Spec, frozen=True, kw_only=True):
    """One membership function of a fuzzy set: ``{type, parameters}``.

    ``triangular [a, b, c]`` and ``trapezoidal [a, b, c, d]`` keep a flat shoulder where a side
    has no width (``a == b``, ``c == d``); ``gaussian [mean, sigma]``; ``sigmoid [center,
    slope]`` is 1 / (1 + exp(−slope·(x − center))).
    """

    type: MembershipType
    parameters: Annotated[list[float], Meta(description="a list of numbers, e.g. [0, 20, 35]")]


class InputTransformSpec(_Spec, frozen=True, kw_only=True):
    """What a fuzzy set sees of its indicator: the value itself (``identity``) or a price
    divided by it (``price_ratio``: ``reference / value``, around 1.0 at a moving average)."""

    type: Literal["identity", "price_ratio"] = "identity"
    reference: PriceSource = "close"


class FuzzySetSpec(_Spec, frozen=True, kw_only=True):
    """``fuzzy_sets.<id>``: membership functions over one indicator output.

    Attributes:
        indicator: ``<indicator id>`` (its primary output) or ``<indicator id>.<output>``.
        memberships: name → membership function, in file order (the feature columns' order).
        input_transform: what the memberships are applied to (``None``: the value itself).
    """

    indicator: str
    memberships: dict[str, MembershipSpec]
    input_transform: InputTransformSpec | None = None

    @property
    def indicator_id(self) -> str:
        """The indicator's id (before any ``.output``)."""
        return self.indicator.partition(".")[0]

    @property
    def output(self) -> str | None:
        """The output named after the dot, or ``None`` for the primary output."""
        return self.indicator.partition(".")[2] or None


class NNInputSpec(_Spec, frozen=True, kw_only=True):
    """One entry of ``nn_inputs``: a fuzzy set's memberships, or an indicator's raw value.

    Attributes:
        fuzzy_set: the fuzzy set whose memberships are inputs (one column per membership).
        raw_indicator: ``<id>`` or ``<id>.<output>`` whose value is an input (one column).
        timeframes: ``all`` (the run's timeframes, in their order) or a list of them.
        normalization: for a raw input, how it is scaled (fitted on the training split only,
            stored with the model and reused by inference); ``None`` is ``none``.
    """

    fuzzy_set: str | None = None
    raw_indicator: str | None = None
    timeframes: Literal["all"] | list[Timeframe] = "all"
    normalization: Normalization | None = None

    @property
    def reference(self) -> str:
        """The fuzzy set id or the raw indicator reference."""
        return self.fuzzy_set or self.raw_indicator or ""


class StrategySpec(_Spec, frozen=True, kw_only=True):
    """A whole strategy, in the one internal model every file layout becomes.

    Attributes:
        name: the strategy's name (any identifier, dots allowed; :func:`model_name` gives the
            directory name its models are stored under).
        indicators: id → indicator, in file order.
        fuzzy_sets: id → fuzzy set, in file order.
        nn_inputs: the network's inputs, in order (the feature columns follow it).
        model: the network and its training settings, hyper-parameters resolved
            (``training.*`` first, then ``model.training.*``, then defaults).
        training: labels, the chronological split and the loss.
        training_data: default symbols, timeframes and training window.
        context_data: external series indicators may be computed on (``data_source``).
        decisions: what the network predicts (classification or regression).
        hyperparameter_sources: where each of :attr:`ModelTrainingSpec.HYPERPARAMETERS` came
            from: ``training.epochs``, ``model.training.epochs``, ``default`` or ``override``.
        ignored: keys KTRDR did not use either, by dotted path in this model's layout
            (``scope``, ``training.walk_forward``, ``indicators.rsi.timeframe`` …); kept with
            the model and written back by :func:`~ktrdr_lib.strategy.config.strategy_to_config`.
        notices: where this strategy trains differently from what KTRDR would have done with
            the file, or where KTRDR would have dropped something silently.
        layout: the layout the file was written in (``legacy``, ``v2`` or ``v3``).
        source: the file the strategy was read from (``None`` for text).
    """

    name: StrategyName
    indicators: dict[str, IndicatorSpec]
    fuzzy_sets: dict[str, FuzzySetSpec]
    nn_inputs: list[NNInputSpec]
    model: ModelSpec
    training: TrainingSpec
    description: str | None = None
    version: str | None = None
    hypothesis: str | None = None
    training_data: TrainingDataSpec | None = None
    context_data: list[ContextDataSpec] = msgspec.field(default_factory=list)
    decisions: DecisionsSpec = msgspec.field(default_factory=DecisionsSpec)
    hyperparameter_sources: dict[str, str] = msgspec.field(default_factory=dict)
    ignored: dict[str, Any] = msgspec.field(default_factory=dict)
    notices: list[StrategyNotice] = msgspec.field(default_factory=list)
    layout: StrategyLayout = "v3"
    source: str | None = None

    def default_symbols(self) -> list[str]:
        """Symbols named by ``training_data`` (empty when it names none)."""
        if self.training_data is None or self.training_data.symbols is None:
            return []
        return self.training_data.symbols.resolved()

    def default_timeframes(self) -> list[str]:
        """Timeframes named by ``training_data`` (empty when it names none)."""
        if self.training_data is None or self.training_data.timeframes is None:
            return []
        return self.training_data.timeframes.resolved()
