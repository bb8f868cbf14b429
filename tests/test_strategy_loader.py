"""Tests for ktrdr_lib.strategy.loader: every check, line numbers, and building the spec."""

from __future__ import annotations

import copy
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from ktrdr_lib.errors import ConfigError, StrategyError, StrategyNotFoundError, StrategyProblem
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
from ktrdr_lib.strategy.loader import _conversion_problem, check_strategy_text, load_strategy
from ktrdr_lib.strategy.spec import ModelTrainingSpec, StrategySpec

VALID: dict[str, Any] = {
    "name": "unit_test_strategy",
    "description": "a strategy that exercises every section",
    "version": "1",
    "hypothesis": "none; this is a test",
    "scope": "universal",
    "training_data": {
        "symbols": {"mode": "single", "symbol": "AAPL"},
        "timeframes": {"mode": "multi_timeframe", "list": ["1h", "1d"], "base_timeframe": "1h"},
        "history_required": 50,
    },
    "deployment": {"environments": ["paper"], "anything": {"goes": [1, 2]}},
    "indicators": [
        {"name": "rsi", "period": 7},
        {"name": "macd"},
        {"name": "sma", "feature_id": "sma_fast", "period": 10, "source": "high"},
        {"name": "atr", "source": "open"},
        {"name": "bbands", "std_dev": 1.5},
    ],
    "fuzzy_sets": {
        "rsi": {
            "low": {"type": "triangular", "parameters": [0, 0, 40]},
            "high": {"type": "triangular", "parameters": [60, 100, 100]},
        },
        "macd": {
            "negative": {"type": "trapezoidal", "parameters": [-5, -5, -1, 0]},
            "positive": {"type": "gaussian", "parameters": [1, 0.5]},
        },
        "sma_fast": {"near": {"type": "gaussian", "parameters": [1.0, 0.02]}},
        "atr": {"calm": {"type": "triangular", "parameters": [0, 0.5, 1]}},
        "bbands": {"middle": {"type": "triangular", "parameters": [0.2, 0.5, 0.8]}},
    },
    "model": {
        "type": "mlp",
        "architecture": {
            "hidden_layers": [8, 4],
            "activation": "tanh",
            "output_activation": "softmax",
            "dropout": 0.0,
        },
        "features": {"include_price_context": False, "lookback_periods": 2, "scale_features": True},
        "training": {
            "learning_rate": 0.01,
            "batch_size": 16,
            "epochs": 5,
            "optimizer": "sgd",
            "weight_decay": 0,
            "early_stopping": {"patience": 2, "monitor": "val_accuracy", "min_delta": 0},
        },
    },
    "decisions": {"confidence_threshold": 0.6, "filters": {"min_signal_separation": 4}},
    "training": {
        "method": "supervised",
        "labels": {"source": "zigzag", "zigzag_threshold": 0.05, "label_lookahead": 10},
        "data_split": {"train": 0.6, "validation": 0.2, "test": 0.2},
    },
}

_DELETE = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _SEGMENT.findall(path)]


def _edited(changes: Mapping[str, object]) -> str:
    """VALID as YAML text with each dotted path set to a value (or removed with _DELETE)."""
    data = copy.deepcopy(VALID)
    for path, value in changes.items():
        *parents, last = _segments(path)
        node: Any = data
        for segment in parents:
            node = node[segment]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def _problem_at(problems: list[StrategyProblem], path: str) -> StrategyProblem:
    matching = [problem for problem in problems if problem.path == path]
    assert matching, f"no problem at {path!r}; got {[p.render() for p in problems]}"
    return matching[0]


def _assert_one_problem(changes: Mapping[str, object], path: str, *words: str) -> StrategyProblem:
    problems = check_strategy_text(_edited(changes))
    assert [p.path for p in problems] == [path], [p.render() for p in problems]
    for word in words:
        assert word in problems[0].message, problems[0].render()
    return problems[0]


# -- the valid strategy and the spec built from it ----------------------------------------------


def test_valid_strategy_has_no_problems() -> None:
    assert check_strategy_text(yaml.safe_dump(VALID)) == []


