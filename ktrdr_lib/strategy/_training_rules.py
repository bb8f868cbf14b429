"""``training`` (labels, split, loss) and ``decisions``, checked and normalised.

Labels: ``labels.source`` (or ``method``) picks the kind (:mod:`ktrdr_lib.strategy.label_kinds`);
missing labels are ZigZag with the era's defaults (0.02 / 10; legacy 0.03 / 20); the synonyms
two files use for the triple barrier (``profit_target_atr`` …) are read as its parameters;
``tick_bars`` labels and reinforcement learning, which no KTRDR version had, are refused.
The split is chronological with the file's fractions (``test`` may be left out: it is the
remainder), which early-v2 KTRDR shuffled and late-v2 KTRDR ignored: both noticed.
"""

from __future__ import annotations

from typing import Any

from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean
from ktrdr_lib.strategy._kept_keys import set_aside_keys
from ktrdr_lib.strategy._layout import LEGACY_DEFAULTS
from ktrdr_lib.strategy._model_rules import Hyperparameters, take_hyperparameters
from ktrdr_lib.strategy._spec_types import struct_fields, yaml_keys
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.label_kinds import LABEL_KINDS, ZigzagLabelsSpec
from ktrdr_lib.strategy.sections import CostModelSpec, DataSplitSpec, TrainingSpec

__all__ = ["read_decisions", "read_training"]

_NEVER_TRAINED_LABELS = {"tick_bars", "tickbars"}
_TRIPLE_BARRIER_SYNONYMS = {
    "profit_target_atr": "pt_multiplier",
    "stop_loss_atr": "sl_multiplier",
    "max_holding_bars": "max_holding_period",
    "atr_period": "vol_span",
}
_REGIME_FORWARDED = ("vol_lookback", "vol_crisis_threshold")
_LOSSES = {False: ("cross_entropy", "focal"), True: ("huber", "mse")}


def _default_labels(layout: StrategyLayout) -> dict[str, Any]:
    if layout == "legacy":
        return dict(LEGACY_DEFAULTS["labels"])
    defaults = ZigzagLabelsSpec()
    return {
        "source": "zigzag",
        "zigzag_threshold": defaults.zigzag_threshold,
        "label_lookahead": defaults.label_lookahead,
    }


