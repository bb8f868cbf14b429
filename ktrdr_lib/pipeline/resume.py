"""What a run's checkpoints must match to be resumed: the strategy and the data, by fingerprint.

A run that checkpoints stores, with its checkpoints, a digest of the strategy and request it
trained (:func:`strategy_fingerprint`) and one digest per data file it read
(:func:`data_fingerprints`: ``"AAPL 1d"`` → the SHA-256 of the file that series was read
from). Resuming recomputes both and refuses (:func:`check_resumable`) when either changed,
saying which series or which strategy sections differ: a continuation must see the data and
the network it started with, or it is not a continuation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.data.loader import locate_series
from ktrdr_lib.errors import ConfigError, DataError, StateConflictError
from ktrdr_lib.features.context_series import context_series_needed
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.strategy.config import apply_overrides
from ktrdr_lib.strategy.loader import load_strategy
from ktrdr_lib.training.checkpoints import LATEST_FILE, CheckpointMeta, read_meta

__all__ = [
    "check_resumable",
    "data_fingerprints",
    "strategy_fingerprint",
    "trained_config",
]

_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprints(context: TrainingOperationContext) -> dict[str, str]:
    """The SHA-256 of the file each of the run's series (context series included) is read
    from, by ``"SYMBOL TF"``."""
    data_dir = Path(context.data_dir)
    series = [(symbol, tf) for symbol in context.symbols for tf in context.timeframes]
    plan = plan_inputs(context.strategy, context.timeframes)
    series += list(context_series_needed(context.strategy, plan))
    digests: dict[str, str] = {}
    for symbol, timeframe in series:
        path, _held = locate_series(symbol, timeframe, data_dir=data_dir)
        digests[f"{symbol} {timeframe}"] = _file_digest(path)
    return digests


def trained_config(context: TrainingOperationContext) -> dict[str, Any]:
    """The strategy (v3 layout, overrides applied) and the request fields that shape training."""
    return {
        "strategy": context.strategy_config(),
        "symbols": list(context.symbols),
        "timeframes": list(context.timeframes),
        "base_timeframe": context.base_timeframe,
        "start_date": context.start_date,
        "end_date": context.end_date,
        "seed": context.seed,
    }


def strategy_fingerprint(context: TrainingOperationContext) -> str:
    """A digest of :func:`trained_config`."""
    encoded = msgspec.json.encode(trained_config(context), order="sorted")
    return hashlib.sha256(encoded).hexdigest()


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths (two levels deep at most) where two configs differ."""
    if isinstance(old, dict) and isinstance(new, dict) and path.count(".") < 2:
        names = []
        for key in sorted(set(old) | set(new), key=str):
            names += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return names
    return [] if old == new else [path or "(all)"]


def check_resumable(context: TrainingOperationContext) -> CheckpointMeta:
    """The checkpoint a stopped run left, once its strategy and data are proven unchanged.

    The strategy is read again from its file (``strategy_path``, with the run's overrides) when
    the file still exists, so an edited file is noticed.

    Raises:
        StateConflictError: the run left no checkpoint (it stopped before its first epoch
            completed, or it ran without checkpoints).
        ConfigError: the strategy file changed (the message names the sections).
        DataError: a data file changed or is gone (the message names the series).
    """
    directory = Path(context.checkpoint_dir) if context.checkpoint_dir else None
    meta = read_meta(directory) if directory is not None else None
    if directory is None or meta is None or not (directory / LATEST_FILE).is_file():
        raise StateConflictError(
            f"operation {context.operation_id} left no checkpoint to resume from: it stopped "
            "before its first epoch completed, or it ran without checkpoints; start the "
            "training again"
        )
    current = context
    if context.strategy_path and Path(context.strategy_path).is_file():
        spec = apply_overrides(load_strategy(Path(context.strategy_path)), context.overrides)
        current = msgspec.structs.replace(context, strategy=spec)
    if strategy_fingerprint(current) != meta.strategy_fingerprint:
        changed = _differences(trained_config(context), trained_config(current))
        where = ", ".join(changed) if changed else "its content"
        raise ConfigError(
            f"cannot resume {context.operation_id}: the strategy changed since it was "
            f"checkpointed at epoch {meta.epoch} ({context.strategy_path}: {where}); a "
            "resume must train the network it started; restore the file or start a new training"
        )
    try:
        digests = data_fingerprints(context)
    except DataError as exc:
        raise DataError(f"cannot resume {context.operation_id}: {exc.detail}") from None
    changed = sorted(
        name
        for name in set(digests) | set(meta.data_fingerprints)
        if digests.get(name) != meta.data_fingerprints.get(name)
    )
    if changed:
        raise DataError(
            f"cannot resume {context.operation_id}: the data changed since it was checkpointed "
            f"at epoch {meta.epoch}: {', '.join(changed)} (in {context.data_dir}); a resume "
            "must see the bars it started with; restore them or start a new training"
        )
    return meta
