"""What this version can train, checked before an operation exists.

Strategy files load with every construct KTRDR accepted; a few of those constructs (label kinds
other than ZigZag, LSTM and GRU networks, regression outputs) load and migrate but do not train
here yet, and a ZigZag indicator as a model input would leak future prices into it.
:func:`refuse_untrainable` says so at once, naming the construct and the field, so no
operation is stored for a run that could only fail.
"""

from __future__ import annotations

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.strategy.label_kinds import (
    ContextLabelsSpec,
    ForwardReturnLabelsSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["TRAINABLE_LABELS", "refuse_untrainable"]

TRAINABLE_LABELS = (
    ZigzagLabelsSpec,
    TripleBarrierLabelsSpec,
    ContextLabelsSpec,
    ForwardReturnLabelsSpec,
)
"""The label kinds this version trains: classification into BUY / HOLD / SELL, and the
forward-return regression."""


def refuse_untrainable(spec: StrategySpec) -> None:
    """Raise :class:`ConfigError` when the strategy asks for something this version cannot
    train; the message names the field and what trains today."""
    where = f"strategy {spec.name!r}"
    labels = spec.training.labels
    if not isinstance(labels, TRAINABLE_LABELS):
        source = labels.__struct_config__.tag
        raise ConfigError(
            f"{where}: training.labels.source {source!r} loads, but this version trains "
            "zigzag, triple_barrier, context and forward_return labels only; use one of those "
            "to train it here"
        )
    for indicator_id in _input_indicators(spec):
        if spec.indicators[indicator_id].type == "zigzag":
            raise ConfigError(
                f"{where}: indicator {indicator_id!r} (zigzag) is a model input, but a ZigZag "
                "pivot is only known once later prices have confirmed it: as an input it shows "
                "the model the future (KTRDR fed it so; the model then looks better than it "
                "can trade). Remove it from the inputs; ZigZag is what the labels are made of "
                "(training.labels.source: zigzag)"
            )


def _input_indicators(spec: StrategySpec) -> list[str]:
    """The indicator ids the model's inputs read, each once."""
    ids: dict[str, None] = {}
    for item in spec.nn_inputs:
        if item.fuzzy_set is not None:
            ids.setdefault(spec.fuzzy_sets[item.fuzzy_set].indicator_id, None)
        if item.raw_indicator is not None:
            ids.setdefault(item.raw_indicator.partition(".")[0], None)
    return list(ids)