def test_spec_fills_catalog_defaults_and_feature_ids() -> None:
    spec = load_strategy(yaml.safe_dump(VALID, sort_keys=False))
    by_id = spec.indicators  # the internal model keys indicators by their feature_id
    assert list(by_id) == ["rsi", "macd", "sma_fast", "atr", "bbands"]
    assert by_id["macd"].params == {"fast_period": 12, "slow_period": 26, "signal_period": 9}
    assert by_id["rsi"].params == {"period": 7}
    assert by_id["bbands"].params == {"period": 20, "multiplier": 1.5}  # std_dev, renamed
    assert by_id["sma_fast"].type == INDICATOR_CATALOG.require("sma").name


def test_spec_keeps_source_only_where_the_indicator_reads_a_price() -> None:
    spec = load_strategy(yaml.safe_dump(VALID))
    by_id = spec.indicators
    assert by_id["sma_fast"].source == "high"
    assert by_id["atr"].source == "close"  # atr reads high/low/close; the `open` given is dropped


def test_spec_keeps_the_sections_training_does_not_use_verbatim() -> None:
    # scope, deployment and the decision keys other than output_format/cost_model were never
    # read by KTRDR's training: they are kept with the model (by dotted path) and noticed.
    spec = load_strategy(yaml.safe_dump(VALID))
    assert spec.ignored["deployment"] == VALID["deployment"]
    assert spec.ignored["scope"] == "universal"
    assert spec.ignored["decisions.confidence_threshold"] == 0.6
    assert spec.ignored["decisions.filters"] == {"min_signal_separation": 4}
    assert spec.decisions.output_format == "classification"
    assert {"scope", "deployment", "decisions.filters"} <= {n.path for n in spec.notices}
    assert spec.default_timeframes() == ["1h", "1d"]
    assert spec.source is None


def test_numeric_version_is_kept_as_written() -> None:
    text = yaml.safe_dump(VALID).replace("version: '1'", "version: 2.10")
    assert "version: 2.10" in text
    assert load_strategy(text).version == "2.10"


def test_file_source_is_recorded_and_problems_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    assert load_strategy(good).source == str(good)
    assert load_strategy(str(good)).source == str(good)

    bad = tmp_path / "bad.yml"
    bad.write_text(_edited({"name": "bad name"}), encoding="utf-8")
    with pytest.raises(StrategyError) as caught:
        load_strategy(str(bad))
    (problem,) = caught.value.problems
    assert problem.file == str(bad)
    assert f"{bad}:{problem.line}: name:" in str(caught.value)


@pytest.mark.parametrize(
    "path", sorted(SHIPPED_STRATEGIES_DIR.glob("*.yaml")), ids=lambda p: p.stem
)
def test_shipped_examples_load_cleanly(path: Path) -> None:
    spec = load_strategy(path)
    assert spec.name == path.stem
    assert spec.default_symbols()
    assert spec.default_timeframes()
    assert spec.indicators and spec.nn_inputs


def test_the_three_named_examples_are_shipped() -> None:
    names = {path.stem for path in SHIPPED_STRATEGIES_DIR.glob("*.yaml")}
    assert {"rsi_mean_reversion", "macd_trend", "multi_timeframe_momentum"} <= names


# -- source: file or text -----------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(StrategyNotFoundError) as caught:
        load_strategy(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(StrategyNotFoundError):
        load_strategy("relative/missing.yml")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="directory"):
        load_strategy(folder)


def test_text_that_ends_in_yaml_but_has_lines_is_text() -> None:
    text = yaml.safe_dump(VALID) + "# see other.yaml"
    assert load_strategy(text).name == "unit_test_strategy"


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(StrategyError, match="UTF-8"):
        load_strategy(path)


# -- document-level problems --------------------------------------------------------------------


def test_yaml_syntax_error_is_one_problem_with_line_and_column() -> None:
    text = "name: x\nindicators:\n  - {name: rsi, period: 14\nmodel: {}\n"
    (problem,) = check_strategy_text(text, file="broken.yaml")
    assert problem.line is not None
    assert problem.line == 4  # the flow mapping is found unclosed at `model:`
    assert "column" in problem.message
    assert problem.render().startswith(f"broken.yaml:{problem.line}: ")


def test_unsafe_tags_are_refused_not_executed() -> None:
    text = "name: !!python/object/apply:os.getcwd []\n"
    (problem,) = check_strategy_text(text)
    assert "python/object" in problem.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "null\n"])
