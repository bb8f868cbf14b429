"""The indicator registry: every entry computes, keeps its declarations, and names resolve."""

from __future__ import annotations

import dataclasses
import inspect
import re

import msgspec
import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators import INDICATOR_CATALOG, compute_indicator, indicator_warmup
from ktrdr_lib.features.registry import (
    IndicatorDef,
    IndicatorParameter,
    IndicatorRegistry,
    normalize_indicator_name,
    period,
    positive_number,
)
from ktrdr_lib.strategy.spec import IndicatorSpec

ENTRIES = list(INDICATOR_CATALOG.values())
# A required parameter (a moving average's period) takes this in the tests.
REQUIRED_VALUE = 20


def _ids(entry: IndicatorDef) -> str:
    return entry.name


def _spec(entry: IndicatorDef, source: str = "close") -> IndicatorSpec:
    params = {
        p.name: float(REQUIRED_VALUE if p.default is None else p.default)
        if p.numeric
        else p.default  # a flag or a word, as written
        for p in entry.parameters
    }
    return IndicatorSpec(type=entry.name, source=source, params=params)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(600, seed=3)


# --- every entry -------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_computes_one_float_per_bar_and_settles_after_its_warmup(
    entry: IndicatorDef, bars: pd.DataFrame
) -> None:
    spec = _spec(entry)
    values = compute_indicator(spec, bars)
    warmup = indicator_warmup(spec)
    assert values.dtype == np.float64
    assert values.shape == (len(bars),)
    assert 0 <= warmup < len(bars)
    if entry.name == "zigzag":  # pivots only: NaN between them is its value, not a warm-up
        values = values[~np.isnan(values)]
    assert np.isfinite(values[warmup:]).all()
    leading_nans = int(np.argmax(~np.isnan(values)))
    assert leading_nans <= warmup


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_compute_is_its_function_on_its_declared_columns(
    entry: IndicatorDef, bars: pd.DataFrame
) -> None:
    columns = [bars["close" if c == "source" else c].to_numpy() for c in entry.inputs]
    params = {
        p.name: int(v) if p.numeric and p.whole else v
        for p, v in zip(entry.parameters, _spec(entry).params.values(), strict=True)
    }
    direct = entry.compute(*columns, **params)
    arrays = direct if isinstance(direct, tuple) else (direct,)
    assert len(arrays) == len(entry.outputs)
    np.testing.assert_array_equal(compute_indicator(_spec(entry), bars), arrays[0])


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_declares_what_its_functions_take(entry: IndicatorDef) -> None:
    names = {p.name: 1 for p in entry.parameters}
    inspect.signature(entry.compute).bind(*entry.inputs, **names)
    inspect.signature(entry.warmup).bind(**names)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_outputs_name_the_primary_first(entry: IndicatorDef) -> None:
    assert entry.outputs
    assert len(set(entry.outputs)) == len(entry.outputs)
    assert entry.primary_output == entry.outputs[0]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_reads_the_source_column_only_when_it_says_so(
    entry: IndicatorDef, bars: pd.DataFrame
) -> None:
    on_close = compute_indicator(_spec(entry, "close"), bars)
    on_high = compute_indicator(_spec(entry, "high"), bars)
    assert entry.uses_source == ("source" in entry.inputs)
    if entry.uses_source:
        assert not np.array_equal(on_close, on_high, equal_nan=True)
    else:
        np.testing.assert_array_equal(on_close, on_high)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_entry_defaults_lie_within_their_bounds(entry: IndicatorDef) -> None:
    for parameter in entry.parameters:
        if parameter.default is None:
            continue
        if not parameter.numeric:  # a flag or a word
            assert msgspec.convert(parameter.default, parameter.constraint) == parameter.default
            continue
        assert parameter.admits(parameter.default), parameter
        value = int(parameter.default) if parameter.whole else parameter.default
        assert msgspec.convert(value, parameter.constraint) == parameter.default


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.reference is not None], ids=_ids)
def test_entry_reference_names_a_talib_function(entry: IndicatorDef) -> None:
    """Entries KTRDR defines as TA-Lib's (after warm-up) name it; the tests compare the others
    with pandas statements of KTRDR's formulas."""
    assert entry.reference is not None
    functions = re.findall(r"talib\.(\w+)\(", entry.reference)
    assert functions, entry.reference
    for function in functions:
        assert callable(getattr(talib, function, None)), function


