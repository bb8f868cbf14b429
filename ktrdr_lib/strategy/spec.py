"""StrategySpec: the validated, typed form of a KTRDR v2 strategy file.

These Structs mirror the YAML layout of ``STRATEGY-V2`` section for section. They are built
only by :func:`ktrdr_lib.strategy.loader.load_strategy`, which checks the raw mapping first and
reports every problem with its field path; ``msgspec.to_builtins(spec)`` gives the
configuration back (it is what travels with a saved model). Sections training does not use
(``deployment``, ``decisions``) are kept verbatim.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
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

Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu"]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
MembershipType = Literal["triangular", "trapezoidal", "gaussian"]
PriceSource = Literal["open", "high", "low", "close"]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every strategy section: immutable, keyword-only, unknown keys rejected."""


class SymbolsSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.symbols``: one symbol (``single``) or a list (``multi_symbol``)."""

    mode: Literal["single", "multi_symbol"] = "single"
    symbol: str | None = None
    symbol_list: list[str] | None = msgspec.field(default=None, name="list")

    def resolved(self) -> list[str]:
        """The symbols this section names, in order."""
        if self.mode == "single":
            return [self.symbol] if self.symbol else []
        return list(self.symbol_list or [])


class TimeframesSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.timeframes``: one timeframe or several with a base."""

    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: str | None = None
    timeframe_list: list[str] | None = msgspec.field(default=None, name="list")
    base_timeframe: str | None = None

    def resolved(self) -> list[str]:
        """The timeframes this section names, in order."""
        if self.mode == "single":
            return [self.timeframe] if self.timeframe else []
        return list(self.timeframe_list or [])


class TrainingDataSpec(_Spec, frozen=True, kw_only=True):
    """``training_data``: default symbols and timeframes (a request may override them)."""

    symbols: SymbolsSpec | None = None
    timeframes: TimeframesSpec | None = None
    history_required: int = 200


class IndicatorSpec(_Spec, frozen=True, kw_only=True):
    """One item of ``indicators``.

    The YAML puts an indicator's parameters beside ``name``; the loader gathers them into
    ``params`` (defaults from the indicator catalog filled in).
    """

    name: str
    feature_id: str
    source: PriceSource = "close"
    params: dict[str, float] = msgspec.field(default_factory=dict)

    def int_param(self, key: str) -> int:
        """A period-like parameter as an int."""
        return int(self.params[key])


class FuzzySetSpec(_Spec, frozen=True, kw_only=True):
    """One membership set: ``{type, parameters}``."""

    type: MembershipType
    parameters: list[float]


class ArchitectureSpec(_Spec, frozen=True, kw_only=True):
    """``model.architecture``."""

    hidden_layers: list[int] = msgspec.field(default_factory=lambda: [50, 25])
    activation: Activation = "relu"
    output_activation: Literal["softmax"] = "softmax"
    dropout: float = 0.2


class FeaturesSpec(_Spec, frozen=True, kw_only=True):
    """``model.features``."""

    include_price_context: bool = False
    lookback_periods: int = 0
    scale_features: bool = True


class EarlyStoppingSpec(_Spec, frozen=True, kw_only=True):
    """``model.training.early_stopping``."""

    patience: int = 10
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = 0.0001


class ModelTrainingSpec(_Spec, frozen=True, kw_only=True):
    """``model.training``: optimiser and loop settings."""

    learning_rate: float = 0.001
    batch_size: int = 32
    epochs: int = 100
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
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
    zigzag_threshold: float = 0.03
    label_lookahead: int = 20


class DataSplitSpec(_Spec, frozen=True, kw_only=True):
    """``training.data_split``: chronological fractions summing to 1."""

    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15


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

    name: str
    indicators: list[IndicatorSpec]
    fuzzy_sets: dict[str, dict[str, FuzzySetSpec]]
    model: ModelSpec
    training: TrainingSpec
    description: str | None = None
    version: str | None = None
    hypothesis: str | None = None
    scope: Literal["universal", "symbol_specific"] | None = None
    training_data: TrainingDataSpec | None = None
    deployment: dict[str, Any] | None = None
    decisions: dict[str, Any] | None = None
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