def test_empty_document(text: str) -> None:
    (problem,) = check_strategy_text(text)
    assert "empty" in problem.message


@pytest.mark.parametrize("text", ["- name: x\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    (problem,) = check_strategy_text(text)
    assert "mapping" in problem.message


def test_every_problem_is_reported_in_line_order() -> None:
    text = _edited(
        {
            "training_data.history_required": -1,
            "indicators[0].period": 0,
            "model.architecture.dropout": 1.0,
            "training.labels.zigzag_threshold": 2,
        }
    )
    problems = check_strategy_text(text)
    assert {p.path for p in problems} == {
        "training_data.history_required",
        "indicators[0].period",
        "model.architecture.dropout",
        "training.labels.zigzag_threshold",
    }
    lines = [p.line for p in problems]
    assert lines == sorted(lines)  # type: ignore[type-var]


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "suggestion"),
    [
        ({"decision": {}}, "decision", "decisions"),
        (
            {"model.architecture.hiden_layers": [4]},
            "model.architecture.hiden_layers",
            "hidden_layers",
        ),
        ({"training.data_split.valid": 0.1}, "training.data_split.valid", "validation"),
        ({"training_data.symbols.symbl": "X"}, "training_data.symbols.symbl", "symbol"),
        ({"fuzzy_sets.rsi.low.params": [1]}, "fuzzy_sets.rsi.low.params", "parameters"),
        (
            {"model.training.early_stopping.patiense": 3},
            "model.training.early_stopping.patiense",
            "patience",
        ),
    ],
)
def test_unknown_keys_are_named_with_a_suggestion(
    changes: dict[str, object], path: str, suggestion: str
) -> None:
    problem = _assert_one_problem(changes, path, "unknown key", f"did you mean `{suggestion}`")
    assert problem.value is None


def test_free_form_sections_take_any_keys() -> None:
    changes = {"deployment.whatever": {"x": 1}, "decisions.custom_rule": [1, 2]}
    assert check_strategy_text(_edited(changes)) == []


@pytest.mark.parametrize("section", ["name", "indicators", "fuzzy_sets", "model"])
def test_required_sections(section: str) -> None:
    problems = check_strategy_text(_edited({section: _DELETE}))
    problem = _problem_at(problems, section)
    assert "missing" in problem.message
    assert problem.value is None


def test_null_section_must_be_a_mapping() -> None:
    _assert_one_problem({"model.architecture": None}, "model.architecture", "mapping")


def test_null_early_stopping_means_none() -> None:
    spec = load_strategy(_edited({"model.training.early_stopping": None}))
    assert spec.model.training.early_stopping is None


# -- top-level fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["my strategy", "-leading-dash", "a/b", "", 12])
def test_name_must_be_an_identifier(name: object) -> None:
    _assert_one_problem({"name": name}, "name", "letters, digits")


@pytest.mark.parametrize(("key", "value"), [("scope", "single_symbol"), ("deployment", ["paper"])])
def test_scope_and_deployment_are_kept_whatever_they_hold(key: str, value: object) -> None:
    # Changed on purpose: KTRDR's training never read them (decision 10), so any value loads.
    spec = load_strategy(_edited({key: value}))
    assert spec.ignored[key] == value
    assert key in {notice.path for notice in spec.notices}


