"""Fuzzy sets: what a v2 key reads (decision 3), memberships (decision 8), input transforms.

The strategies are written for these tests (KTRDR-STRATEGY-FORMATS 2.4, 2.5, 3).
"""

from __future__ import annotations

import textwrap

import pytest

from ktrdr_lib.schemas.strategies import StrategyNotice
from ktrdr_lib.strategy.loader import check_strategy, load_strategy
from ktrdr_lib.strategy.spec import InputTransformSpec, MembershipSpec


def _v2(indicators: str, fuzzy_sets: str) -> str:
    """A late-v2 strategy around the given indicator items and fuzzy sets (YAML lines)."""
    head = "name: keys\ntraining_data: {symbols: {mode: single, symbol: X}}\nindicators:\n"
    body = textwrap.indent(textwrap.dedent(indicators).strip("\n"), "  ")
    sets = textwrap.indent(textwrap.dedent(fuzzy_sets).strip("\n"), "  ")
    return f"{head}{body}\nfuzzy_sets:\n{sets}\nmodel: {{}}\n"


def _notices_at(notices: list[StrategyNotice], path: str) -> list[StrategyNotice]:
    return [notice for notice in notices if notice.path == path]


# -- v2 keys ---------------------------------------------------------------------------------

ADX_AROON = """
- {name: adx, feature_id: adx_14, period: 14}
- {name: aroon, feature_id: aroon_25, period: 25}
- {name: macd, feature_id: macd_main}
"""


@pytest.mark.parametrize(
    ("key", "reads", "ktrdr_missed_it"),
    [
        ("adx_14", "adx_14", False),  # the feature_id: the primary output
        ("ADX_14", "adx_14.adx", False),  # late-v2's own column name for the ADX line
        ("DI_Plus_14", "adx_14.plus_di", False),
        ("DI_Minus_14", "adx_14.minus_di", False),
        ("Aroon_25_Down", "aroon_25.down", False),
        ("MACD_signal_12_26_9", "macd_main.signal", False),
        ("di_plus_14", "adx_14.plus_di", True),  # a column name in another case
        ("Adx_14", "adx_14", True),  # the id in another case
        ("aroon_down_25", "aroon_25.down", True),  # a name that says its output
        ("aroon_up_25", "aroon_25.up", True),
        ("macd_signal", "macd_main.signal", True),
        ("macd_hist", "macd_main.histogram", True),
    ],
)
def test_a_v2_key_reads_the_output_its_name_says(
    key: str, reads: str, ktrdr_missed_it: bool
) -> None:
    spec = load_strategy(_v2(ADX_AROON, f"{key}: {{low: [0, 20, 40]}}"))
    assert spec.fuzzy_sets[key].indicator == reads
    missed = _notices_at(spec.notices, f"fuzzy_sets.{key}")
    assert bool(missed) == ktrdr_missed_it
    if missed:
        assert "trained without this set" in missed[0].message and missed[0].line == 8


def test_a_key_naming_nothing_is_an_error_listing_the_ids() -> None:
    problems = check_strategy(_v2(ADX_AROON, "trend_strength: {low: [0, 20, 40]}")).problems
    (problem,) = problems
    assert problem.path == "fuzzy_sets.trend_strength"
    assert "adx_14, aroon_25, macd_main" in problem.message


def test_a_key_for_an_indicator_that_could_not_be_read_is_not_reported_twice() -> None:
    indicators = "- {name: adx, feature_id: adx_14, period: 0}"
    problems = check_strategy(_v2(indicators, "adx_14: {low: [0, 20, 40]}")).problems
    assert [p.path for p in problems] == ["indicators[0].period"]


def test_early_v2_keys_may_be_names_or_column_names() -> None:
    indicators = """
    - {name: stoch, k_period: 9}
    - {name: MACD}
    """
    spec = load_strategy(
        _v2(indicators, "stochastic_9_3_3: {low: [0, 20, 40]}\nMACD: {neg: [-1, -0.5, 0]}")
    )
    assert spec.fuzzy_sets["stochastic_9_3_3"].indicator == "stoch"
    assert spec.fuzzy_sets["MACD"].indicator == "MACD"


def test_a_v3_set_named_for_another_output_is_noticed() -> None:
    text = textwrap.dedent(
        """\
        name: hazard
        indicators:
          adx_14: {type: adx}
        fuzzy_sets:
          DI_Plus_14:
            indicator: adx_14
            low: [0, 10, 20]
        nn_inputs: [{fuzzy_set: DI_Plus_14}]
        model: {}
        """
    )
    (notice,) = _notices_at(check_strategy(text).notices, "fuzzy_sets.DI_Plus_14")
    assert "adx_14.plus_di" in notice.message and notice.line == 5


# -- input transforms ------------------------------------------------------------------------


def test_early_v2_sets_over_moving_averages_read_close_over_the_average() -> None:
    indicators = "- {name: sma, period: 30}\n- {name: EMA, period: 10}\n- {name: rsi}"
    sets = "sma: {near: [0.9, 1.0, 1.1]}\nEMA: {near: [0.9, 1.0, 1.1]}\nrsi: {low: [0, 20, 40]}"
    spec = load_strategy(_v2(indicators, sets))
    ratio = InputTransformSpec(type="price_ratio", reference="close")
    assert spec.fuzzy_sets["sma"].input_transform == ratio
    assert spec.fuzzy_sets["EMA"].input_transform == ratio
    assert spec.fuzzy_sets["rsi"].input_transform is None
    (notice,) = _notices_at(spec.notices, "fuzzy_sets.sma")
    assert "close / sma" in notice.message