class _TrainingReader:
    def __init__(self, checker: FieldChecker, layout: StrategyLayout, regression: bool) -> None:
        self.checker = checker
        self.layout = layout
        self.regression = regression

    def labels(self, raw: object, path: FieldPath) -> dict[str, Any] | None:
        defaults = _default_labels(self.layout)
        if raw is None:
            if self.layout != "legacy":
                self.checker.note(
                    path[:-1],
                    f"no training.labels: ZigZag labels with threshold "
                    f"{defaults['zigzag_threshold']} (KTRDR v3's default; KTRDR v2 needed them)",
                )
            return defaults
        if not isinstance(raw, dict):
            self.checker.add(
                path, "must be a mapping like `{source: zigzag, zigzag_threshold: 0.02}`"
            )
            return None
        labels = dict(raw)
        source, method = labels.pop("source", None), labels.pop("method", None)
        if source is not None and method is not None and source != method:
            self.checker.add_at_key(
                (*path, "method"), f"`method: {method}` contradicts `source: {source}`; give one"
            )
            return None
        kind = source if source is not None else method if method is not None else "zigzag"
        key = "source" if source is not None else "method"
        if not isinstance(kind, str) or kind.strip().lower() not in LABEL_KINDS:
            self.unknown_kind(kind, (*path, key))
            return None
        kind = kind.strip().lower()
        struct = LABEL_KINDS[kind]
        if kind == "zigzag" and self.layout == "legacy":
            for name in ("zigzag_threshold", "label_lookahead"):
                labels.setdefault(name, defaults[name])
        if kind == "triple_barrier":
            labels = self.triple_barrier_synonyms(labels, path)
        own = yaml_keys(struct)
        labels = set_aside_keys(
            self.checker,
            labels,
            path,
            own,
            section=f"training.labels.{kind}",
            where="training.labels",
        )
        before = len(self.checker.findings)
        self.checker.walk(labels, struct, path)
        if len(self.checker.findings) > before:
            return None
        self.kind_notes(kind, labels, path)
        return {"source": kind, **labels}

    def unknown_kind(self, kind: object, path: FieldPath) -> None:
        kinds = ", ".join(LABEL_KINDS)
        if isinstance(kind, str) and kind.strip().lower() in _NEVER_TRAINED_LABELS:
            self.checker.add(
                path,
                f"no KTRDR version could label with `{kind}` (it was never implemented), so no "
                f"model was ever trained on such labels; use one of: {kinds}",
                show_value(kind),
            )
            return
        self.checker.add(
            path, f"must be one of: {kinds}{did_you_mean(kind, LABEL_KINDS)}", show_value(kind)
        )

    def triple_barrier_synonyms(self, labels: dict[Any, Any], path: FieldPath) -> dict[Any, Any]:
        """``profit_target_atr`` and the like read as the parameters they evidently mean."""
        defaults = LABEL_KINDS["triple_barrier"]()
        result = dict(labels)
        for synonym, name in _TRIPLE_BARRIER_SYNONYMS.items():
            if synonym not in labels:
                continue
            value = result.pop(synonym)
            if name in labels:
                self.checker.add_at_key(
                    (*path, synonym), f"`{synonym}` and `{name}` say the same; give only `{name}`"
                )
                continue
            result[name] = value
            default = getattr(defaults, name)
            if value != default:
                self.checker.note(
                    (*path, synonym),
                    f"read as {name}; KTRDR ignored `{synonym}` and used {name} {default}",
                    value,
                )
        return result

    def kind_notes(self, kind: str, labels: dict[Any, Any], path: FieldPath) -> None:
        """Where KTRDR labelled differently from what the file says."""
        if kind != "zigzag" and self.layout != "v3":
            self.checker.note(
                (*path, "source"),
                f"{kind} labels are used; KTRDR's v2 training labelled with ZigZag whatever "
                "the source said",
                kind,
            )
        if kind == "zigzag" and self.layout == "v2":
            missing = [
                name for name in ("zigzag_threshold", "label_lookahead") if name not in labels
            ]
            if missing:
                self.checker.note(
                    path,
                    f"{' and '.join(missing)} not given: KTRDR v3's defaults apply (KTRDR v2 "
                    "needed both)",
                )
        if kind == "regime":
            defaults = LABEL_KINDS["regime"]()
            for name, value in labels.items():
                if name not in _REGIME_FORWARDED and value != getattr(defaults, name, value):
                    self.checker.note(
                        (*path, str(name)),
                        f"used; KTRDR passed only {' and '.join(_REGIME_FORWARDED)} to its regime "
                        f"labeller and used {name} {getattr(defaults, name)}",
                        value,
                    )
        if kind == "context":
            bullish = labels.get("bullish_threshold", 0.005)
            bearish = labels.get("bearish_threshold", -0.005)
            if (
                isinstance(bullish, int | float)
                and isinstance(bearish, int | float)
                and bearish >= bullish
            ):
                self.checker.add(
                    (*path, "bearish_threshold"),
                    f"must be below bullish_threshold ({bullish})",
                    show_value(bearish),
                )

    def split(self, raw: object, path: FieldPath, early_v2: bool) -> dict[str, Any] | None:
        where = path if raw is not None else path[:-1]
        if raw is not None and not isinstance(raw, dict):
            self.checker.add(path, "must be `{train: 0.7, validation: 0.15, test: 0.15}`")
            return None
        split = dict(raw or {})
        before = len(self.checker.findings)
        self.checker.walk(split, DataSplitSpec, path)
        if len(self.checker.findings) > before:
            return None
        defaults = DataSplitSpec()
        train = split.get("train", defaults.train)
        validation = split.get("validation", defaults.validation)
        test = split.get("test", defaults.test if raw is None else 1.0 - train - validation)
        if self.layout == "legacy" or early_v2:
            self.checker.note(
                where,
                "split chronologically; early-v2 KTRDR shuffled the rows before splitting "
                "(its split was random)",
            )
        elif self.layout == "v2":
            self.checker.note(
                where,
                f"split chronologically {train:g} / {validation:g} / {test:g}; late-v2 KTRDR "
                "ignored data_split and always split 0.72 / 0.18 / 0.1",
            )
        return {"train": train, "validation": validation, "test": round(test, 12)}

    def loss(self, training: dict[Any, Any], path: FieldPath) -> str | None:
        allowed = _LOSSES[self.regression]
        written = training.get("loss")
        if written is None:
            return allowed[0]
        chosen = written.strip().lower() if isinstance(written, str) else written
        if chosen not in allowed:
            kind = "regression" if self.regression else "classification"
            self.checker.add(
                (*path, "loss"),
                f"a {kind} strategy's loss must be one of: {', '.join(allowed)}",
                show_value(written),
            )
            return None
        if self.layout != "v3" and chosen != allowed[0]:
            self.checker.note(
                (*path, "loss"),
                f"{chosen} loss is used; KTRDR's v2 training always used cross entropy",
                written,
            )
        return str(chosen)


