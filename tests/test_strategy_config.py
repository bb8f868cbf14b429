"""The saved v3 form of a strategy, overrides on it, migration, and names with dots."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import yaml

from ktrdr_lib.errors import ConfigError, StrategyError
from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
from ktrdr_lib.strategy.config import apply_overrides, strategy_to_config
from ktrdr_lib.strategy.discovery import list_strategies, resolve_strategy
from ktrdr_lib.strategy.loader import check_strategy, load_strategy
from ktrdr_lib.strategy.migrate import migrate_strategy
from ktrdr_lib.strategy.spec import StrategySpec, model_name

from .test_strategy_layouts import LEGACY, V2, V3

FIXTURES = Path(__file__).parent / "fixtures" / "strategies"

# A v2 file with much that KTRDR ignored: every kept key must come back from the saved form.
KEPT = """
name: v1.5_kept
scope: single_symbol
training_data:
  symbols: {mode: single_symbol, list: [EURUSD], selection_criteria: {asset_class: fx}}
  timeframes: {mode: single, timeframe: 1h}
  date_range: {start: 2016-01-01, end: 2019-12-31}
indicators:
  - {name: adx, feature_id: adx_14, period: 14, source: close, timeframe: 1h}
  - {name: bbands, feature_id: bands, std_dev: 2.5}
fuzzy_sets:
  DI_Plus_14: {up: [20, 30, 50]}
  bands: {near: [0.9, 1.0, 1.1]}
model:
  symbol_embedding_dim: 16
  architecture: {hidden_layers: [16], output_activation: sigmoid}
  features: {lookback_periods: 1, scaling_method: robust}
  training:
    epochs: 30
    early_stopping: {enabled: false, patience: 5, mode: min}
    lr_scheduler: {type: step}
decisions: {confidence_threshold: 0.6, filters: {min_signal_separation: 4}}
training:
  learning_rate: 0.002
  labels: {zigzag_threshold: 0.02, label_lookahead: 12}
  walk_forward: {window: 252}
  date_range: {start: 2016-01-01}
