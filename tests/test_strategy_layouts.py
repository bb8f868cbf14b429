"""Legacy, v2 and v3 strategy files become the one internal model (KTRDR-STRATEGY-FORMATS 1, 4).

Each test strategy here is written for these tests; the notices are checked with the lines
they point at.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ktrdr_lib.schemas.strategies import StrategyNotice
from ktrdr_lib.strategy.loader import check_strategy, load_strategy
from ktrdr_lib.strategy.spec import (
    FuzzySetSpec,
    IndicatorSpec,
    InputTransformSpec,
    MembershipSpec,
    NNInputSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)

FIXTURES = Path(__file__).parent / "fixtures" / "strategies"


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _notice(notices: list[StrategyNotice], path: str) -> StrategyNotice:
    found = [notice for notice in notices if notice.path == path]
    assert found, f"no notice at {path!r}; got {[n.render() for n in notices]}"
    return found[0]


LEGACY = _yaml(
    """
    name: legacy_two_symbols
    data:
      symbols: [AAPL, MSFT]
      timeframes: [1h, 1d]
      history_required: 150
    indicators:
      - name: RSI
        period: 9
      - name: ema
        period: 30
    fuzzy_sets:
      RSI:
        low: {type: triangular, parameters: [0, 20, 40]}
      ema:
        near: {type: gaussian, parameters: [1.0, 0.02]}
    model:
      architecture: {hidden_layers: [8]}
    """
)

V2 = _yaml(
    """
    name: late_v2
    scope: symbol_group
    training_data:
      symbols: {mode: single, list: [EURUSD, GBPUSD]}
      timeframes: {mode: single_timeframe, list: [4h]}
    indicators:
      - {name: MACD, feature_id: macd_std}
      - {name: sma, feature_id: sma_50, period: 50}
    fuzzy_sets:
      macd_std:
        negative: [-2, -1, 0]
      sma_50:
        near: {type: gaussian, parameters: [1.0, 0.02]}
    model:
      training: {epochs: 12}
    training:
      labels: {source: zigzag, zigzag_threshold: 0.04, label_lookahead: 10}
    """
)

V3 = _yaml(
    """
    name: v3_small
    training_data:
      symbols: {mode: single, symbol: SPY}
      timeframes: {mode: single, timeframe: 1d}
    indicators:
      trend: {type: adx, period: 10}
      fast: {type: sma, period: 10}
    fuzzy_sets:
      direction:
        indicator: trend.plus_di
        up: [20, 30, 50]
      level:
        indicator: fast
        input_transform: {type: price_ratio, reference: close}
        above: [1.0, 1.02, 1.05]
    nn_inputs:
      - {fuzzy_set: direction, timeframes: all}
      - {fuzzy_set: level, timeframes: [1d]}
      - {raw_indicator: trend.adx, timeframes: all, normalization: zscore}
    model:
      type: mlp
    decisions: {output_format: classification}
    training:
      epochs: 5
    """
)


# -- layout detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "layout"),
    [(LEGACY, "legacy"), (V2, "v2"), (V3, "v3")],
)
def test_the_layout_is_detected_as_ktrdr_did(text: str, layout: str) -> None:
    check = check_strategy(text)
    assert check.valid, [p.render() for p in check.problems]
    assert check.layout == layout
    assert load_strategy(text).layout == layout


def test_a_file_without_data_or_v2_sections_is_legacy() -> None:
    text = "name: bare\nindicators: [{name: rsi}]\nfuzzy_sets: {rsi: {low: [0, 20, 40]}}\n"
    assert check_strategy(text + "model: {}\n").layout == "legacy"


def test_an_indicator_mapping_without_nn_inputs_is_not_v3() -> None:
    text = V3.replace("nn_inputs:", "inputs_unused:").split("inputs_unused:")[0]
    check = check_strategy(text + "model: {}\n")
    assert check.layout == "v2"
    problem = next(p for p in check.problems if p.path == "indicators")
    assert "list" in problem.message and "nn_inputs" in problem.message


# -- legacy ----------------------------------------------------------------------------------


def test_legacy_data_becomes_training_data_and_gets_the_loader_defaults() -> None:
    spec = load_strategy(LEGACY)
    assert spec.default_symbols() == ["AAPL", "MSFT"]
    assert spec.default_timeframes() == ["1h", "1d"]
    assert spec.training_data is not None
    assert spec.training_data.history_required == 150
    assert spec.training_data.timeframes is not None
    assert spec.training_data.timeframes.base_timeframe == "1h"  # the first listed
    assert spec.training.labels == ZigzagLabelsSpec(zigzag_threshold=0.03, label_lookahead=20)
    assert spec.model.features.lookback_periods == 2
    assert spec.decisions.output_format == "classification"
    assert list(spec.indicators) == ["RSI", "ema"]  # ids are the names (no feature_id)


def test_legacy_files_are_read_for_the_early_v2_trainer() -> None:
    spec = load_strategy(LEGACY)
    # early-v2 KTRDR fed close / EMA to sets over sma/ema
    assert spec.fuzzy_sets["ema"].input_transform == InputTransformSpec(type="price_ratio")
    assert _notice(spec.notices, "fuzzy_sets.ema").line == 14
    flat = _notice(spec.notices, "indicators[0]")  # it also dropped flat parameters
    assert flat.line == 7 and "period: 9" in flat.message and "period: 14" in flat.message
    assert "shuffled" in _notice(spec.notices, "training").message


def test_a_legacy_file_with_data_and_v2_sections_refuses_data() -> None:
    text = LEGACY.replace("name: legacy_two_symbols", "name: mixed\nscope: universal")
    problem = next(p for p in check_strategy(text).problems if p.path == "data")
    assert "unknown key" in problem.message


# -- v2 --------------------------------------------------------------------------------------


def test_v2_is_normalised_to_the_v3_shape() -> None:
    spec = load_strategy(V2)
    assert spec.indicators == {
        "macd_std": IndicatorSpec(
            type="macd", params={"fast_period": 12, "slow_period": 26, "signal_period": 9}
        ),
        "sma_50": IndicatorSpec(type="simplemovingaverage", params={"period": 50}),
    }
    assert spec.fuzzy_sets["macd_std"].indicator == "macd_std"
    assert spec.nn_inputs == [
        NNInputSpec(fuzzy_set="macd_std", timeframes="all"),
        NNInputSpec(fuzzy_set="sma_50", timeframes="all"),
    ]
    # a late-v2 file (feature_id present): the moving average itself, no automatic ratio
    assert spec.fuzzy_sets["sma_50"].input_transform is None
    assert spec.ignored == {"scope": "symbol_group"}


def test_v2_mode_single_with_a_list_trains_on_the_list() -> None:
    spec = load_strategy(V2)
    assert spec.default_symbols() == ["EURUSD", "GBPUSD"]
    assert spec.default_timeframes() == ["4h"]
    notices = spec.notices
    assert _notice(notices, "training_data.symbols.list").line == 4
    assert "single_timeframe" in _notice(notices, "training_data.timeframes.mode").message
    bare = _notice(notices, "fuzzy_sets.macd_std.negative")
    assert bare.line == 11 and "triangular" in bare.message


def test_early_v2_files_get_unique_ids_for_repeated_names() -> None:
    text = _yaml(
        """
        name: early
        training_data: {symbols: {mode: single, symbol: X}}
        indicators:
          - {name: rsi, period: 14}
          - {name: rsi, period: 7}
          - {name: bbands, period: 20, std_dev: 2.0}
        fuzzy_sets:
          rsi_14: {low: [0, 20, 40]}
          rsi_7: {low: [0, 20, 40]}
          bollingerbands_20_2.0: {near: [0.9, 1.0, 1.1]}
        model: {}
        """
    )
    spec = load_strategy(text)
    assert list(spec.indicators) == ["rsi_14", "rsi_7", "bbands"]
    assert {key: s.indicator for key, s in spec.fuzzy_sets.items()} == {
        "rsi_14": "rsi_14",
        "rsi_7": "rsi_7",
        "bollingerbands_20_2.0": "bbands",  # early-v2's column name for it
    }
    left_out = _notice(spec.notices, "indicators[2].name")  # `bbands` did not resolve in E2
    assert "left this indicator" in left_out.message and left_out.line == 6


def test_late_v2_duplicate_ids_are_still_an_error() -> None:
    text = V2.replace("{name: sma, feature_id: sma_50, period: 50}", "{name: macd}").replace(
        "feature_id: macd_std}", "feature_id: macd}"
    )
    problem = next(p for p in check_strategy(text).problems if p.path == "indicators[1].feature_id")
    assert "already used" in problem.message


# -- v3 --------------------------------------------------------------------------------------


def test_v3_loads_natively() -> None:
    spec = load_strategy(V3)
    assert spec.fuzzy_sets["direction"] == FuzzySetSpec(
        indicator="trend.plus_di",
        memberships={"up": MembershipSpec(type="triangular", parameters=[20, 30, 50])},
    )
    assert spec.fuzzy_sets["direction"].indicator_id == "trend"
    assert spec.nn_inputs[2] == NNInputSpec(
        raw_indicator="trend.adx", timeframes="all", normalization="zscore"
    )
    assert spec.nn_inputs[1].timeframes == ["1d"]
    assert spec.hyperparameter_sources["epochs"] == "training.epochs"
    assert spec.model.training.epochs == 5
    # input_transform works in v3 too (KTRDR v3 failed on it)
    assert spec.fuzzy_sets["level"].input_transform == InputTransformSpec(type="price_ratio")
    assert _notice(spec.notices, "fuzzy_sets.level.input_transform").line == 14
    assert "normalization" in _notice(spec.notices, "nn_inputs[2].normalization").path


def test_the_v3_fixture_with_outputs_and_raw_inputs() -> None:
    spec = load_strategy(FIXTURES / "v3_outputs_and_raw.yaml")
    assert {key: s.indicator for key, s in spec.fuzzy_sets.items()} == {
        "strength": "trend",
        "buyers": "trend.plus_di",
        "sellers": "trend.minus_di",
        "swing": "momentum.histogram",
        "stretch": "stoch_fast.d",
    }
    assert spec.indicators["trend"].type == "adx"  # `ADX` resolved through the catalog
    assert spec.indicators["rsi_short"].type == "rsi"  # and `RSIIndicator`
    assert spec.indicators["stoch_fast"].params["smooth_k"] == 3  # KTRDR's slow %K default
    raw = [item for item in spec.nn_inputs if item.raw_indicator]
    assert [(i.raw_indicator, i.normalization) for i in raw] == [
        ("trend.adx", "minmax"),
        ("momentum.line", "zscore"),
        ("rsi_short", None),
    ]
    assert spec.model.type == "gru" and spec.model.architecture.sequence_length == 12
    assert spec.training.labels == TripleBarrierLabelsSpec(
        pt_multiplier=1.8, max_holding_period=30, vol_method="close"
    )
    assert spec.training.loss == "focal" and spec.training.focal_gamma == 1.5
    assert spec.training.data_split.test == pytest.approx(0.15)
    assert spec.training_data is not None
    assert (spec.training_data.start_date, spec.training_data.end_date) == (
        "2021-01-04",
        "2023-06-30",
    )
    assert spec.fuzzy_sets["strength"].memberships["strong"].type == "trapezoidal"
    assert spec.fuzzy_sets["buyers"].memberships["pushing"].type == "sigmoid"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            ("indicator: trend.plus_di", "indicator: trend.up"),
            "fuzzy_sets.direction.indicator",
            ("no output `up`", "adx, plus_di, minus_di"),
        ),
        (
            ("indicator: fast\n", "indicator: fast.sma\n"),
            "fuzzy_sets.level.indicator",
            ("single output",),
        ),
        (
            ("indicator: fast\n", "indicator: slow\n"),
            "fuzzy_sets.level.indicator",
            ("names no indicator", "trend, fast"),
        ),
        (("    indicator: fast\n", ""), "fuzzy_sets.level.indicator", ("needs `indicator",)),
        (
            ("{fuzzy_set: direction, timeframes: all}", "{fuzzy_set: directions}"),
            "nn_inputs[0].fuzzy_set",
            ("did you mean `direction`",),
        ),
        (
            (
                "{fuzzy_set: direction, timeframes: all}",
                "{fuzzy_set: direction, raw_indicator: fast}",
            ),
            "nn_inputs[0]",
            ("either",),
        ),
        (
            (
                "{fuzzy_set: direction, timeframes: all}",
                "{fuzzy_set: direction, normalization: minmax}",
            ),
            "nn_inputs[0].normalization",
            ("raw_indicator",),
        ),
        (
            ("{fuzzy_set: level, timeframes: [1d]}", "{fuzzy_set: level, timeframes: [1h]}"),
            "nn_inputs[1].timeframes",
            ("1h is not",),
        ),
        (
            ("raw_indicator: trend.adx", "raw_indicator: trend.dx"),
            "nn_inputs[2].raw_indicator",
            ("no output `dx`",),
        ),
        (
            ("  fast: {type: sma, period: 10}", "  fast.x: {type: sma, period: 10}"),
            "indicators.fast.x",
            ("no dots",),
        ),
    ],
)
def test_v3_reference_errors_name_the_construct(
    change: tuple[str, str], path: str, words: tuple[str, ...]
) -> None:
    assert change[0] in V3
    problems = check_strategy(V3.replace(*change)).problems
    found = [p for p in problems if p.path == path]
    assert found, [p.render() for p in problems]
    for word in words:
        assert word in found[0].message, found[0].render()


def test_an_output_key_means_the_output_it_names() -> None:
    text = V3.replace("indicator: trend.plus_di\n", "indicator: trend\n    output: minus_di\n")
    spec = load_strategy(text)
    assert spec.fuzzy_sets["direction"].indicator == "trend.minus_di"
    assert _notice(spec.notices, "fuzzy_sets.direction.output").line == 11


def test_unused_indicators_and_fuzzy_sets_are_noticed() -> None:
    text = V3.replace("  - {fuzzy_set: level, timeframes: [1d]}\n", "")
    notices = check_strategy(text).notices
    assert "not an input" in _notice(notices, "fuzzy_sets.level").message
    assert "not computed" in _notice(notices, "indicators.fast").message


def test_v3_without_nn_inputs_entries_is_an_error() -> None:
    text = V3.split("nn_inputs:")[0] + "nn_inputs: []\nmodel: {}\n"
    problem = next(p for p in check_strategy(text).problems if p.path == "nn_inputs")
    assert "non-empty list" in problem.message