def read_training(
    checker: FieldChecker,
    top: dict[Any, Any],
    layout: StrategyLayout,
    written: Hyperparameters,
    *,
    early_v2: bool,
    regression: bool,
) -> dict[str, Any] | None:
    """``training`` in canonical form; its hyper-parameters go to ``written``."""
    path: FieldPath = ("training",)
    raw = top.get("training")
    if raw is None:
        if layout != "legacy":
            checker.note(
                path,
                "no training section: ZigZag labels with threshold 0.02 and a 0.7 / 0.15 / "
                "0.15 split (KTRDR's v3 defaults; its v2 trainer needed the section)",
            )
        raw = {"labels": _default_labels(layout)}
    if not isinstance(raw, dict):
        checker.add(path, "must be a mapping (indented `key: value` lines)", show_value(raw))
        return None
    reader = _TrainingReader(checker, layout, regression)
    training = take_hyperparameters(dict(raw), path, written)
    method = training.pop("method", "supervised")
    if not isinstance(method, str):
        checker.add((*path, "method"), "must be `supervised`", show_value(method))
    elif "reinforcement" in method.lower() or method.lower() == "rl":
        checker.add(
            (*path, "method"),
            f"no KTRDR version could train with `{method}` (only supervised training was ever "
            "implemented); use `supervised`",
            show_value(method),
        )
    elif method.lower() != "supervised":
        checker.set_aside(
            (*path, "method"),
            "training.method",
            method,
            "training is supervised whatever this says; KTRDR ignored training.method too",
        )
    own = yaml_keys(TrainingSpec)
    training = set_aside_keys(checker, training, path, own - {"method"})
    labels = reader.labels(training.get("labels"), (*path, "labels"))
    split = reader.split(training.get("data_split"), (*path, "data_split"), early_v2)
    loss = reader.loss(training, path)
    types = {field.encode_name: field.type for field in struct_fields(TrainingSpec)}
    for name in _PLAIN_SETTINGS:
        if name in training:
            checker.check_value(training[name], types[name], (*path, name))
    if training.get("balanced_sampling") is True:
        checker.note(
            (*path, "balanced_sampling"),
            "the loss is weighted by inverse class frequency; KTRDR read no "
            "training.balanced_sampling (its v3 training weighted every classification loss)",
            True,
        )
    if labels is None or split is None or loss is None:
        return None
    if regression != (labels["source"] == "forward_return"):
        checker.add(
            (*path, "labels", "source"),
            "forward_return labels go with `decisions.output_format: regression`, and "
            "regression with forward_return labels",
            show_value(labels["source"]),
        )
        return None
    result: dict[str, Any] = {"labels": labels, "data_split": split, "loss": loss}
    for name in _PLAIN_SETTINGS:
        if name in training:
            result[name] = training[name]
    return result


_PLAIN_SETTINGS = ("focal_gamma", "huber_delta", "balanced_sampling")
"""``training`` settings read as written, each checked against its field's type."""


def read_decisions(checker: FieldChecker, top: dict[Any, Any]) -> dict[str, Any]:
    """``decisions``: the output format and cost model (the rest is kept, unused)."""
    path: FieldPath = ("decisions",)
    raw = top.get("decisions")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        checker.add(path, "must be a mapping (indented `key: value` lines)", show_value(raw))
        return {}
    decisions = set_aside_keys(checker, dict(raw), path, {"output_format", "cost_model"})
    result: dict[str, Any] = {}
    output = decisions.get("output_format")
    if output is not None:
        chosen = output.strip().lower() if isinstance(output, str) else output
        if chosen not in ("classification", "regression"):
            checker.add(
                (*path, "output_format"),
                "must be one of: classification, regression",
                show_value(output),
            )
        else:
            result["output_format"] = chosen
    cost = decisions.get("cost_model")
    if cost is not None:
        if not isinstance(cost, dict):
            checker.add(
                (*path, "cost_model"),
                "must be `{round_trip_cost: 0.001, min_edge_multiplier: 1.5}`",
            )
        else:
            before = len(checker.findings)
            checker.walk(cost, CostModelSpec, (*path, "cost_model"))
            if len(checker.findings) == before:
                result["cost_model"] = dict(cost)
    return result