orchestrator: {max_position_size: 0.5}
"""


def _without_origin(spec: StrategySpec) -> StrategySpec:
    return msgspec.structs.replace(spec, layout="v3", notices=[], source=None)


SOURCES = {
    "legacy": LEGACY,
    "v2": V2,
    "v3": V3,
    "kept": KEPT,
    "fixture": (FIXTURES / "v3_outputs_and_raw.yaml").read_text(encoding="utf-8"),
    **{
        path.stem: path.read_text(encoding="utf-8")
        for path in SHIPPED_STRATEGIES_DIR.glob("*.yaml")
    },
}


@pytest.mark.parametrize("text", list(SOURCES.values()), ids=list(SOURCES))
def test_the_saved_v3_form_loads_to_an_equal_spec(text: str) -> None:
    spec = load_strategy(text)
    config = strategy_to_config(spec)
    assert "nn_inputs" in config and isinstance(config["indicators"], dict)
    again = load_strategy(yaml.safe_dump(config, sort_keys=False))
    assert again.layout == "v3"
    assert _without_origin(again) == _without_origin(spec)
    assert strategy_to_config(again) == config


def test_the_saved_form_keeps_ignored_keys_and_sources_in_place() -> None:
    spec = load_strategy(KEPT)
    config = strategy_to_config(spec)
    assert config["scope"] == "single_symbol"
    assert config["orchestrator"] == {"max_position_size": 0.5}
    assert config["indicators"]["adx_14"]["timeframe"] == "1h"
    assert config["model"]["training"]["epochs"] == 30
    assert config["model"]["training"]["early_stopping"] == {"enabled": False, "mode": "min"}
    assert config["training"]["learning_rate"] == 0.002
    assert config["fuzzy_sets"]["DI_Plus_14"]["indicator"] == "adx_14.plus_di"
    assert spec.hyperparameter_sources["learning_rate"] == "training.learning_rate"
    assert spec.model.training.early_stopping is None


def test_a_saved_v2_config_of_an_older_model_still_loads() -> None:
    old = {
        "name": "saved_before",
        "indicators": [
            {"name": "rsi", "period": 14},
            {"name": "sma", "feature_id": "sma", "period": 20},
        ],
        "fuzzy_sets": {
            "rsi": {"low": {"type": "triangular", "parameters": [0, 20, 40]}},
            "sma": {"near": {"type": "gaussian", "parameters": [1.0, 0.02]}},
        },
        "model": {"training": {"epochs": 3}},
        "training": {"labels": {"zigzag_threshold": 0.03, "label_lookahead": 20}},
    }
    spec = load_strategy(yaml.safe_dump(old))
    assert spec.layout == "legacy" and spec.model.training.epochs == 3


# -- overrides -------------------------------------------------------------------------------


def test_overrides_use_dotted_paths_on_the_v3_form_and_keep_the_notices() -> None:
    spec = load_strategy(V2)
    changed = apply_overrides(
        spec,
        {
            "epochs": 4,
            "model.training.learning_rate": 0.05,
            "training.labels.zigzag_threshold": 0.1,
        },
    )
    assert changed.model.training.epochs == 4
    assert changed.model.training.learning_rate == 0.05
    assert changed.training.labels.zigzag_threshold == 0.1  # type: ignore[union-attr]
    assert changed.notices == spec.notices and changed.layout == "v2"
    assert changed.hyperparameter_sources["learning_rate"] == "model.training.learning_rate"


def test_an_override_replaces_a_hyperparameter_wherever_the_file_wrote_it() -> None:
    spec = load_strategy(V3)  # epochs come from training.epochs
    changed = apply_overrides(spec, {"epochs": 9})
    assert changed.model.training.epochs == 9
    stopping = apply_overrides(spec, {"model.training.early_stopping.patience": 2})
    assert stopping.model.training.early_stopping is not None
    assert stopping.model.training.early_stopping.patience == 2


def test_a_bad_override_names_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"model\.training\.epochs"):
        apply_overrides(load_strategy(V3), {"epochs": 0})


# -- migration -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "layout"), [("legacy", "legacy"), ("v2", "v2"), ("kept", "v2")])
def test_migration_prints_v3_with_the_notices_on_top(name: str, layout: str) -> None:
    text = SOURCES[name]
    migrated = migrate_strategy(text, file=f"{name}.yaml")
    header = [line for line in migrated.splitlines() if line.startswith("#")]
    assert f"migrated from the {layout} layout ({name}.yaml) to v3" in header[0]
    notices = check_strategy(text).notices
    for notice in notices:
        assert f"line {notice.line}: {notice.path}" in migrated
    check = check_strategy(migrated)
    assert check.valid and check.layout == "v3"
    assert _without_origin(load_strategy(migrated)) == _without_origin(load_strategy(text))


def test_migration_of_a_broken_file_raises_its_problems() -> None:
    with pytest.raises(StrategyError) as caught:
        migrate_strategy((FIXTURES / "broken_strategy.yaml").read_text(), file="broken.yaml")
    assert len(caught.value.problems) == 3


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "directory"),
    [
        ("v15_rsi_zigzag_1.5", "v15_rsi_zigzag_1_5"),
        ("plain-name_2", "plain-name_2"),
        ("a b/c", "a_b_c"),
        ("_x", "strategy_x"),
    ],
)
def test_model_name_is_a_safe_directory_name(name: str, directory: str) -> None:
    assert model_name(name) == directory


def test_names_with_dots_load_and_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_strategy(KEPT)
    assert spec.name == "v1.5_kept"
    (tmp_path / "v1.5_kept.yaml").write_text(KEPT, encoding="utf-8")
    monkeypatch.setenv("KTRDR_STRATEGIES_DIR", str(tmp_path))
    assert resolve_strategy("v1.5_kept") == tmp_path / "v1.5_kept.yaml"
    listing = {item.name: item for item in list_strategies()}["v1.5_kept"]
    assert listing.valid and listing.symbols == ["EURUSD"]
