"""The shared sections across layouts: training data, indicators' parameters, hyper-parameters,
keys KTRDR ignored, labels, models and decisions (KTRDR-STRATEGY-FORMATS 1.2-1.5, 2.3, 4.3,
4.4, 5 and decisions 5, 10-14).

Each strategy is written for these tests, as a small v3 (or v2) file edited per case.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from ktrdr_lib.schemas.strategies import StrategyNotice
from ktrdr_lib.strategy.loader import check_strategy, load_strategy
from ktrdr_lib.strategy.spec import (
    ContextLabelsSpec,
    EarlyStoppingSpec,
    ForwardReturnLabelsSpec,
    RegimeLabelsSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)

BASE: dict[str, Any] = {
    "name": "sections",
    "training_data": {
        "symbols": {"mode": "single", "symbol": "AAPL"},
        "timeframes": {"mode": "single", "timeframe": "1h"},
    },
    "indicators": {"rsi_14": {"type": "rsi", "period": 14}},
    "fuzzy_sets": {"rsi_zone": {"indicator": "rsi_14", "low": [0, 20, 40]}},
    "nn_inputs": [{"fuzzy_set": "rsi_zone", "timeframes": "all"}],
    "model": {"type": "mlp", "architecture": {"hidden_layers": [8]}},
    "decisions": {"output_format": "classification"},
    "training": {"labels": {"source": "zigzag", "zigzag_threshold": 0.03}},
}
_SEGMENT = re.compile(r"[^.]+")
_DELETE = object()


def _text(changes: Mapping[str, object], base: dict[str, Any] | None = None) -> str:
    """BASE (or ``base``) as YAML with each dotted path set (or deleted with _DELETE)."""
    data = copy.deepcopy(BASE if base is None else base)
    for path, value in changes.items():
        *parents, last = _SEGMENT.findall(path)
        node: Any = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def _v2(changes: Mapping[str, object]) -> str:
    base = copy.deepcopy(BASE)
    base["indicators"] = [{"name": "rsi", "feature_id": "rsi_14", "period": 14}]
    base["fuzzy_sets"] = {"rsi_14": {"low": [0, 20, 40]}}
    del base["nn_inputs"]
    return _text(changes, base)


def _notice(notices: list[StrategyNotice], path: str) -> StrategyNotice:
    found = [notice for notice in notices if notice.path == path]
    assert found, f"no notice at {path!r}; got {[n.render() for n in notices]}"
    return found[0]


def _problem(text: str, path: str, *words: str) -> None:
    problems = check_strategy(text).problems
    found = [p for p in problems if p.path == path]
    assert found, [p.render() for p in problems]
    for word in words:
        assert word in found[0].message, found[0].render()


def test_the_base_strategy_loads_without_notices() -> None:
    check = check_strategy(_text({}))
    assert check.valid and check.notices == [], [n.render() for n in check.notices]


# -- training_data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        ({"mode": "single", "list": ["EURUSD"]}, ["EURUSD"]),
        ({"mode": "single_symbol", "list": ["EURUSD", "GBPUSD"]}, ["EURUSD", "GBPUSD"]),
        ({"mode": "single", "symbol": "X", "list": ["Y"]}, ["Y"]),  # list first, as KTRDR
        ({"mode": "multi_symbol", "list": ["A", "B"]}, ["A", "B"]),
    ],
)
def test_symbols_list_wins_over_mode(symbols: dict[str, Any], expected: list[str]) -> None:
    spec = load_strategy(_text({"training_data.symbols": symbols}))
    assert spec.default_symbols() == expected
    assert spec.training_data is not None and spec.training_data.symbols is not None
    assert spec.training_data.symbols.mode == ("single" if len(expected) == 1 else "multi_symbol")


def test_single_timeframe_means_single() -> None:
    timeframes = {"mode": "single_timeframe", "list": ["4h"], "base_timeframe": "4h"}
    spec = load_strategy(_text({"training_data.timeframes": timeframes}))
    assert spec.default_timeframes() == ["4h"]
    notice = _notice(spec.notices, "training_data.timeframes.mode")
    assert "never a KTRDR mode" in notice.message


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ({"start_date": "2019-01-01", "end_date": "2021-06-30"}, "2019-01-01", "2021-06-30"),
        ({"date_range": {"start": "2018-02-01", "end": "2020-01-01"}}, "2018-02-01", "2020-01-01"),
    ],
)
def test_the_training_window(window: dict[str, Any], start: str, end: str) -> None:
    changes = {f"training_data.{key}": value for key, value in window.items()}
    spec = load_strategy(_text(changes))
    assert spec.training_data is not None
    assert (spec.training_data.start_date, spec.training_data.end_date) == (start, end)


def test_unquoted_yaml_dates_are_read_as_dates() -> None:
    text = _text({}).replace("    timeframe: 1h\n", "    timeframe: 1h\n  start_date: 2020-03-02\n")
    spec = load_strategy(text)
    assert spec.training_data is not None and spec.training_data.start_date == "2020-03-02"


def test_training_date_range_is_ignored_with_a_notice() -> None:
    spec = load_strategy(_text({"training.date_range": {"start": "2015-01-01"}}))
    assert spec.ignored["training.date_range"] == {"start": "2015-01-01"}
    assert "read nothing" in _notice(spec.notices, "training.date_range").message
    assert spec.training_data is not None and spec.training_data.start_date is None


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            {"training_data.start_date": "2021-01-01", "training_data.end_date": "2020-01-01"},
            "training_data.end_date",
            ("after",),
        ),
        (
            {"training_data.date_range": {"from": "2020-01-01"}},
            "training_data.date_range",
            ("start",),
        ),
        ({"training_data.start_date": "January"}, "training_data.start_date", ("2020-01-01",)),
    ],
)
def test_training_window_errors(
    changes: dict[str, object], path: str, words: tuple[str, ...]
) -> None:
    _problem(_text(changes), path, *words)


# -- indicators' parameters ------------------------------------------------------------------


def test_parameters_take_the_catalogs_names_and_defaults() -> None:
    indicators = {
        "bands": {"type": "BollingerBands", "std_dev": 2.5},
        "trend": {"type": "macd", "fast": 12, "slow": 26, "signal": 9},
        "dist": {"type": "distancefromma", "ma_type": "ema"},
    }
    fuzzy = {key: {"indicator": key, "z": [0, 1, 2]} for key in indicators}
    inputs = [{"fuzzy_set": key} for key in indicators]
    spec = load_strategy(
        _text({"indicators": indicators, "fuzzy_sets": fuzzy, "nn_inputs": inputs})
    )
    assert spec.indicators["bands"].params == {"period": 20, "multiplier": 2.5}
    assert spec.indicators["trend"].params == {
        "fast_period": 12,
        "slow_period": 26,
        "signal_period": 9,
    }
    assert spec.indicators["dist"].params["ma_type"] == "EMA"  # a word, matched in any case
    renamed = _notice(spec.notices, "indicators.bands.std_dev")  # KTRDR used 2.0
    assert "multiplier" in renamed.message
    assert [n.path for n in spec.notices if n.path.startswith("indicators.trend")] == []


def test_source_on_an_indicator_that_reads_no_source_is_dropped_with_a_notice() -> None:
    spec = load_strategy(
        _text(
            {
                "indicators.rsi_14.source": "open",
                "indicators.atr": {"type": "atr", "source": "high"},
            }
        )
    )
    assert spec.indicators["rsi_14"].source == "open"
    assert spec.indicators["atr"].source == "close"
    assert spec.ignored["indicators.atr.source"] == "high"
    assert "reads high, low, close" in _notice(spec.notices, "indicators.atr.source").message


@pytest.mark.parametrize(
    "name", ["volume_profile", "order_flow_imbalance", "donchian_channel", "volatility"]
)
def test_indicators_no_ktrdr_version_had_are_refused(name: str) -> None:
    _problem(
        _text({"indicators.rsi_14.type": name}),
        "indicators.rsi_14.type",
        "no KTRDR version could compute",
    )


def test_context_data_and_data_source() -> None:
    context = [
        {"provider": "ib", "symbol": "GBPUSD", "timeframe": "1h"},
        {"provider": "fred", "series": ["DGS2", "DGS10"], "frequency": "daily"},
    ]
    indicators = {
        "rsi_14": {"type": "rsi"},
        "gbp": {"type": "rsi", "data_source": "GBPUSD"},
        "curve": {"type": "roc", "data_source": "yield_spread_DGS2_DGS10"},
    }
    fuzzy = {key: {"indicator": key, "z": [0, 1, 2]} for key in indicators}
    inputs = [{"fuzzy_set": key} for key in indicators]
    changes = {
        "context_data": context,
        "indicators": indicators,
        "fuzzy_sets": fuzzy,
        "nn_inputs": inputs,
    }
    spec = load_strategy(_text(changes))
    assert [c.provider for c in spec.context_data] == ["ib", "fred"]
    assert spec.context_data[1].source_ids() == [
        "fred_DGS2",
        "fred_DGS10",
        "yield_spread_DGS2_DGS10",
    ]
    assert spec.indicators["curve"].data_source == "yield_spread_DGS2_DGS10"
    indicators["gbp"]["data_source"] = "EURGBP"
    _problem(_text(changes), "indicators.gbp.data_source", "context_data provides", "GBPUSD")


# -- hyper-parameters ------------------------------------------------------------------------


def test_hyperparameters_training_first_then_model_training_then_defaults() -> None:
    changes = {
        "training.epochs": 20,
        "model.training": {"epochs": 50, "learning_rate": 0.01},
    }
    spec = load_strategy(_text(changes))
    training = spec.model.training
    assert (training.epochs, training.learning_rate, training.batch_size) == (20, 0.01, 32)
    assert spec.hyperparameter_sources == {
        "epochs": "training.epochs",
        "learning_rate": "model.training.learning_rate",
        "batch_size": "default",
        "optimizer": "default",
        "weight_decay": "default",
        "early_stopping": "default",
    }
    assert (
        "training.epochs (20) comes first" in _notice(spec.notices, "model.training.epochs").message
    )
    # KTRDR v3 read only training.*: its learning rate would have been 0.001
    assert "0.001" in _notice(spec.notices, "model.training.learning_rate").message


def test_v2_hyperparameters_are_where_ktrdr_v2_read_them() -> None:
    spec = load_strategy(_v2({"model.training": {"epochs": 7}}))
    assert spec.model.training.epochs == 7
    assert not [n for n in spec.notices if "epochs" in n.path]
    spec = load_strategy(_v2({"training.epochs": 9}))  # v2 KTRDR never read training.epochs
    assert "would have used epochs 100" in _notice(spec.notices, "training.epochs").message


def test_early_stopping_runs_when_asked_and_enabled_false_turns_it_off() -> None:
    stop = {"patience": 4, "min_delta": 0.01}
    spec = load_strategy(_text({"training.early_stopping": stop}))
    assert spec.model.training.early_stopping == EarlyStoppingSpec(patience=4, min_delta=0.01)
    assert "no early stopping" in _notice(spec.notices, "training.early_stopping").message
    off = load_strategy(_v2({"model.training.early_stopping": {"enabled": False, "patience": 3}}))
    assert off.model.training.early_stopping is None
    assert (
        "KTRDR ignored `enabled`"
        in _notice(off.notices, "model.training.early_stopping.enabled").message
    )


def test_unknown_activation_and_optimizer_fall_back_with_a_notice() -> None:
    spec = load_strategy(
        _v2({"model.architecture.activation": "Swish", "model.training.optimizer": "adagrad"})
    )
    assert spec.model.architecture.activation == "relu"
    assert spec.model.training.optimizer == "adam"
    assert "relu is used" in _notice(spec.notices, "model.architecture.activation").message
    assert "Adam is used" in _notice(spec.notices, "model.training.optimizer").message
    gelu = load_strategy(_v2({"model.architecture.activation": "gelu"}))
    assert gelu.model.architecture.activation == "gelu"
    assert "silently used relu" in _notice(gelu.notices, "model.architecture.activation").message


# -- keys KTRDR ignored and typos ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "scope",
        "deployment",
        "orchestrator",
        "risk_management",
        "backtesting",
        "model.symbol_embedding_dim",
        "model.architecture.dropout_rate",
        "model.architecture.output_activation",
        "model.features.scaling_method",
        "model.training.lr_scheduler",
        "model.training.gradient_clip",
        "model.training.balanced_sampling",
        "training.walk_forward",
        "training.fitness_metrics",
        "training.loss_function",
        "decisions.confidence_threshold",
        "training_data.symbols.selection_criteria",
    ],
)
def test_keys_ktrdr_ignored_are_kept_and_noticed(path: str) -> None:
    value: object = "sigmoid" if path.endswith("output_activation") else {"kept": [1, 2]}
    spec = load_strategy(_text({path: value}))
    assert spec.ignored[path] == value
    assert _notice(spec.notices, path).message


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("decision", "decisions"),
        ("trainng_data", "training_data"),
        ("model.architecture.hiden_layers", "hidden_layers"),
        ("model.features.lookback_period", "lookback_periods"),
        ("model.training.learning_rat", "learning_rate"),
        ("training.data_splits", "data_split"),
        ("training.labels.zigzag_treshold", "zigzag_threshold"),
        ("nn_inputs_typo", None),
    ],
)
def test_keys_no_era_knows_are_errors_with_a_suggestion(path: str, suggestion: str | None) -> None:
    problems = check_strategy(_text({path: 1})).problems
    (problem,) = [p for p in problems if p.path == path]
    assert "unknown key" in problem.message
    if suggestion:
        assert f"did you mean `{suggestion}`" in problem.message


# -- labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"method": "zigzag", "zigzag_threshold": 0.01}, ZigzagLabelsSpec(zigzag_threshold=0.01)),
        (
            {"source": "triple_barrier", "vol_method": "close"},
            TripleBarrierLabelsSpec(vol_method="close"),
        ),
        ({"source": "context", "horizon": 3}, ContextLabelsSpec(horizon=3)),
        ({"source": "regime", "vol_lookback": 60}, RegimeLabelsSpec(vol_lookback=60)),
    ],
)
def test_label_kinds(labels: dict[str, Any], expected: object) -> None:
    assert load_strategy(_text({"training.labels": labels})).training.labels == expected


def test_missing_labels_are_zigzag_with_the_eras_defaults() -> None:
    spec = load_strategy(_text({"training.labels": _DELETE}))
    assert spec.training.labels == ZigzagLabelsSpec(zigzag_threshold=0.02, label_lookahead=10)
    assert "no training.labels" in _notice(spec.notices, "training").message


def test_triple_barrier_synonyms_are_read_as_its_parameters() -> None:
    labels = {
        "source": "triple_barrier",
        "profit_target_atr": 2.0,
        "max_holding_bars": 24,
        "atr_period": 14,
    }
    spec = load_strategy(_text({"training.labels": labels}))
    assert spec.training.labels == TripleBarrierLabelsSpec(
        pt_multiplier=2.0, max_holding_period=24, vol_span=14
    )
    assert (
        "used max_holding_period 50"
        in _notice(spec.notices, "training.labels.max_holding_bars").message
    )
    assert not [
        n for n in spec.notices if n.path == "training.labels.profit_target_atr"
    ]  # = default


def test_regression_with_forward_return_labels() -> None:
    changes = {
        "decisions": {
            "output_format": "regression",
            "cost_model": {"round_trip_cost": 0.001, "min_edge_multiplier": 2},
        },
        "training.labels": {"source": "forward_return", "horizon": 12},
        "training.loss": "mse",
    }
    spec = load_strategy(_text(changes))
    assert spec.decisions.output_format == "regression"
    assert spec.training.labels == ForwardReturnLabelsSpec(horizon=12)
    assert spec.training.loss == "mse"
    assert spec.model.training.weight_decay == 0.0  # KTRDR's regression default
    del changes["training.loss"]
    huber = load_strategy(_text(changes))
    assert huber.training.loss == "huber"


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            {"training.labels": {"source": "tick_bars"}},
            "training.labels.source",
            ("no KTRDR version",),
        ),
        (
            {"training.labels": {"source": "forward_return"}},
            "training.labels.source",
            ("regression",),
        ),
        ({"training.loss": "huber"}, "training.loss", ("cross_entropy, focal",)),
        ({"training.method": "reinforcement_learning"}, "training.method", ("no KTRDR version",)),
        (
            {"training.labels": {"source": "context", "bearish_threshold": 0.01}},
            "training.labels.bearish_threshold",
            ("below",),
        ),
        (
            {
                "training.labels": {
                    "source": "triple_barrier",
                    "stop_loss_atr": 1,
                    "sl_multiplier": 1,
                }
            },
            "training.labels.stop_loss_atr",
            ("only `sl_multiplier`",),
        ),
        ({"decisions.output_format": "ranking"}, "decisions.output_format", ("regression",)),
        (
            {"decisions.cost_model": {"round_trip_cost": 0}},
            "decisions.cost_model.round_trip_cost",
            ("> 0",),
        ),
    ],
)
def test_label_loss_and_decision_errors(
    changes: dict[str, object], path: str, words: tuple[str, ...]
) -> None:
    _problem(_text(changes), path, *words)


# -- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "GRU"])
def test_sequence_models(kind: str) -> None:
    model = {
        "type": kind,
        "architecture": {"sequence_length": 16, "hidden_size": 24, "num_layers": 3},
    }
    spec = load_strategy(_text({"model": model}))
    assert spec.model.type == kind.lower()
    assert (spec.model.architecture.sequence_length, spec.model.architecture.hidden_size) == (
        16,
        24,
    )
    del model["architecture"]["sequence_length"]  # type: ignore[attr-defined]
    _problem(
        _text({"model": model}), "model.architecture.sequence_length", "needs `sequence_length`"
    )


@pytest.mark.parametrize("kind", ["transformer", "cnn_lstm"])
def test_models_no_ktrdr_version_could_train_are_refused(kind: str) -> None:
    _problem(_text({"model.type": kind}), "model.type", "no KTRDR version could train", kind)


# -- the split -------------------------------------------------------------------------------


def test_split_notices_per_era() -> None:
    late = load_strategy(
        _v2({"training.data_split": {"train": 0.8, "validation": 0.1, "test": 0.1}})
    )
    assert "0.72 / 0.18 / 0.1" in _notice(late.notices, "training.data_split").message
    early = {"indicators": [{"name": "rsi"}], "fuzzy_sets": {"rsi": {"low": [0, 20, 40]}}}
    spec = load_strategy(_v2(early))  # no feature_id anywhere: written for early v2
    assert "shuffled" in _notice(spec.notices, "training").message
