"""What loads but must not train, checked before an operation exists.

Every construct a strategy file may hold trains here, with one exception: a ZigZag indicator
as a model input, whose pivots are known only once later prices confirm them, so it would show
the model the future. :func:`refuse_untrainable` says so at once, naming the indicator, so no
operation is stored for a run that must not happen.
"""

from __future__ import annotations

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["refuse_untrainable"]


def refuse_untrainable(spec: StrategySpec) -> None:
    """Raise :class:`ConfigError` when the strategy asks for something that must not train;
    the message names it and what to do."""
    where = f"strategy {spec.name!r}"
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