# -- training_data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"training_data.symbols.symbol": _DELETE}, "training_data.symbols.symbol", ("single",)),
        (
            {"training_data.symbols": {"mode": "multi_symbol", "list": []}},
            "training_data.symbols.list",
            ("at least 1",),
        ),
        (
            {"training_data.symbols": {"mode": "multi_symbol"}},
            "training_data.symbols.list",
            ("multi_symbol",),
        ),
        ({"training_data.symbols.mode": "many"}, "training_data.symbols.mode", ("multi_symbol",)),
        ({"training_data.symbols.symbol": "../etc"}, "training_data.symbols.symbol", ("symbol",)),
        (
            {"training_data.symbols": {"mode": "multi_symbol", "list": ["AAPL", "BAD TICKER"]}},
            "training_data.symbols.list[1]",
            ("symbol",),
        ),
        (
            {"training_data.timeframes": {"mode": "single"}},
            "training_data.timeframes.timeframe",
            ("single",),
        ),
        (
            {
                "training_data.timeframes.list": ["1h"],
                "training_data.timeframes.base_timeframe": "1h",
            },
            "training_data.timeframes.list",
            ("at least 2",),
        ),
        (
            {"training_data.timeframes.list": ["1h", "1h"]},
            "training_data.timeframes.list",
            ("twice",),
        ),
        (
            {"training_data.timeframes.base_timeframe": "4h"},
            "training_data.timeframes.base_timeframe",
            ("1h, 1d",),
        ),
        (
            {"training_data.timeframes.list": ["1h", "1x"]},
            "training_data.timeframes.list[1]",
            ("5m", "1w"),
        ),
        (
            {"training_data.timeframes": {"mode": "single", "timeframe": "0d"}},
            "training_data.timeframes.timeframe",
            ("timeframe",),
        ),
        ({"training_data.history_required": -1}, "training_data.history_required", ("≥ 0",)),
        ({"training_data.history_required": 1.5}, "training_data.history_required", ("whole",)),
    ],
)
def test_training_data(changes: dict[str, object], path: str, words: tuple[str, ...]) -> None:
    _assert_one_problem(changes, path, *words)


def test_single_timeframe_with_matching_base_is_valid() -> None:
    changes = {
        "training_data.timeframes": {"mode": "single", "timeframe": "4h", "base_timeframe": "4h"}
    }
    assert check_strategy_text(_edited(changes)) == []


# -- indicators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[], {"name": "rsi"}, "rsi", None])
def test_indicators_must_be_a_non_empty_list(value: object) -> None:
    problems = check_strategy_text(_edited({"indicators": value}))
    assert "non-empty list" in _problem_at(problems, "indicators").message


def test_indicator_item_must_be_a_mapping() -> None:
    problems = check_strategy_text(_edited({"indicators[1]": "macd"}))
    assert "mapping" in _problem_at(problems, "indicators[1]").message


def test_unknown_indicator_lists_the_known_ones() -> None:
    problem = _problem_at(
        check_strategy_text(_edited({"indicators[0].name": "rsii"})), "indicators[0].name"
    )
    assert all(name in problem.message for name in ("macd", "williamsr", "obv"))
    assert "did you mean `rsi`" in problem.message
    assert problem.value == "'rsii'"


def test_indicator_without_name() -> None:
    problems = check_strategy_text(_edited({"indicators[4].name": _DELETE}))
    assert "needs `name`" in _problem_at(problems, "indicators[4].name").message


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        # A key close to a parameter is a typo; others KTRDR dropped (see the test below).
        ({"indicators[0].peroid": 14}, "indicators[0].peroid", ("did you mean `period`",)),
        (
            {"indicators[1].fast": 5, "indicators[1].fast_period": 5},
            "indicators[1].fast",
            ("same parameter",),
        ),
        ({"indicators[0].period": True}, "indicators[0].period", ("whole number",)),
        ({"indicators[0].period": 14.5}, "indicators[0].period", ("whole number",)),
        ({"indicators[0].period": 0}, "indicators[0].period", ("[2, 100]",)),  # KTRDR's RSI
        ({"indicators[0].period": "14"}, "indicators[0].period", ("whole number",)),
        ({"indicators[1].fast_period": 30}, "indicators[1].fast_period", ("slow_period", "26")),
        (
            {"indicators[1].fast_period": 10, "indicators[1].slow_period": 10},
            "indicators[1].fast_period",
            ("less than",),
        ),
        ({"indicators[4].std_dev": 0}, "indicators[4].std_dev", ("(0, 10]",)),  # = multiplier
        ({"indicators[4].std_dev": True}, "indicators[4].std_dev", ("number",)),
        ({"indicators[2].source": "hl2"}, "indicators[2].source", ("open", "close")),
    ],
)
def test_indicator_parameters(
    changes: dict[str, object], path: str, words: tuple[str, ...]
) -> None:
    _assert_one_problem(changes, path, *words)


def test_feature_id_must_be_an_identifier() -> None:
    problems = check_strategy_text(_edited({"indicators[2].feature_id": "sma fast"}))
    assert "letters" in _problem_at(problems, "indicators[2].feature_id").message


