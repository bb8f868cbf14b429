"""``model`` and the hyper-parameters, checked and resolved.

Hyper-parameters (:attr:`ModelTrainingSpec.HYPERPARAMETERS`) come from ``training.*`` first,
then ``model.training.*``, then the defaults (decision 5), and the model records where each
came from. KTRDR read them from ``model.training`` up to v2 and from ``training`` (epochs,
learning rate, batch size only) in v3; every value that differs from what KTRDR's training
would have used for the file is noticed. Early stopping runs when the file asks for it
(``enabled: false`` turns it off).

``model.training.analytics`` (KTRDR's analytics switch) is read here: ``enabled: true`` records
detailed analytics with the model; its other keys (``export_csv`` …) are kept with a notice.

Model types are ``mlp``, ``lstm`` and ``gru``; ``transformer`` and ``cnn_lstm`` (which no KTRDR
version could train) are refused. An unknown activation is ``relu`` and an unknown optimizer
``adam``, as KTRDR silently did, with a notice.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._field_rules import FieldChecker
from ktrdr_lib.strategy._kept_keys import KEPT_KEYS, set_aside_keys
from ktrdr_lib.strategy._layout import LEGACY_DEFAULTS
from ktrdr_lib.strategy._spec_types import struct_fields, yaml_keys
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.sections import (
    Activation,
    AnalyticsSpec,
    ArchitectureSpec,
    EarlyStoppingSpec,
    FeaturesSpec,
    ModelSpec,
    ModelTrainingSpec,
    ModelType,
    Optimizer,
)

__all__ = ["Hyperparameters", "read_model", "take_hyperparameters"]

_HYPER = ModelTrainingSpec.HYPERPARAMETERS
_ACTIVATIONS: tuple[str, ...] = typing.get_args(Activation)
_OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
_KTRDR_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
_KTRDR_OPTIMIZERS = ("adam", "sgd", "rmsprop")
_NEVER_TRAINED = {"transformer", "cnn_lstm", "cnn", "cnnlstm"}
_SILENT_OUTPUTS = ("softmax", "linear", "none")


@dataclass
class Hyperparameters:
    """Hyper-parameter values as written: key → (value, where in the file)."""

    written: dict[str, dict[str, tuple[object, FieldPath]]] = field(
        default_factory=lambda: {"training": {}, "model.training": {}}
    )


def take_hyperparameters(
    section: dict[Any, Any], path: FieldPath, into: Hyperparameters
) -> dict[Any, Any]:
    """``section`` without its hyper-parameter keys, which go to ``into``."""
    name = ".".join(str(part) for part in path)
    rest = {}
    for key, value in section.items():
        if key in _HYPER:
            into.written[name][str(key)] = (value, (*path, str(key)))
        else:
            rest[key] = value
    return rest


class _ModelReader:
    def __init__(
        self,
        checker: FieldChecker,
        layout: StrategyLayout,
        regression: bool,
    ) -> None:
        self.checker = checker
        self.layout = layout
        self.regression = regression
        self.switched_off = False  # `enabled: false` was written (and noticed)

    def section(self, parent: dict[Any, Any], key: str, path: FieldPath) -> dict[Any, Any]:
        """The mapping under ``key`` (empty when absent; anything else reported)."""
        if key not in parent:
            return {}
        value = parent[key]
        if isinstance(value, dict):
            return dict(value)
        self.checker.add(
            (*path, key), "must be a mapping (indented `key: value` lines)", show_value(value)
        )
        return {}

    def model_type(self, model: dict[Any, Any]) -> str | None:
        written = model.get("type", "mlp")
        choices: tuple[str, ...] = typing.get_args(ModelType)
        if isinstance(written, str) and written.strip().lower() in choices:
            return written.strip().lower()
        if isinstance(written, str) and written.strip().lower() in _NEVER_TRAINED:
            self.checker.add(
                ("model", "type"),
                f"no KTRDR version could train a `{written}` model (its trainer built only "
                f"MLP, LSTM and GRU networks); use one of: {', '.join(choices)}",
                show_value(written),
            )
        else:
            self.checker.add(
                ("model", "type"), f"must be one of: {', '.join(choices)}", show_value(written)
            )
        return None

    def architecture(self, model: dict[Any, Any], kind: str) -> dict[str, Any]:
        path: FieldPath = ("model", "architecture")
        section = self.section(model, "architecture", ("model",))
        output = section.pop("output_activation", None)
        section = set_aside_keys(
            self.checker, section, path, yaml_keys(ArchitectureSpec, exclude=("output_activation",))
        )
        if output is not None and not (
            isinstance(output, str) and output.lower() in _SILENT_OUTPUTS
        ):
            self.checker.set_aside(
                (*path, "output_activation"),
                "model.architecture.output_activation",
                output,
                KEPT_KEYS["model.architecture"]["output_activation"],
            )
        activation = section.get("activation")
        if isinstance(activation, str):
            chosen = activation.strip().lower()
            if chosen not in _ACTIVATIONS:
                self.checker.note(
                    (*path, "activation"),
                    f"unknown activation `{activation}`: relu is used, as KTRDR did silently",
                    activation,
                )
                chosen = "relu"
            elif chosen not in _KTRDR_ACTIVATIONS:
                self.checker.note(
                    (*path, "activation"),
                    f"{chosen} is used; KTRDR knew no `{chosen}` and silently used relu",
                    activation,
                )
            section["activation"] = chosen
        self.checker.walk(section, ArchitectureSpec, path)
        if kind in ("lstm", "gru") and "sequence_length" not in section:
            self.checker.add(
                (*path, "sequence_length"),
                f"a {kind} model needs `sequence_length` (rows per input window), e.g. 20",
            )
        return section

    def features(self, model: dict[Any, Any]) -> dict[str, Any]:
        path: FieldPath = ("model", "features")
        section = self.section(model, "features", ("model",))
        section = set_aside_keys(self.checker, section, path, yaml_keys(FeaturesSpec))
        self.checker.walk(section, FeaturesSpec, path)
        if self.layout == "legacy" and "lookback_periods" not in section:
            section["lookback_periods"] = LEGACY_DEFAULTS["lookback_periods"]
        lookback = section.get("lookback_periods")
        if self.layout == "v3" and isinstance(lookback, int) and lookback > 0:
            self.checker.note(
                (*path, "lookback_periods"),
                f"{lookback} lagged copies of every input are added; KTRDR's v3 training "
                "ignored lookback_periods",
                lookback,
            )
        if section.get("include_price_context") is True:
            self.checker.note(
                (*path, "include_price_context"),
                "price context columns are added; KTRDR ignored include_price_context (its "
                "inputs were memberships only)",
                True,
            )
        return section

    def early_stopping(self, value: object, path: FieldPath) -> dict[str, Any] | None:
        """An early-stopping section (``enabled: false`` → ``None``)."""
        if not isinstance(value, dict):
            self.checker.add(path, "must be a mapping (indented `key: value` lines)")
            return None
        section = dict(value)
        enabled = section.pop("enabled", True)
        if not isinstance(enabled, bool):
            self.checker.add((*path, "enabled"), "must be true or false", show_value(enabled))
            return None
        section = set_aside_keys(self.checker, section, path, yaml_keys(EarlyStoppingSpec))
        self.checker.walk(section, EarlyStoppingSpec, path)
        if not enabled:
            self.switched_off = True
            if self.layout != "v3":
                self.checker.note(
                    (*path, "enabled"),
                    "early stopping is off; KTRDR ignored `enabled` and stopped early "
                    "whenever this section was present",
                    False,
                )
            return None
        return section

    def analytics(self, parent: dict[Any, Any]) -> dict[str, Any]:
        """``model.training.analytics`` as the spec reads it (``enabled`` only; the rest kept
        and noticed)."""
        path: FieldPath = ("model", "training", "analytics")
        section = self.section(parent, "analytics", ("model", "training"))
        section = set_aside_keys(self.checker, section, path, yaml_keys(AnalyticsSpec))
        self.checker.walk(section, AnalyticsSpec, path)
        return section

    def resolve(self, written: Hyperparameters) -> tuple[dict[str, Any], dict[str, str]]:
        """The resolved hyper-parameters and where each came from."""
        fields = {f.encode_name: f for f in struct_fields(ModelTrainingSpec)}
        resolved: dict[str, Any] = {}
        sources: dict[str, str] = {}
        defaults = {key: fields[key].default for key in _HYPER}
        if self.regression:
            defaults["weight_decay"] = 0.0
        for key in _HYPER:
            top = written.written["training"].get(key)
            nested = written.written["model.training"].get(key)
            chosen = top or nested
            if top is not None and nested is not None and top[0] != nested[0]:
                self.checker.note_at_key(
                    nested[1],
                    f"not used: training.{key} ({show_value(top[0])}) comes first",
                )
            if chosen is None:
                resolved[key] = defaults[key]
                sources[key] = "default"
                continue
            value, path = chosen
            sources[key] = ".".join(str(part) for part in path)
            if key == "early_stopping" and value is None:
                resolved[key] = None
            elif key == "early_stopping":
                resolved[key] = self.early_stopping(value, path)
            elif key == "optimizer" and isinstance(value, str):
                resolved[key] = self.optimizer(value, path)
            elif self.checker.check_value(value, fields[key].type, path):
                resolved[key] = value
        self.compare_with_ktrdr(written, resolved, sources)
        return resolved, sources

    def optimizer(self, written: str, path: FieldPath) -> str:
        chosen = written.strip().lower()
        if chosen in _OPTIMIZERS:
            return chosen
        self.checker.note(
            path, f"unknown optimizer `{written}`: Adam is used, as KTRDR did silently", written
        )
        return "adam"

    def ktrdr_value(self, key: str, written: Hyperparameters) -> object:
        """What KTRDR's training of this layout used for ``key`` (``"on"`` for early
        stopping that ran)."""
        defaults: dict[str, object] = {
            "epochs": 100,
            "learning_rate": 0.001,
            "batch_size": 32,
            "optimizer": "adam",
            "weight_decay": 0.0 if self.regression and self.layout == "v3" else 0.0001,
            "early_stopping": None,
        }
        read_by_ktrdr = ("epochs", "learning_rate", "batch_size") if self.layout == "v3" else _HYPER
        section = "training" if self.layout == "v3" else "model.training"
        found = written.written[section].get(key) if key in read_by_ktrdr else None
        if found is None:
            return defaults[key]
        value = found[0]
        if key == "optimizer" and isinstance(value, str):
            return value.lower() if value.lower() in _KTRDR_OPTIMIZERS else "adam"
        if key == "early_stopping":
            return "on" if isinstance(value, dict) else None
        return value

    def compare_with_ktrdr(
        self, written: Hyperparameters, resolved: dict[str, Any], sources: dict[str, str]
    ) -> None:
        """Notice each hyper-parameter KTRDR's training would have set differently."""
        era = "v3" if self.layout == "v3" else "v2"
        for key in _HYPER:
            if sources[key] == "default" or key not in resolved:
                continue
            if key == "early_stopping" and self.switched_off:
                continue
            ours, theirs = resolved[key], self.ktrdr_value(key, written)
            if key == "early_stopping":
                ours = "on" if ours is not None else None
            if ours == theirs:
                continue
            if key == "early_stopping":
                shown = "early stopping is on" if ours else "early stopping is off"
                what = "early stopping" if theirs else "no early stopping"
            else:
                shown, what = f"{key} {show_value(ours)} is used", f"{key} {show_value(theirs)}"
            path = written.written[sources[key].rpartition(".")[0]][key][1]
            self.checker.note(
                path,
                f"{shown} (from {sources[key]}); KTRDR's {era} training would have used {what}",
            )