def test_catalog_holds_ktrdrs_31_indicators_by_sorted_name() -> None:
    assert list(INDICATOR_CATALOG) == sorted(INDICATOR_CATALOG)
    assert INDICATOR_CATALOG.names() == list(INDICATOR_CATALOG)
    assert set(INDICATOR_CATALOG) == {
        "adline",
        "adx",
        "aroon",
        "atr",
        "bollingerbands",
        "bollingerbandwidth",
        "cci",
        "cmf",
        "distancefromma",
        "donchianchannels",
        "exponentialmovingaverage",
        "fishertransform",
        "ichimoku",
        "keltnerchannels",
        "macd",
        "mfi",
        "momentum",
        "obv",
        "parabolicsar",
        "roc",
        "rsi",
        "rvi",
        "simplemovingaverage",
        "squeezeintensity",
        "stochastic",
        "supertrend",
        "volumeratio",
        "vwap",
        "weightedmovingaverage",
        "williamsr",
        "zigzag",
    }


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_every_name_resolves_to_its_entry(entry: IndicatorDef) -> None:
    assert INDICATOR_CATALOG.find(entry.name) is entry
    assert INDICATOR_CATALOG.require(entry.name) is entry
    assert INDICATOR_CATALOG[entry.name] is entry


def test_unknown_name_finds_nothing_and_require_suggests_the_closest() -> None:
    assert INDICATOR_CATALOG.find("rsii") is None
    assert INDICATOR_CATALOG.suggestion("rsii") == "rsi"
    assert INDICATOR_CATALOG.suggestion(3) is None
    with pytest.raises(
        ConfigError, match=r"unknown indicator 'willams_r'.*did you mean `williamsr`"
    ):
        INDICATOR_CATALOG.require("willams_r")


def test_unknown_name_without_a_close_one_lists_the_known_names() -> None:
    with pytest.raises(ConfigError) as caught:
        INDICATOR_CATALOG.require("order_flow_imbalance", where=" (feature_id 'vp')")
    message = str(caught.value)
    assert message.startswith("unknown indicator 'order_flow_imbalance' (feature_id 'vp'); known ")
    assert message.endswith(f"{INDICATOR_CATALOG.names()[-1]}.")
    assert "did you mean" not in message


def test_aliases_resolve_and_are_suggested_but_not_listed() -> None:
    rsi = dataclasses.replace(INDICATOR_CATALOG["rsi"], aliases=("relative_strength",))
    registry = IndicatorRegistry([rsi, INDICATOR_CATALOG["simplemovingaverage"]])
    assert registry.find("relative_strength") is rsi
    assert registry.names() == ["rsi", "simplemovingaverage"]
    assert registry.suggestion("relative_strenght") == "rsi"  # the name to write


@pytest.mark.parametrize(
    "spelling", ["rsi", "RSI", "Rsi", "RSIIndicator", "rsi_indicator", "relative_strength"]
)
def test_every_spelling_reduces_to_the_entry(spelling: str) -> None:
    rsi = dataclasses.replace(INDICATOR_CATALOG["rsi"], aliases=("relative_strength",))
    registry = IndicatorRegistry([rsi])
    assert registry.find(spelling) is rsi
    assert registry.find("rsx") is None


def test_names_are_matched_lower_case_without_underscores_or_a_trailing_indicator() -> None:
    assert normalize_indicator_name("BollingerBandsIndicator") == "bollingerbands"
    assert normalize_indicator_name("williams_r") == "williamsr"
    assert normalize_indicator_name(" ADX ") == "adx"
    assert normalize_indicator_name("indicator") == "indicator"


def test_a_name_or_alias_can_be_registered_once() -> None:
    rsi, sma = INDICATOR_CATALOG["rsi"], INDICATOR_CATALOG["simplemovingaverage"]
    with pytest.raises(ValueError, match="'rsi' is taken"):
        IndicatorRegistry([rsi, rsi])
    with pytest.raises(ValueError, match="'sma' is taken"):
        IndicatorRegistry([sma, dataclasses.replace(rsi, aliases=("sma",))])


def test_an_entry_declares_each_parameter_once_and_at_least_one_output() -> None:
    rsi = INDICATOR_CATALOG["rsi"]
    with pytest.raises(ValueError, match="twice"):
        dataclasses.replace(rsi, parameters=(period(), period()))
    with pytest.raises(ValueError, match="outputs"):
        dataclasses.replace(rsi, outputs=())


# --- parameters ----------------------------------------------------------------------------------


def test_parameter_bounds_are_a_msgspec_constraint() -> None:
    with pytest.raises(msgspec.ValidationError, match=">= 1"):
        msgspec.convert(0, period().constraint)
    with pytest.raises(msgspec.ValidationError, match="> 0"):
        msgspec.convert(0.0, positive_number("std_dev", 2).constraint)
    bounded = IndicatorParameter(name="fast", default=3, bounds=msgspec.Meta(ge=2, le=50))
    assert bounded.bounds_text() == ">= 2 and <= 50"
    assert bounded.admits(50) and not bounded.admits(51)
    assert msgspec.convert(-5, IndicatorParameter(name="free", whole=False).constraint) == -5.0


def test_a_parameter_without_default_is_required() -> None:
    assert period().required
    assert not period(default=14).required
    assert not any(p.required for e in INDICATOR_CATALOG.values() for p in e.parameters)
    assert INDICATOR_CATALOG["macd"].parameter("signal_period") == period(
        "signal_period", 9, bounds=msgspec.Meta(ge=1, le=50)
    )
    assert INDICATOR_CATALOG["macd"].parameter("length") is None