def test_input_transform_is_read_in_v2_and_is_not_a_membership() -> None:
    indicators = "- {name: ema, feature_id: ema_20}"
    sets = """
    ema_20:
      input_transform: {type: price_ratio, reference: high}
      near: [0.9, 1.0, 1.1]
    """
    spec = load_strategy(_v2(indicators, sets))
    fuzzy_set = spec.fuzzy_sets["ema_20"]
    assert fuzzy_set.input_transform == InputTransformSpec(type="price_ratio", reference="high")
    assert list(fuzzy_set.memberships) == ["near"]
    identity = load_strategy(
        _v2(indicators, sets.replace("price_ratio, reference: high", "identity"))
    )
    assert identity.fuzzy_sets["ema_20"].input_transform is None


def test_a_wrong_input_transform_is_an_error() -> None:
    indicators = "- {name: ema, feature_id: ema_20}"
    sets = "ema_20:\n  input_transform: {type: ratio}\n  near: [0.9, 1.0, 1.1]"
    (problem,) = check_strategy(_v2(indicators, sets)).problems
    assert problem.path == "fuzzy_sets.ema_20.input_transform.type"
    assert "price_ratio" in problem.message


# -- memberships -----------------------------------------------------------------------------

RSI = "- {name: rsi, feature_id: rsi_14}"


@pytest.mark.parametrize(
    ("written", "expected", "notice_words"),
    [
        ("[10, 20, 30]", MembershipSpec(type="triangular", parameters=[10, 20, 30]), "bare-list"),
        (
            "[10, 20, 30, 40]",
            MembershipSpec(type="trapezoidal", parameters=[10, 20, 30, 40]),
            "bare",
        ),
        (
            "{type: TriangularMF, parameters: [10, 20, 30]}",
            MembershipSpec(type="triangular", parameters=[10, 20, 30]),
            None,
        ),
        (
            "{type: triangle, parameters: [10, 20, 30]}",
            MembershipSpec(type="triangular", parameters=[10, 20, 30]),
            "did not know",
        ),
        (
            "{type: Gaussian, parameters: [50, 5]}",
            MembershipSpec(type="gaussian", parameters=[50, 5]),
            None,
        ),
        (
            "{type: sigmoid, parameters: [50, -0.5]}",
            MembershipSpec(type="sigmoid", parameters=[50, -0.5]),
            "1 / (1 + exp",
        ),
        (
            "{type: trapezoidal, parameters: [0, 0, 20, 30]}",
            MembershipSpec(type="trapezoidal", parameters=[0, 0, 20, 30]),
            "at and below 0",
        ),
        (
            "[70, 100, 100]",
            MembershipSpec(type="triangular", parameters=[70, 100, 100]),
            "above 100",
        ),
    ],
)
def test_membership_forms(written: str, expected: MembershipSpec, notice_words: str | None) -> None:
    spec = load_strategy(_v2(RSI, f"rsi_14:\n  zone: {written}"))
    assert spec.fuzzy_sets["rsi_14"].memberships["zone"] == expected
    notices = [n for n in spec.notices if n.path.startswith("fuzzy_sets.rsi_14.zone")]
    if notice_words is None:
        assert notices == []
    else:
        assert any(notice_words in n.message for n in notices), [n.message for n in notices]
        assert all(n.line == 7 for n in notices)


def test_bare_lists_in_v3_are_ktrdr_v3_shorthand_without_a_notice() -> None:
    text = "name: s\nindicators: {r: {type: rsi}}\n"
    text += "fuzzy_sets:\n  z: {indicator: r, low: [0, 20, 40]}\n"
    check = check_strategy(text + "nn_inputs: [{fuzzy_set: z}]\nmodel: {}\n")
    assert check.valid and not [n for n in check.notices if n.path.startswith("fuzzy_sets")]


@pytest.mark.parametrize(
    ("written", "path", "words"),
    [
        ("[10, 20]", "fuzzy_sets.rsi_14.zone", ("bare list",)),
        ("[10, 20, x]", "fuzzy_sets.rsi_14.zone", ("bare list",)),
        ("{type: bell, parameters: [1, 2]}", "fuzzy_sets.rsi_14.zone.type", ("sigmoid",)),
        ("{type: sigmoid, parameters: [50, 0]}", "fuzzy_sets.rsi_14.zone.parameters", ("slope",)),
        (
            "{type: triangular, params: [1, 2, 3]}",
            "fuzzy_sets.rsi_14.zone.params",
            ("did you mean `parameters`",),
        ),
    ],
)
def test_membership_errors(written: str, path: str, words: tuple[str, ...]) -> None:
    problems = check_strategy(_v2(RSI, f"rsi_14:\n  zone: {written}")).problems
    found = [p for p in problems if p.path == path]
    assert found, [p.render() for p in problems]
    for word in words:
        assert word in found[0].message
