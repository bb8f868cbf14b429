"""StrategySpec: the validated, typed form of a KTRDR v2 strategy file.

These Structs mirror the YAML layout of ``STRATEGY-V2`` section for section, and they are the
one declaration of what each field allows: bounds as ``Annotated[int, Meta(ge=1)]``, choices as
``Literal[...]``, text formats as ``Meta(pattern=...)``, and the words an error uses for a
format as the Meta's ``description`` (a list's ``examples`` give its "e.g."). The loader
(:mod:`ktrdr_lib.strategy.loader`) reads these through ``msgspec.inspect`` to check the raw YAML
and report every problem with its field path and line, so a bound changed here is checked and
explained everywhere. Rules that tie several fields together (modes, sums, orderings,
references between sections) are code in the loader.

The Structs are built only by :func:`ktrdr_lib.strategy.loader.load_strategy`;
``msgspec.to_builtins(spec)`` gives the configuration back (it is what travels with a saved
model). Sections training does not use (``deployment``, ``decisions``) are kept verbatim.

Example:
    >>> import msgspec
    >>> msgspec.convert({"epochs": 0}, ModelTrainingSpec)
    Traceback (most recent call last):
    ...
    msgspec.ValidationError: Expected `int` >= 1 - at `$.epochs`
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "IDENTIFIER_PATTERN",
    "MEMBERSHIP_PARAMETER_COUNTS",
    "TIMEFRAME_PATTERN",
    "ArchitectureSpec",
    "DataSplitSpec",
    "EarlyStoppingSpec",
    "FeaturesSpec",
    "FuzzySetSpec",
    "IndicatorSpec",
    "LabelsSpec",
    "ModelSpec",
    "ModelTrainingSpec",
    "StrategySpec",
    "SymbolsSpec",
    "TimeframesSpec",
    "TrainingDataSpec",
    "TrainingSpec",
]

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""Strategy names and feature ids (matched in full)."""

TIMEFRAME_PATTERN = re.compile(r"[1-9][0-9]*[mhdw]")
"""Timeframes such as ``5m``, ``1h``, ``1d``, ``1w`` (matched in full)."""

_SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu"]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
MembershipType = Literal["triangular", "trapezoidal", "gaussian"]
PriceSource = Literal["open", "high", "low", "close"]

MEMBERSHIP_PARAMETER_COUNTS: dict[str, int] = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}
"""How many ``parameters`` each membership ``type`` takes."""

# Whole numbers and numbers with their bounds; a YAML `true` is never a number.
WholeAtLeast0 = Annotated[int, Meta(ge=0)]
WholeAtLeast1 = Annotated[int, Meta(ge=1)]
AtLeast0 = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]

Identifier = Annotated[
    str,
    Meta(
        pattern=f"^{IDENTIFIER_PATTERN.pattern}$",
        description="letters, digits, '_' and '-', starting with a letter or digit",
    ),
]
Symbol = Annotated[
    str,
    Meta(
        pattern=f"^{_SYMBOL_PATTERN.pattern}$",
        description="a symbol of letters, digits, '.', '_' and '-' (e.g. AAPL); quote numbers",
    ),
]
Timeframe = Annotated[
    str,
    Meta(
        pattern=f"^{TIMEFRAME_PATTERN.pattern}$",
        description="a timeframe like 5m, 1h, 4h, 1d or 1w",
    ),
]
FreeForm = Annotated[
    dict[str, Any],
    Meta(description="a mapping (it is kept with the model, not used for training)"),
]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every strategy section: immutable, keyword-only, unknown keys rejected."""


class SymbolsSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.symbols``: one symbol (``single``) or a list (``multi_symbol``)."""

    mode: Literal["single", "multi_symbol"] = "single"
    symbol: Symbol | None = None
    symbol_list: Annotated[list[Symbol], Meta(min_length=1, examples=[["AAPL", "MSFT"]])] | None = (
        msgspec.field(default=None, name="list")
    )

    def resolved(self) -> list[str]:
        """The symbols this section names, in order."""
        if self.mode == "single":
            return [self.symbol] if self.symbol else []
        return list(self.symbol_list or [])


class TimeframesSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.timeframes``: one timeframe or several with a base."""

    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: Timeframe | None = None
    timeframe_list: (
        Annotated[list[Timeframe], Meta(min_length=1, examples=[["1h", "1d"]])] | None
    ) = msgspec.field(default=None, name="list")
    base_timeframe: Timeframe | None = None

    def resolved(self) -> list[str]:
        """The timeframes this section names, in order."""
        if self.mode == "single":
            return [self.timeframe] if self.timeframe else []
        return list(self.timeframe_list or [])


class TrainingDataSpec(_Spec, frozen=True, kw_only=True):
    """``training_data``: default symbols and timeframes (a request may override them)."""

    symbols: SymbolsSpec | None = None
    timeframes: TimeframesSpec | None = None
    history_required: WholeAtLeast0 = 200


class IndicatorSpec(_Spec, frozen=True, kw_only=True):
    """One item of ``indicators``.

    The YAML puts an indicator's parameters beside ``name``; the loader gathers them into
    ``params`` (defaults from the indicator catalog filled in).
    """

    name: str
    feature_id: Identifier
    source: PriceSource = "close"
    params: dict[str, float | bool | str] = msgspec.field(default_factory=dict)

    def int_param(self, key: str) -> int:
        """A period-like parameter as an int."""
        return int(self.params[key])


class FuzzySetSpec(_Spec, frozen=True, kw_only=True):
    """One membership set: ``{type, parameters}``."""

    type: MembershipType
    parameters: Annotated[list[float], Meta(description="a list of numbers, e.g. [0, 20, 35]")]


class ArchitectureSpec(_Spec, frozen=True, kw_only=True):
    """``model.architecture``."""

    hidden_layers: Annotated[
        list[WholeAtLeast1],
        Meta(
            min_length=1,
            description="a non-empty list of layer sizes (whole numbers ≥ 1), e.g. [64, 32]",
        ),
    ] = msgspec.field(default_factory=lambda: [50, 25])
    activation: Activation = "relu"
    output_activation: Literal["softmax"] = "softmax"
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.2


class FeaturesSpec(_Spec, frozen=True, kw_only=True):
    """``model.features``."""

    include_price_context: bool = False
    lookback_periods: WholeAtLeast0 = 0
    scale_features: bool = True


class EarlyStoppingSpec(_Spec, frozen=True, kw_only=True):
    """``model.training.early_stopping``."""

    patience: WholeAtLeast1 = 10
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: AtLeast0 = 0.0001


class ModelTrainingSpec(_Spec, frozen=True, kw_only=True):
    """``model.training``: optimiser and loop settings."""

    learning_rate: Positive = 0.001
    batch_size: WholeAtLeast1 = 32
    epochs: WholeAtLeast1 = 100
    optimizer: Optimizer = "adam"
    weight_decay: AtLeast0 = 0.0
    early_stopping: EarlyStoppingSpec | None = None


class ModelSpec(_Spec, frozen=True, kw_only=True):
    """``model``."""

    type: Literal["mlp"] = "mlp"
    architecture: ArchitectureSpec = msgspec.field(default_factory=ArchitectureSpec)
    features: FeaturesSpec = msgspec.field(default_factory=FeaturesSpec)
    training: ModelTrainingSpec = msgspec.field(default_factory=ModelTrainingSpec)


class LabelsSpec(_Spec, frozen=True, kw_only=True):
    """``training.labels``: ZigZag labelling."""

    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: Annotated[float, Meta(gt=0, lt=1)] = 0.03
    label_lookahead: WholeAtLeast1 = 20


class DataSplitSpec(_Spec, frozen=True, kw_only=True):
    """``training.data_split``: chronological fractions summing to 1.

    The sum is a rule across the three fields, so the loader checks it (within
    :attr:`SUM_TOLERANCE`); each fraction's own bound is declared here.
    """

    SUM_TOLERANCE: ClassVar[float] = 1e-6

    train: Positive = 0.7
    validation: Positive = 0.15
    test: Positive = 0.15


class TrainingSpec(_Spec, frozen=True, kw_only=True):
    """``training``."""

    method: Literal["supervised"] = "supervised"
    labels: LabelsSpec = msgspec.field(default_factory=LabelsSpec)
    data_split: DataSplitSpec = msgspec.field(default_factory=DataSplitSpec)


class StrategySpec(_Spec, frozen=True, kw_only=True):
    """A whole strategy.

    ``fuzzy_sets`` maps an indicator's ``feature_id`` to its named sets, in file order.
    ``source`` is the file the strategy was read from (``None`` for text).
    """

    name: Identifier
    indicators: list[IndicatorSpec]
    fuzzy_sets: dict[str, dict[str, FuzzySetSpec]]
    model: ModelSpec
    training: TrainingSpec
    description: str | None = None
    # Text; a YAML number is kept as written (`2.10` stays "2.10"), so the loader allows one.
    version: Annotated[str, Meta(description="text or a number, e.g. `version: '2.1'`")] | None = (
        None
    )
    hypothesis: str | None = None
    scope: Literal["universal", "symbol_specific"] | None = None
    training_data: TrainingDataSpec | None = None
    deployment: FreeForm | None = None
    decisions: FreeForm | None = None
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