@pytest.mark.parametrize(
    ("index", "key", "value", "words"),
    [
        (3, "period", 3, "takes no parameters"),  # obv, below
        (0, "length", 14, "it takes period"),
        (1, "fast_length", 5, "fast_period"),
        (0, "timeframe", "1h", "does not take"),
    ],
)
def test_parameters_ktrdr_dropped_are_kept_and_noticed(
    index: int, key: str, value: object, words: str
) -> None:
    # Changed on purpose (decision 11): KTRDR dropped unknown parameters silently; they load.
    changes: dict[str, object] = {f"indicators[{index}].{key}": value}
    if index == 3:
        changes.update({"indicators[3]": {"name": "obv", key: value}, "fuzzy_sets.atr": _DELETE})
        changes["fuzzy_sets.obv"] = {"any": {"type": "gaussian", "parameters": [0, 1]}}
    spec = load_strategy(_edited(changes))
    indicator_id = list(spec.indicators)[index]
    assert spec.ignored[f"indicators.{indicator_id}.{key}"] == value
    (notice,) = [n for n in spec.notices if n.path == f"indicators[{index}].{key}"]
    assert words in notice.message and "dropped it silently" in notice.message


def test_duplicate_feature_id_asks_for_distinct_ids() -> None:
    changes = {"indicators[3]": {"name": "rsi", "period": 21}, "fuzzy_sets.atr": _DELETE}
    problem = _assert_one_problem(changes, "indicators[3].feature_id", "indicators[0]", "distinct")
    assert problem.value == "'rsi'"


# -- fuzzy_sets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"fuzzy_sets": {}}, "fuzzy_sets", ("feature_id",)),
        ({"fuzzy_sets.rsi": {}}, "fuzzy_sets.rsi", ("set names",)),
        # [a, b, c] and [a, b, c, d] are shorthand (decision 8); other lists are not.
        ({"fuzzy_sets.rsi.low": [0, 40]}, "fuzzy_sets.rsi.low", ("bare list",)),
        ({"fuzzy_sets.rsi.low": "low"}, "fuzzy_sets.rsi.low", ("mapping",)),
        (
            {"fuzzy_sets.rsi.low.type": "bell"},
            "fuzzy_sets.rsi.low.type",
            ("triangular", "gaussian"),
        ),
        ({"fuzzy_sets.rsi.low.type": _DELETE}, "fuzzy_sets.rsi.low.type", ("missing",)),
        ({"fuzzy_sets.rsi.low.parameters": _DELETE}, "fuzzy_sets.rsi.low.parameters", ("missing",)),
        (
            {"fuzzy_sets.rsi.low.parameters": [0, "a", 4]},
            "fuzzy_sets.rsi.low.parameters",
            ("numbers",),
        ),
        (
            {"fuzzy_sets.rsi.low.parameters": [0, True, 4]},
            "fuzzy_sets.rsi.low.parameters",
            ("numbers",),
        ),
        (
            {"fuzzy_sets.rsi.low.parameters": [0, 40]},
            "fuzzy_sets.rsi.low.parameters",
            ("[a, b, c]",),
        ),
        (
            {"fuzzy_sets.rsi.low.parameters": [40, 20, 0]},
            "fuzzy_sets.rsi.low.parameters",
            ("a ≤ b ≤ c",),
        ),
        (
            {"fuzzy_sets.rsi.low.parameters": [20, 20, 20]},
            "fuzzy_sets.rsi.low.parameters",
            ("a < c",),
        ),
        (
            {"fuzzy_sets.macd.negative.parameters": [-5, -1, -5, 0]},
            "fuzzy_sets.macd.negative.parameters",
            ("a ≤ b ≤ c ≤ d",),
        ),
        (
            {"fuzzy_sets.macd.negative.parameters": [-5, -1, 0]},
            "fuzzy_sets.macd.negative.parameters",
            ("[a, b, c, d]",),
        ),
        (
            {"fuzzy_sets.macd.positive.parameters": [1, 0]},
            "fuzzy_sets.macd.positive.parameters",
            ("sigma > 0",),
        ),
        (
            {"fuzzy_sets.macd.positive.parameters": [1, 0.5, 2]},
            "fuzzy_sets.macd.positive.parameters",
            ("[mean, sigma]",),
        ),
    ],
)
def test_fuzzy_sets(changes: dict[str, object], path: str, words: tuple[str, ...]) -> None:
    _assert_one_problem(changes, path, *words)


