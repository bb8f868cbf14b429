"""The label kinds a strategy's ``training.labels`` may ask for, one Struct each.

``labels.source`` (or ``method``, a synonym some files use) picks the kind; the Structs form a
msgspec tagged union on that key, so ``msgspec.to_builtins`` writes it back. The defaults are
KTRDR's (H3): ZigZag 0.02 / 10, triple barrier 2.0 / 1.5 / 50 bars, forward return over 20
bars, context over 5 bars at ±0.5 %, and the regime labeller's ATR multiples.

Example:
    >>> import msgspec
    >>> msgspec.convert({"source": "forward_return", "horizon": 5}, LabelsSpec)
    ForwardReturnLabelsSpec(horizon=5)
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "LABEL_KINDS",
    "ContextLabelsSpec",
    "ForwardReturnLabelsSpec",
    "LabelsSpec",
    "RegimeLabelsSpec",
    "TripleBarrierLabelsSpec",
    "ZigzagLabelsSpec",
]

WholeAtLeast1 = Annotated[int, Meta(ge=1)]
Positive = Annotated[float, Meta(gt=0)]


class _Labels(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="source"
):
    """Base of the label kinds: tagged by ``source``."""


class ZigzagLabelsSpec(_Labels, frozen=True, kw_only=True, tag="zigzag"):
    """Segment labels between ZigZag pivots of at least ``zigzag_threshold`` (a fraction).

    ``label_lookahead`` is kept as written; KTRDR read it but its training never used it.
    """

    zigzag_threshold: Annotated[float, Meta(gt=0, lt=1)] = 0.02
    label_lookahead: WholeAtLeast1 = 10


class TripleBarrierLabelsSpec(_Labels, frozen=True, kw_only=True, tag="triple_barrier"):
    """Take-profit / stop-loss / time barriers scaled by volatility.

    Attributes:
        pt_multiplier: the upper barrier in volatility units.
        sl_multiplier: the lower barrier in volatility units.
        max_holding_period: bars before the time barrier.
        vol_span: the volatility estimate's span.
        vol_method: ``atr`` (EWM of (H−L)/C) or ``close`` (EWM std of log returns).
        compute_weights: uniqueness weights for sampling.
        cusum_threshold: keep only CUSUM event bars (``None``: every bar).
        cusum_multiplier: the CUSUM threshold in volatility units when it is derived.
    """

    pt_multiplier: Positive = 2.0
    sl_multiplier: Positive = 1.5
    max_holding_period: WholeAtLeast1 = 50
    vol_span: WholeAtLeast1 = 50
    vol_method: Literal["atr", "close"] = "atr"
    compute_weights: bool = False
    cusum_threshold: Positive | None = None
    cusum_multiplier: Positive = 0.5


class ForwardReturnLabelsSpec(_Labels, frozen=True, kw_only=True, tag="forward_return"):
    """A regression target: the return ``horizon`` bars ahead."""

    horizon: WholeAtLeast1 = 20


class ContextLabelsSpec(_Labels, frozen=True, kw_only=True, tag="context"):
    """Bullish / bearish / neutral by the forward return over ``horizon`` bars."""

    horizon: WholeAtLeast1 = 5
    bullish_threshold: float = 0.005
    bearish_threshold: float = -0.005


class RegimeLabelsSpec(_Labels, frozen=True, kw_only=True, tag="regime"):
    """Trending up / trending down / ranging / volatile from two ATR-scaled ZigZags and a
    volatility overlay."""

    macro_atr_mult: Positive = 3.0
    micro_atr_mult: Positive = 1.0
    atr_period: WholeAtLeast1 = 14
    vol_lookback: WholeAtLeast1 = 120
    vol_crisis_threshold: Positive = 2.0
    progression_tolerance: Annotated[float, Meta(ge=0)] = 0.5


LabelsSpec = (
    ZigzagLabelsSpec
    | TripleBarrierLabelsSpec
    | ForwardReturnLabelsSpec
    | ContextLabelsSpec
    | RegimeLabelsSpec
)
"""``training.labels``: one of the label kinds, tagged by ``source``."""

LABEL_KINDS: dict[str, type[_Labels]] = {
    "zigzag": ZigzagLabelsSpec,
    "triple_barrier": TripleBarrierLabelsSpec,
    "forward_return": ForwardReturnLabelsSpec,
    "context": ContextLabelsSpec,
    "regime": RegimeLabelsSpec,
}
"""``source`` → the label kind's Struct."""
