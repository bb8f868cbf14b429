"""``model.training.analytics``: ``enabled`` turns detailed analytics on; KTRDR's other keys
there are kept with a notice; the option survives overrides and the saved configuration."""

from __future__ import annotations

import yaml

from ktrdr_lib import build_training_context
from ktrdr_lib.strategy.config import apply_overrides, strategy_to_config
from ktrdr_lib.strategy.loader import check_strategy, load_strategy
from tests.conftest import SMALL_STRATEGY

TRAINING_LINE = "training: {learning_rate: 0.005, batch_size: 64, epochs: 3, optimizer: adam}"


def _with_analytics(analytics: str) -> str:
    assert TRAINING_LINE in SMALL_STRATEGY
    return SMALL_STRATEGY.replace(TRAINING_LINE, TRAINING_LINE[:-1] + f", analytics: {analytics}}}")


def test_enabled_turns_analytics_on_and_the_other_keys_are_kept_with_a_notice() -> None:
    spec = load_strategy(_with_analytics("{enabled: true, export_csv: true, export_alerts: true}"))
    assert spec.model.training.analytics.enabled
    assert spec.ignored == {
        "model.training.analytics.export_csv": True,
        "model.training.analytics.export_alerts": True,
    }
    noticed = {notice.path: notice.message for notice in spec.notices}
    assert "both always written" in noticed["model.training.analytics.export_csv"]
    assert "model.training.analytics.enabled" not in noticed  # it is used: nothing to say
    assert not load_strategy(SMALL_STRATEGY).model.training.analytics.enabled


def test_a_bad_value_or_a_misspelt_key_is_a_problem_with_its_line() -> None:
    bad = check_strategy(_with_analytics("{enabled: sometimes}")).problems
    assert [(p.path, p.message) for p in bad] == [
        ("model.training.analytics.enabled", "must be true or false")
    ]
    assert bad[0].line is not None
    typo = check_strategy(_with_analytics("{enable: true}")).problems
    assert [p.path for p in typo] == ["model.training.analytics.enable"]
    assert "did you mean `enabled`" in typo[0].message
    not_a_mapping = check_strategy(_with_analytics("true")).problems
    assert [p.path for p in not_a_mapping] == ["model.training.analytics"]


def test_the_option_survives_overrides_and_the_saved_configuration() -> None:
    spec = load_strategy(_with_analytics("{enabled: true, export_json: false}"))
    overridden = apply_overrides(spec, {"epochs": 2})
    assert overridden.model.training.epochs == 2
    assert overridden.model.training.analytics.enabled
    config = strategy_to_config(spec)
    assert config["model"]["training"]["analytics"] == {"enabled": True, "export_json": False}
    again = load_strategy(yaml.safe_dump(config))
    assert again.model.training == spec.model.training and again.ignored == spec.ignored
    assert "analytics" not in strategy_to_config(load_strategy(SMALL_STRATEGY))["model"]["training"]


def test_the_context_asks_for_analytics_from_the_request_or_the_strategy() -> None:
    plain, on = load_strategy(SMALL_STRATEGY), load_strategy(_with_analytics("{enabled: true}"))
    assert not build_training_context(plain, mode="host").detailed_analytics
    assert build_training_context(plain, mode="host", detailed_analytics=True).detailed_analytics
    assert build_training_context(on, mode="host").detailed_analytics
    assert build_training_context(on, mode="host", detailed_analytics=False).detailed_analytics