def test_fuzzy_sets_for_undeclared_feature_lists_the_declared_ones() -> None:
    changes = {"fuzzy_sets.sma": {"near": {"type": "gaussian", "parameters": [1, 0.1]}}}
    problem = _assert_one_problem(changes, "fuzzy_sets.sma", "rsi, macd, sma_fast, atr, bbands")
    assert "did you mean `sma_fast`" in problem.message


# -- model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"model.type": "cnn"}, "model.type", ("mlp",)),
        (
            {"model.architecture.hidden_layers": []},
            "model.architecture.hidden_layers",
            ("non-empty",),
        ),
        (
            {"model.architecture.hidden_layers": [8, 0]},
            "model.architecture.hidden_layers",
            ("≥ 1",),
        ),
        ({"model.architecture.hidden_layers": "64"}, "model.architecture.hidden_layers", ("list",)),
        ({"model.architecture.activation": 3}, "model.architecture.activation", ("gelu",)),
        ({"model.architecture.dropout": 1.0}, "model.architecture.dropout", ("[0, 1)",)),
        ({"model.architecture.dropout": -0.1}, "model.architecture.dropout", ("[0, 1)",)),
        ({"model.features.lookback_periods": -1}, "model.features.lookback_periods", ("≥ 0",)),
        (
            {"model.features.scale_features": "yes please"},
            "model.features.scale_features",
            ("true or false",),
        ),
        ({"model.training.learning_rate": 0}, "model.training.learning_rate", ("> 0",)),
        ({"model.training.learning_rate": True}, "model.training.learning_rate", ("number",)),
        (
            {"model.training.learning_rate": float("nan")},
            "model.training.learning_rate",
            ("number",),
        ),
        ({"model.training.batch_size": 0}, "model.training.batch_size", ("≥ 1",)),
        ({"model.training.epochs": 2.5}, "model.training.epochs", ("whole number",)),
        ({"model.training.optimizer": 3}, "model.training.optimizer", ("adamw", "rmsprop")),
        ({"model.training.weight_decay": -1}, "model.training.weight_decay", ("≥ 0",)),
        (
            {"model.training.early_stopping.patience": 0},
            "model.training.early_stopping.patience",
            ("≥ 1",),
        ),
        (
            {"model.training.early_stopping.monitor": "loss"},
            "model.training.early_stopping.monitor",
            ("val_loss",),
        ),
        (
            {"model.training.early_stopping.min_delta": -1},
            "model.training.early_stopping.min_delta",
            ("≥ 0",),
        ),
    ],
)
def test_model(changes: dict[str, object], path: str, words: tuple[str, ...]) -> None:
    _assert_one_problem(changes, path, *words)


def test_model_sections_default_when_left_out() -> None:
    spec = load_strategy(_edited({"model": {}}))
    assert spec.model.architecture.hidden_layers == [50, 25]
    assert spec.model.training.optimizer == "adam"


# -- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"training.labels.source": "zigzagg"}, "training.labels.source", ("did you mean",)),
        ({"training.labels.source": "tick_bars"}, "training.labels.source", ("no KTRDR",)),
        ({"training.method": "reinforcement_learning"}, "training.method", ("no KTRDR",)),
        ({"training.labels.zigzag_threshold": 0}, "training.labels.zigzag_threshold", ("(0, 1)",)),
        ({"training.labels.zigzag_threshold": 1}, "training.labels.zigzag_threshold", ("(0, 1)",)),
        ({"training.labels.label_lookahead": 0}, "training.labels.label_lookahead", ("≥ 1",)),
        ({"training.data_split.test": 0}, "training.data_split.test", ("> 0",)),
    ],
)
def test_training(changes: dict[str, object], path: str, words: tuple[str, ...]) -> None:
    _assert_one_problem(changes, path, *words)


def test_data_split_must_sum_to_one_and_says_what_it_sums_to() -> None:
    problem = _assert_one_problem(
        {"training.data_split.train": 0.7}, "training.data_split", "sum to 1"
    )
    assert "1.1" in problem.message


