"""Keys KTRDR accepted in some era but never used for training: set aside, kept, noticed.

KTRDR's models ignored unknown keys, so its strategy files carry sections and settings no
trainer read (``scope``, ``orchestrator``, ``training.walk_forward``, ``model.training.
lr_scheduler`` …). Here such a key is accepted, kept with the model
(:attr:`~ktrdr_lib.strategy.spec.StrategySpec.ignored`) and reported as a notice, while a key
that no section of any era has is still an error with a "did you mean" (typo protection).

:data:`KEPT_KEYS` lists, per section, the keys KTRDR's files are known to carry there. A
section in :data:`OPEN_SECTIONS` is one where KTRDR's files carry an open set of extras
(``model.features``, ``decisions`` …): any other key is kept as well, unless it is close to one
of the section's own fields, which is then the more likely meaning (an error).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any

from ktrdr_lib.strategy._field_rules import SUGGEST_LIMIT, FieldChecker, did_you_mean, listing
from ktrdr_lib.strategy._yaml_document import FieldPath, dotted

__all__ = ["KEPT_KEYS", "OPEN_SECTIONS", "set_aside_keys"]

_NOT_USED = "KTRDR did not use it for training either; it is kept with the model, unused"
_BOTH_FILES = (
    "with analytics enabled, analytics.json and analytics.csv are both always written with "
    "the model; it is kept with the model, unused"
)

KEPT_KEYS: dict[str, dict[str, str]] = {
    "": {
        "scope": _NOT_USED,
        "deployment": _NOT_USED,
        "orchestrator": _NOT_USED,
        "risk_management": _NOT_USED,
        "backtesting": _NOT_USED,
    },
    "training_data.symbols": {"selection_criteria": _NOT_USED},
    "model": {
        "symbol_embedding_dim": "early-v2 KTRDR appended a learned symbol embedding of this "
        "size to the inputs of every multi-symbol network; the networks here have none",
        "input_size": "the input size follows from nn_inputs; " + _NOT_USED,
        "output_size": "the output size follows from the labels; " + _NOT_USED,
        "hidden_layers": "the layers are model.architecture.hidden_layers; " + _NOT_USED,
    },
    "model.architecture": {
        "output_activation": "the network outputs class scores (softmax) or a value "
        "(regression) whatever this says; " + _NOT_USED,
        "dropout_rate": "the dropout is model.architecture.dropout; " + _NOT_USED,
        "attention_mechanism": _NOT_USED,
        "symbol_embedding_dim": _NOT_USED,
    },
    "model.training": {
        "early_stopping_patience": "the patience is early_stopping.patience; " + _NOT_USED,
        "loss_function": "the loss is training.loss; " + _NOT_USED,
    },
    "model.training.early_stopping": {"mode": _NOT_USED},
    "model.training.analytics": {
        "export_csv": _BOTH_FILES,
        "export_json": _BOTH_FILES,
        "export_alerts": "no alerts are raised from the analytics; it is kept with the "
        "model, unused",
    },
    "training": {
        "date_range": "KTRDR read nothing from training.date_range; the training window is "
        "training_data.start_date / end_date (or training_data.date_range) unless the request "
        "gives one",
        "validation_split": "the split is training.data_split; " + _NOT_USED,
        "test_size": "the split is training.data_split; " + _NOT_USED,
        "loss_function": "the loss is training.loss; " + _NOT_USED,
    },
    "training.early_stopping": {"mode": _NOT_USED},
    "training.labels.regime": {
        # H3 forwarded these to its regime labeller, which did not use them.
        "horizon": _NOT_USED,
        "trending_threshold": _NOT_USED,
    },
}
"""Section (dotted path; ``""`` is the top level) → key → the notice it gets."""

OPEN_SECTIONS = frozenset(
    {
        "model.architecture",
        "model.features",
        "model.training",
        "model.training.analytics",
        "training",
        "decisions",
    }
)
"""Sections whose other keys are kept too (KTRDR's files carry open sets of extras there)."""

_CLOSE_ENOUGH = 0.85


def set_aside_keys(
    checker: FieldChecker,
    mapping: dict[Any, Any],
    path: FieldPath,
    own: Collection[str],
    *,
    section: str | None = None,
    where: str | None = None,
) -> dict[Any, Any]:
    """``mapping`` without the keys KTRDR did not use: each kept and noticed, and each key
    that is neither the section's own nor kept reported as unknown.

    Args:
        checker: collects problems, notices and the kept values.
        mapping: the section as written.
        path: where it is in the file.
        own: the keys the section's Struct (or rule) reads.
        section: the section's name in :data:`KEPT_KEYS` (default: ``path`` dotted).
        where: the section's dotted path in the internal model (default: ``section``).

    Returns:
        The section with only its own keys (unknown ones are reported and dropped).
    """
    name = dotted(path) if section is None else section
    inside = name if where is None else where
    kept = KEPT_KEYS.get(name, {})
    is_open = name in OPEN_SECTIONS
    remaining: dict[Any, Any] = {}
    for key, value in mapping.items():
        text = str(key)
        if text in own:
            remaining[key] = value
            continue
        # An open section keeps any key that is no near miss of its own ones.
        kept_here = isinstance(key, str) and (
            text in kept
            or (
                is_open
                and not difflib.get_close_matches(text, sorted(own), n=1, cutoff=_CLOSE_ENOUGH)
            )
        )
        if kept_here:
            message = kept.get(text, _NOT_USED)
            checker.set_aside((*path, text), f"{inside}.{text}" if inside else text, value, message)
            continue
        known = listing({*own, *kept})
        hint = did_you_mean(text, own) if len(checker.findings) < SUGGEST_LIMIT else ""
        checker.add_at_key(
            (*path, text), f"unknown key; {name or 'the top level'} takes {known}{hint}"
        )
    return remaining
