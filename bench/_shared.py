"""What several benchmarks share: the synthetic-data strategy and a percentile.

Benchmarks run as scripts (``python bench/NAME.py``), so this module is importable as
``_shared`` from them.
"""

from __future__ import annotations

__all__ = ["percentile", "small_strategy_yaml"]


def small_strategy_yaml(
    name: str,
    *,
    description: str,
    epochs: int,
    hidden_layers: tuple[int, ...] = (50, 25),
    dropout: float = 0.2,
    learning_rate: float = 0.001,
    batch_size: int = 64,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> str:
    """A v2 strategy on the synthetic ``SYNTH`` 1h bars: RSI and SMA fuzzy sets into an MLP."""
    layers = ", ".join(str(width) for width in hidden_layers)
    train, validation, test = split
    return f"""
name: {name}
description: {description}
training_data:
  symbols: {{mode: single, symbol: SYNTH}}
  timeframes: {{mode: single, timeframe: 1h}}
  history_required: 30
indicators:
  - {{name: rsi, period: 14}}
  - {{name: sma, period: 20}}
fuzzy_sets:
  rsi:
    oversold: {{type: triangular, parameters: [0, 20, 40]}}
    neutral: {{type: trapezoidal, parameters: [30, 45, 55, 70]}}
    overbought: {{type: triangular, parameters: [60, 80, 100]}}
  sma:
    below: {{type: gaussian, parameters: [0.97, 0.02]}}
    near: {{type: gaussian, parameters: [1.0, 0.01]}}
    above: {{type: gaussian, parameters: [1.03, 0.02]}}
model:
  type: mlp
  architecture: {{hidden_layers: [{layers}], activation: relu, dropout: {dropout}}}
  features: {{lookback_periods: 2, scale_features: true}}
  training:
    {{learning_rate: {learning_rate}, batch_size: {batch_size}, epochs: {epochs}, optimizer: adam}}
training:
  method: supervised
  labels: {{source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}}
  data_split: {{train: {train}, validation: {validation}, test: {test}}}
"""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between order statistics; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
