"""The sections every strategy layout shares: ``training_data``, ``model``, ``training``, …

These are the internal model's sections (see :mod:`ktrdr_lib.strategy.spec`); a legacy, v2 or
v3 file is read into them, whichever layout it was written in. Each Struct is the one
declaration of what its fields allow — bounds as ``Annotated[int, Meta(ge=1)]``, choices as
``Literal[...]``, text formats as ``Meta(pattern=...)`` whose ``description`` gives the words an
error uses — and the loader reads them through ``msgspec.inspect``. The label kinds live in
:mod:`ktrdr_lib.strategy.label_kinds`.

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

from ktrdr_lib.strategy.label_kinds import LabelsSpec, ZigzagLabelsSpec

__all__ = [
    "DATE_PATTERN",
    "TIMEFRAME_PATTERN",
    "Activation",
    "AnalyticsSpec",
    "ArchitectureSpec",
    "ContextDataSpec",
    "CostModelSpec",
    "DataSplitSpec",
    "DecisionsSpec",
    "EarlyStoppingSpec",
    "FeaturesSpec",
    "FreeForm",
    "Loss",
    "ModelSpec",
    "ModelTrainingSpec",
    "ModelType",
    "Optimizer",
    "OutputFormat",
    "SymbolsSpec",
    "TimeframesSpec",
    "TrainingDataSpec",
    "TrainingSpec",
]

TIMEFRAME_PATTERN = re.compile(r"[1-9][0-9]*[mhdw]")
"""Timeframes such as ``5m``, ``1h``, ``1d``, ``1w`` (matched in full)."""

DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
"""Dates such as ``2020-01-01`` (matched in full)."""

_SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu"]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
ModelType = Literal["mlp", "lstm", "gru"]
OutputFormat = Literal["classification", "regression"]
Loss = Literal["cross_entropy", "focal", "huber", "mse"]

WholeAtLeast0 = Annotated[int, Meta(ge=0)]
WholeAtLeast1 = Annotated[int, Meta(ge=1)]
AtLeast0 = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]

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
Date = Annotated[
    str, Meta(pattern=f"^{DATE_PATTERN.pattern}$", description="a date like 2020-01-01")
]
FreeForm = Annotated[
    dict[str, Any],
    Meta(description="a mapping (it is kept with the model, not used for training)"),
]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every strategy section: immutable, keyword-only, unknown keys rejected."""


# -- training_data ------------------------------------------------------------------------------


class SymbolsSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.symbols``: one symbol (``single``) or a list (``multi_symbol``).

    KTRDR's training read ``list`` first and ``symbol`` second, whatever ``mode`` said; the
    loader keeps that rule and writes the result back in this canonical form (one symbol:
    ``single`` with ``symbol``; several: ``multi_symbol`` with ``list``).
    """

    mode: Literal["single", "multi_symbol"] = "single"
    symbol: Symbol | None = None
    symbol_list: Annotated[list[Symbol], Meta(min_length=1, examples=[["AAPL", "MSFT"]])] | None = (
        msgspec.field(default=None, name="list")
    )

    def resolved(self) -> list[str]:
        """The symbols this section names, in order (``list`` before ``symbol``)."""
        if self.symbol_list:
            return list(self.symbol_list)
        return [self.symbol] if self.symbol else []


class TimeframesSpec(_Spec, frozen=True, kw_only=True):
    """``training_data.timeframes``: one timeframe or several with a base (``list`` first)."""

    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: Timeframe | None = None
    timeframe_list: (
        Annotated[list[Timeframe], Meta(min_length=1, examples=[["1h", "1d"]])] | None
    ) = msgspec.field(default=None, name="list")
    base_timeframe: Timeframe | None = None

    def resolved(self) -> list[str]:
        """The timeframes this section names, in order (``list`` before ``timeframe``)."""
        if self.timeframe_list:
            return list(self.timeframe_list)
        return [self.timeframe] if self.timeframe else []


class TrainingDataSpec(_Spec, frozen=True, kw_only=True):
    """``training_data``: default symbols, timeframes and training window (a request may
    override each).

    Attributes:
        start_date: first day of the default training window (``date_range.start`` in files
            that write a range).
        end_date: last day of the default training window.
    """

    symbols: SymbolsSpec | None = None
    timeframes: TimeframesSpec | None = None
    history_required: WholeAtLeast0 = 200
    start_date: Date | None = None
    end_date: Date | None = None


class ContextDataSpec(_Spec, frozen=True, kw_only=True):
    """One ``context_data`` entry: an external series aligned onto the instrument's bars.

    An indicator with ``data_source: <id>`` is computed on the series instead of the bars; the
    ids an entry provides are :meth:`source_ids`.
    """

    provider: Annotated[str, Meta(min_length=1)]
    alignment: Literal["forward_fill"] = "forward_fill"
    symbol: str | None = None
    timeframe: Timeframe | None = None
    instrument_type: str | None = None
    series: str | list[str] | None = None
    frequency: str | None = None
    report: str | None = None
    currencies: str | list[str] | None = None
    min_impact: str | None = None
    broker: str | None = None

    def source_ids(self) -> list[str] | None:
        """The ids indicators name this entry's series by, or ``None`` when the provider's
        naming is not known here (any ``data_source`` is then accepted for it)."""
        provider = self.provider.lower()
        if provider == "ib":
            return [self.symbol] if self.symbol else []
        if provider == "fred":
            series = [self.series] if isinstance(self.series, str) else list(self.series or [])
            ids = [f"fred_{name}" for name in series]
            if len(series) >= 2:
                ids.append(f"yield_spread_{series[0]}_{series[1]}")
            return ids
        return None


# -- model ---------------------------------------------------------------------------------------


class ArchitectureSpec(_Spec, frozen=True, kw_only=True):
    """``model.architecture``: MLP layers, or the LSTM/GRU window and cell sizes.

    Attributes:
        hidden_layers: the MLP's layer sizes.
        output_activation: kept so that models saved before still load; the output layer
            follows the labels (class scores, or a value for regression) whatever it says.
        sequence_length: rows per input window of an LSTM or GRU (required for those).
        hidden_size: the LSTM/GRU hidden state size.
        num_layers: stacked LSTM/GRU layers.
    """

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
    sequence_length: WholeAtLeast1 | None = None
    hidden_size: WholeAtLeast1 = 64
    num_layers: WholeAtLeast1 = 2


class FeaturesSpec(_Spec, frozen=True, kw_only=True):
    """``model.features``."""

    include_price_context: bool = False
    lookback_periods: WholeAtLeast0 = 0
    scale_features: bool = True


class EarlyStoppingSpec(_Spec, frozen=True, kw_only=True):
    """``model.training.early_stopping`` (or ``training.early_stopping``)."""

    patience: WholeAtLeast1 = 10
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: AtLeast0 = 0.0001


class AnalyticsSpec(_Spec, frozen=True, kw_only=True):
    """``model.training.analytics``: record detailed per-epoch analytics (gradient norms,
    parameter statistics, per-class validation figures, confidence) with the model.

    KTRDR's other keys here (``export_csv``, ``export_json``, ``export_alerts``) are kept
    with a notice: both files are always written.
    """

    enabled: bool = False


class ModelTrainingSpec(_Spec, frozen=True, kw_only=True):
    """The optimiser and loop settings, resolved: ``training.*`` first, then
    ``model.training.*``, then these defaults (where each came from is
    :attr:`~ktrdr_lib.strategy.spec.StrategySpec.hyperparameter_sources`).

    ``analytics`` is read from ``model.training.analytics`` only (it is no hyper-parameter).
    """

    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        "epochs",
        "learning_rate",
        "batch_size",
        "optimizer",
        "weight_decay",
        "early_stopping",
    )

    learning_rate: Positive = 0.001
    batch_size: WholeAtLeast1 = 32
    epochs: WholeAtLeast1 = 100
    optimizer: Optimizer = "adam"
    weight_decay: AtLeast0 = 0.0001
    early_stopping: EarlyStoppingSpec | None = None
    analytics: AnalyticsSpec = msgspec.field(default_factory=AnalyticsSpec)


class ModelSpec(_Spec, frozen=True, kw_only=True):
    """``model``: the network and how it is trained."""

    type: ModelType = "mlp"
    architecture: ArchitectureSpec = msgspec.field(default_factory=ArchitectureSpec)
    features: FeaturesSpec = msgspec.field(default_factory=FeaturesSpec)
    training: ModelTrainingSpec = msgspec.field(default_factory=ModelTrainingSpec)


# -- training ------------------------------------------------------------------------------------


class DataSplitSpec(_Spec, frozen=True, kw_only=True):
    """``training.data_split``: chronological fractions summing to 1.

    A file may leave ``test`` out: it is the remainder. The sum is a rule across the three
    fields, so the loader checks it (within :attr:`SUM_TOLERANCE`).
    """

    SUM_TOLERANCE: ClassVar[float] = 1e-6

    train: Positive = 0.7
    validation: Positive = 0.15
    test: Positive = 0.15


class TrainingSpec(_Spec, frozen=True, kw_only=True):
    """``training``: labels, the split and the loss.

    Attributes:
        loss: ``cross_entropy`` (default) or ``focal`` for classification, ``huber`` (default)
            or ``mse`` for regression.
        focal_gamma: the focal loss's focusing parameter.
        huber_delta: where the Huber loss turns from quadratic to linear.
        balanced_sampling: weight the classification loss by inverse class frequency (on the
            training split, scaled to mean 1); the focal loss is always weighted so.
    """

    method: Literal["supervised"] = "supervised"
    labels: LabelsSpec = msgspec.field(default_factory=ZigzagLabelsSpec)
    data_split: DataSplitSpec = msgspec.field(default_factory=DataSplitSpec)
    loss: Loss = "cross_entropy"
    focal_gamma: Positive = 2.0
    huber_delta: Positive = 0.01
    balanced_sampling: bool = False


# -- decisions -----------------------------------------------------------------------------------


class CostModelSpec(_Spec, frozen=True, kw_only=True):
    """``decisions.cost_model``: trading costs a regression model's signals must beat."""

    round_trip_cost: Positive
    min_edge_multiplier: Positive


class DecisionsSpec(_Spec, frozen=True, kw_only=True):
    """``decisions``: what the network predicts (the other keys are kept, not used here)."""

    output_format: OutputFormat = "classification"
    cost_model: CostModelSpec | None = None
