"""The strategy file as a whole: its layout, its sections, and the rules across fields.

:class:`StrategyChecker` reads a parsed strategy mapping of any layout (legacy, v2, v3) into
the internal model's mapping (:class:`~ktrdr_lib.strategy.spec.StrategySpec`'s shape),
collecting every problem, every notice (where the file trains differently from what KTRDR
would have done) and the keys KTRDR did not use either. The sections are read by one module
each: ``training_data``/``context_data`` (:mod:`~ktrdr_lib.strategy._data_rules`),
``indicators`` (:mod:`~ktrdr_lib.strategy._indicator_rules`), ``fuzzy_sets``
(:mod:`~ktrdr_lib.strategy._fuzzy_rules`), ``nn_inputs``
(:mod:`~ktrdr_lib.strategy._input_rules`), ``model`` (:mod:`~ktrdr_lib.strategy._model_rules`)
and ``training``/``decisions`` (:mod:`~ktrdr_lib.strategy._training_rules`). The rules that
tie one section's fields together (membership shapes, the split's sum) are here, run by
:meth:`StrategyChecker.after_fields` whenever a section is walked.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec
from typing_extensions import override

from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._data_rules import read_context_data, read_legacy_data, read_training_data
from ktrdr_lib.strategy._field_rules import FieldChecker
from ktrdr_lib.strategy._fuzzy_rules import read_fuzzy_sets
from ktrdr_lib.strategy._indicator_rules import read_indicators
from ktrdr_lib.strategy._input_rules import read_nn_inputs
from ktrdr_lib.strategy._kept_keys import set_aside_keys
from ktrdr_lib.strategy._layout import detect_layout, written_before_feature_ids
from ktrdr_lib.strategy._model_rules import Hyperparameters, read_model
from ktrdr_lib.strategy._spec_types import yaml_keys
from ktrdr_lib.strategy._training_rules import read_decisions, read_training
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import (
    MEMBERSHIP_PARAMETER_COUNTS,
    DataSplitSpec,
    MembershipSpec,
    StrategySpec,
)

__all__ = ["REQUIRED_SECTIONS", "StrategyChecker"]

REQUIRED_SECTIONS = ("name", "indicators", "fuzzy_sets", "model")
"""Top-level keys every strategy must have (``training`` takes its era's defaults)."""

# Keys of the internal model a file never writes, and keys only older layouts have.
_NOT_IN_YAML = ("source", "layout", "notices", "ignored", "hyperparameter_sources")
_TOP_KEYS = {*yaml_keys(StrategySpec, exclude=_NOT_IN_YAML), "data"}
_TEXT_FIELDS = ("name", "description", "version", "hypothesis")
_MEMBERSHIP_SHAPES = {
    "triangular": "[a, b, c] with a ≤ b ≤ c and a < c",
    "trapezoidal": "[a, b, c, d] with a ≤ b ≤ c ≤ d and a < d",
    "gaussian": "[mean, sigma] with sigma > 0",
    "sigmoid": "[center, slope] with a slope that is not 0",
}


def _membership_ordered(kind: str, points: list[float]) -> bool:
    if kind == "gaussian":
        return points[1] > 0
    if kind == "sigmoid":
        return points[1] != 0
    return all(a <= b for a, b in itertools.pairwise(points)) and points[0] < points[-1]


class StrategyChecker(FieldChecker):
    """Reads a parsed strategy mapping into the internal model's mapping, collecting every
    problem (:attr:`findings`), notice (:attr:`notes`) and unused key (:attr:`ignored`)."""

    def __init__(self) -> None:
        super().__init__()
        self.layout: StrategyLayout | None = None

    def check(self, top: dict[Any, Any]) -> None:
        """Check the whole strategy; the problems are in :attr:`findings`."""
        self.read(top)

    def read(self, top: dict[Any, Any]) -> dict[str, Any] | None:
        """The internal model's mapping of ``top`` (``None`` when it has problems)."""
        layout = self.layout = detect_layout(top)
        early_v2 = written_before_feature_ids(top, layout)
        own = _TOP_KEYS if layout == "legacy" else _TOP_KEYS - {"data"}
        top = set_aside_keys(self, top, (), own)
        for key in REQUIRED_SECTIONS:
            if key not in top:
                self.add(
                    (key,),
                    f"required key `{key}` is missing; every strategy needs "
                    + ", ".join(REQUIRED_SECTIONS),
                )
        skip = [key for key in _TOP_KEYS if key not in _TEXT_FIELDS]
        self.check_fields(top, StrategySpec, (), skip=[*skip, *_NOT_IN_YAML], report_missing=False)
        result: dict[str, Any] = {key: top[key] for key in _TEXT_FIELDS if top.get(key) is not None}
        training_data = (
            read_legacy_data(self, top) if layout == "legacy" else read_training_data(self, top)
        )
        if training_data is not None:
            result["training_data"] = training_data
        context_data, context_ids = read_context_data(self, top)
        if context_data:
            result["context_data"] = context_data
        table = read_indicators(self, top, layout, early_v2=early_v2, context_ids=context_ids)
        result["indicators"] = {key: read.spec for key, read in table.by_id.items()}
        fuzzy_sets = read_fuzzy_sets(self, top, layout, table, early_v2=early_v2)
        result["fuzzy_sets"] = fuzzy_sets
        timeframes = None
        if training_data is not None and "timeframes" in training_data:
            chosen = training_data["timeframes"]
            timeframes = chosen.get("list") or [chosen.get("timeframe")]
        result["nn_inputs"] = read_nn_inputs(self, top, layout, table, fuzzy_sets, timeframes)
        decisions = read_decisions(self, top)
        result["decisions"] = decisions
        regression = decisions.get("output_format") == "regression"
        written = Hyperparameters()
        training = read_training(
            self, top, layout, written, early_v2=early_v2, regression=regression
        )
        model, sources = read_model(self, top, layout, written, regression=regression)
        if self.findings or model is None or training is None:
            return None
        result.update(model=model, training=training, hyperparameter_sources=sources)
        result["ignored"] = dict(self.ignored)
        result["layout"] = layout
        return result

    @override
    def after_fields(
        self,
        struct: type[msgspec.Struct],
        mapping: dict[Any, Any],
        path: FieldPath,
        valid: set[str],
    ) -> None:
        """The rules across one section's fields, by section."""
        if struct is DataSplitSpec:
            self.check_split_sum(mapping, path, valid)
        elif struct is MembershipSpec:
            self.check_membership_shape(mapping, path, valid)

    def check_membership_shape(
        self, membership: dict[Any, Any], path: FieldPath, valid: set[str]
    ) -> None:
        """As many parameters as the type takes, in the order its shape needs."""
        if not {"type", "parameters"} <= valid:
            return
        kind, parameters = membership["type"], membership["parameters"]
        arity_ok = len(parameters) == MEMBERSHIP_PARAMETER_COUNTS[kind]
        if not arity_ok or not _membership_ordered(kind, [float(p) for p in parameters]):
            self.add(
                (*path, "parameters"),
                f"a {kind} set takes {_MEMBERSHIP_SHAPES[kind]}",
                show_value(parameters),
            )

    def check_split_sum(self, split: dict[Any, Any], path: FieldPath, valid: set[str]) -> None:
        """train + validation + test = 1 (defaults count); without ``test`` it is the
        remainder, which must be > 0."""
        defaults = msgspec.structs.asdict(DataSplitSpec())
        if any(part in split and part not in valid for part in defaults):
            return
        fractions = {part: split.get(part, default) for part, default in defaults.items()}
        if "test" not in split:
            left = 1.0 - fractions["train"] - fractions["validation"]
            if left <= DataSplitSpec.SUM_TOLERANCE:
                self.add(
                    path,
                    "train + validation must leave a test fraction (the remainder); they sum "
                    f"to {fractions['train'] + fractions['validation']:g}",
                )
            return
        total = math.fsum(fractions.values())
        if abs(total - 1.0) > DataSplitSpec.SUM_TOLERANCE:
            shown = ", ".join(
                f"{part} {value:g}" + ("" if part in split else " (default)")
                for part, value in fractions.items()
            )
            self.add(
                path, f"train + validation + test must sum to 1; they sum to {total:g} ({shown})"
            )