def read_model(
    checker: FieldChecker,
    top: dict[Any, Any],
    layout: StrategyLayout,
    written: Hyperparameters,
    *,
    regression: bool,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """``model`` in canonical form with resolved hyper-parameters, and their sources.

    Args:
        checker: collects problems and notices.
        top: the whole strategy mapping.
        layout: the file's layout.
        written: hyper-parameters already taken from ``training`` (this adds
            ``model.training``'s).
        regression: whether the strategy predicts a value (weight decay defaults to 0).
    """
    if "model" not in top:
        return None, {}  # reported as a missing required section
    raw = top["model"]
    if not isinstance(raw, dict):
        checker.add(("model",), "must be a mapping (indented `key: value` lines)", show_value(raw))
        return None, {}
    reader = _ModelReader(checker, layout, regression)
    model = set_aside_keys(checker, dict(raw), ("model",), yaml_keys(ModelSpec))
    kind = reader.model_type(model)
    training = reader.section(model, "training", ("model",))
    analytics = reader.analytics(training)
    training.pop("analytics", None)
    training = take_hyperparameters(training, ("model", "training"), written)
    set_aside_keys(checker, training, ("model", "training"), yaml_keys(ModelTrainingSpec))
    resolved, sources = reader.resolve(written)
    resolved["analytics"] = analytics
    if kind is None:  # a model no KTRDR version could train: its architecture is not read
        return None, {}
    return {
        "type": kind,
        "architecture": reader.architecture(model, kind),
        "features": reader.features(model),
        "training": resolved,
    }, sources