def test_data_split_sum_counts_defaults() -> None:
    changes = {"training.data_split": {"train": 0.8, "test": 0.1}}
    problem = _assert_one_problem(changes, "training.data_split", "1.05", "(default)")
    assert "validation 0.15" in problem.message


def test_data_split_without_test_leaves_the_remainder() -> None:
    # Changed on purpose: as KTRDR v3, a missing `test` is what train and validation leave.
    spec = load_strategy(_edited({"training.data_split": {"train": 0.8, "validation": 0.1}}))
    assert spec.training.data_split.test == pytest.approx(0.1)
    _assert_one_problem(
        {"training.data_split": {"train": 0.9, "validation": 0.1}},
        "training.data_split",
        "leave a test fraction",
    )


def test_data_split_tolerates_rounding() -> None:
    changes = {"training.data_split": {"train": 0.7, "validation": 0.2, "test": 0.1}}
    assert check_strategy_text(_edited(changes)) == []


# -- lines and rendering -------------------------------------------------------------------------

LINED = textwrap.dedent(
    """\
    name: lined
    indicators:
      - name: rsi
      - name: sma
        period: 0
    fuzzy_sets:
      rsi:
        low: {type: triangular, parameters: [0, 20, 35]}
      sma:
        near:
          type: gaussian
          parameters: [1.0, -0.1]
    model:
      architecture:
        hidden_layerz: [8]
    training:
      labels: {zigzag_threshold: 0.05}
    """
)


def test_lines_point_at_the_offending_value_or_key() -> None:
    problems = {p.path: p for p in check_strategy_text(LINED, file="lined.yaml")}
    assert problems["indicators[1].period"].line == 5
    assert problems["fuzzy_sets.sma.near.parameters"].line == 12
    assert problems["model.architecture.hidden_layerz"].line == 15
    assert len(problems) == 3


def test_render_has_file_line_path_message_and_value() -> None:
    problems = check_strategy_text(LINED, file="lined.yaml")
    rendered = _problem_at(problems, "indicators[1].period").render()
    # KTRDR's SMA period lies in [2, 500].
    assert rendered.startswith("lined.yaml:5: indicators[1].period: must be a whole number in [2")
    assert rendered.endswith("(got 0)")


def test_missing_key_points_at_its_section() -> None:
    # Every catalog parameter has a default (as in KTRDR); an indicator's `name` is required.
    text = LINED.replace("  - name: sma\n    period: 0\n", "  - source: close\n    period: 20\n")
    problem = _problem_at(check_strategy_text(text), "indicators[1].name")
    assert problem.line == 4
    assert problem.value is None


# -- conversion fallback -------------------------------------------------------------------------


def test_conversion_error_becomes_a_problem_with_its_path() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"epochs": "many"}, ModelTrainingSpec)
    problem = _conversion_problem(caught.value, "s.yaml")
    assert problem.path == "epochs"
    assert "Expected `int`" in problem.message
    assert problem.file == "s.yaml"


def test_spec_round_trips_through_builtins() -> None:
    spec = load_strategy(yaml.safe_dump(VALID))
    assert msgspec.convert(msgspec.to_builtins(spec), StrategySpec) == spec


def test_checker_never_raises_on_odd_values() -> None:
    odd: list[Callable[[dict[Any, Any]], None]] = [
        lambda d: d.update({1: "numeric key"}),
        lambda d: d["fuzzy_sets"].update({2: {"x": {"type": "gaussian", "parameters": [0, 1]}}}),
        lambda d: d["fuzzy_sets"]["rsi"].update({3: {"type": "gaussian", "parameters": [0, 1]}}),
        lambda d: d["indicators"].append({"name": ["rsi"]}),
        lambda d: d["training_data"].update({"timeframes": {"mode": "single", "timeframe": 1}}),
    ]
    for mutate in odd:
        data = copy.deepcopy(VALID)
        mutate(data)
        problems = check_strategy_text(yaml.safe_dump(data))
        assert problems, f"expected a problem after {data}"


def test_unknown_indicator_does_not_cascade_into_fuzzy_sets() -> None:
    _assert_one_problem({"indicators[0].name": "rsx"}, "indicators[0].name", "unknown indicator")
