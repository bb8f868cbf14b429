"""Model-ready arrays: fuzzy feature matrix, labels and the chronological, purged split.

The flow for one symbol (:func:`build_symbol_dataset`):

1. the feature matrix (:mod:`ktrdr_lib.features.builder`): the strategy's inputs on each
   timeframe, aligned onto the base timeframe without look-ahead, price context and lags;
2. labels on the base bars (:func:`~ktrdr_lib.features.targets.compute_targets`: ZigZag,
   triple barrier, context, regime or a forward return); rows still in indicator warm-up, and
   rows without a label (after the last confirmed ZigZag extreme, within a triple barrier's
   holding period of the end, not a CUSUM event ...), are dropped;
3. a chronological split with no shuffling, an embargo where the label kind has one (triple
   barrier: 1 % of the rows before each later period), and a purge at each boundary: a row
   whose label is only decided by prices inside the next period is dropped, so no training
   label is decided by validation or test prices (and no validation label by test prices).

Several symbols are split one by one and then concatenated split by split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np
import pandas as pd

from ktrdr_lib.errors import DataError
from ktrdr_lib.features.baselines import label_baselines
from ktrdr_lib.features.builder import FeatureMatrix
from ktrdr_lib.features.indicators import indicator_warmup
from ktrdr_lib.features.labels import LABEL_NAMES
from ktrdr_lib.features.targets import compute_targets, uniqueness_weights
from ktrdr_lib.strategy.label_kinds import TripleBarrierLabelsSpec
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = [
    "DatasetSplits",
    "SequenceWindows",
    "SplitSummary",
    "SymbolDataset",
    "build_symbol_dataset",
    "concat_splits",
    "sequence_length",
    "strategy_warmup",
    "warmup_history",
]


_QUANTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class SequenceWindows:
    """Where an LSTM/GRU's windows come from: each sample is the ``length`` rows of
    ``source`` ending at its row, cut on demand (a strided view, gathered per batch).

    Attributes:
        source: float32 ``(rows, n_features)``: the feature rows of every symbol, one after
            another (a symbol's windows never reach into another's rows).
        train_ends, val_ends, test_ends: int64 positions in ``source`` of each split's
            samples (the windows' last rows), in the order of the split's labels.
        length: rows per window.
    """

    source: np.ndarray
    train_ends: np.ndarray
    val_ends: np.ndarray
    test_ends: np.ndarray
    length: int

    def windows(self, ends: np.ndarray) -> np.ndarray:
        """The windows ending at ``ends``: float32 ``(len(ends), length, n_features)`` (a copy
        of just those rows)."""
        view = np.lib.stride_tricks.sliding_window_view(self.source, self.length, axis=0)
        cut: np.ndarray = view[ends - (self.length - 1)].transpose(0, 2, 1)
        return cut


@dataclass(frozen=True)
class DatasetSplits:
    """Chronological train/validation/test arrays.

    Features are raw (unscaled) ``float32`` of shape ``(n, len(feature_names))``; labels are
    ``int64`` class ids (0 BUY, 1 HOLD, 2 SELL), or ``float32`` returns for a regression.
    ``*_index`` hold each row's bar time.
    ``w_train``, when the labels ask for it, weights each training row for sampling (a
    triple barrier's uniqueness among the training labels). ``windows``, for an LSTM/GRU,
    says where each sample's window of rows comes from (``x_*`` then hold each window's last
    row). ``test_next_return`` is each test row's next-bar return (``close[t+1] / close[t] −
    1`` of its own symbol; NaN on a symbol's last bar), what a position taken at the row
    earns; ``test_baselines`` the label-aware baselines' predictions for the test rows
    (:func:`~ktrdr_lib.features.baselines.label_baselines`).
    """

    feature_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: pd.DatetimeIndex
    val_index: pd.DatetimeIndex
    test_index: pd.DatetimeIndex
    w_train: np.ndarray | None = None
    windows: SequenceWindows | None = None
    class_names: tuple[str, ...] = LABEL_NAMES
    test_next_return: np.ndarray | None = None
    test_baselines: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def regression(self) -> bool:
        """Whether the labels are values (returns) rather than class ids."""
        return self.y_train.dtype.kind == "f"

    def target_quantiles(self) -> dict[str, dict[str, float]]:
        """A regression's target quantiles (5, 25, 50, 75, 95 %) and mean for each split;
        empty for a classifier."""
        if not self.regression:
            return {}
        quantiles: dict[str, dict[str, float]] = {}
        for name, y in (("train", self.y_train), ("validation", self.y_val), ("test", self.y_test)):
            values = np.quantile(y, [q / 100 for q in _QUANTILES])
            figures = {f"p{q}": float(v) for q, v in zip(_QUANTILES, values, strict=True)}
            quantiles[name] = {**figures, "mean": float(y.mean())}
        return quantiles

    def label_distribution(self) -> dict[str, dict[str, int]]:
        """Counts per class name for each split (empty for a regression)."""
        if self.regression:
            return {}
        return {
            name: _distribution(y, self.class_names)
            for name, y in (
                ("train", self.y_train),
                ("validation", self.y_val),
                ("test", self.y_test),
            )
        }


class SplitSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the split did to one symbol's rows (reported in the result's data summary)."""

    symbol: str
    bars: int
    warmup_dropped: int
    unlabelled_tail_dropped: int
    purged: int
    train: int
    validation: int
    test: int


@dataclass(frozen=True)
class SymbolDataset:
    """One symbol's split plus how it got there."""

    splits: DatasetSplits
    summary: SplitSummary
    features: FeatureMatrix = field(repr=False)


def _distribution(y: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(y, minlength=len(names))
    return {name: int(counts[i]) for i, name in enumerate(names)}


def warmup_history(spec: StrategySpec) -> int:
    """Bars to load before the first sample: the strategy's ``history_required``, or more when
    the indicators' warm-up plus the lags need it. Training and inference both use this, so a
    prediction sees the same indicator history as training did."""
    required = spec.training_data.history_required if spec.training_data else 0
    return max(required, strategy_warmup(spec) + spec.model.features.lookback_periods)


def sequence_length(spec: StrategySpec) -> int:
    """Rows per input window of an LSTM/GRU strategy; 0 for an MLP."""
    if spec.model.type in ("lstm", "gru"):
        return spec.model.architecture.sequence_length or 0
    return 0


def strategy_warmup(spec: StrategySpec) -> int:
    """The longest warm-up of the strategy's indicators (leading bars not to use)."""
    return max(
        (indicator_warmup(ind, indicator_id=key) for key, ind in spec.indicators.items()),
        default=0,
    )


def _split_points(n: int, spec: StrategySpec) -> tuple[int, int]:
    split = spec.training.data_split
    n_train = int(n * split.train)
    n_val = int(n * split.validation)
    return n_train, n_train + n_val


def build_symbol_dataset(
    spec: StrategySpec, symbol: str, base_bars: pd.DataFrame, features: FeatureMatrix
) -> SymbolDataset:
    """Label, clean and split one symbol's feature matrix.

    Args:
        spec: the strategy (labels and split settings).
        symbol: for messages and the summary.
        base_bars: the base timeframe's bars (labels come from its close).
        features: :func:`~ktrdr_lib.features.builder.build_feature_matrix` output on
            ``base_bars``' rows.

    Raises:
        DataError: when fewer than one sample is left for any split.
    """
    labels = spec.training.labels
    targets = compute_targets(labels, base_bars)
    n_bars = len(base_bars)
    x_all = features.values
    complete = _complete_rows(x_all)
    length = sequence_length(spec)
    if length > 1:  # a window needs its earlier rows complete too
        gaps = np.concatenate([[0], np.cumsum(~complete)])
        rows = np.arange(len(complete))
        complete = (rows >= length - 1) & (
            gaps[rows + 1] - gaps[np.maximum(rows + 1 - length, 0)] == 0
        )
    usable = np.flatnonzero(complete & targets.labelled)
    warmup_dropped = int((~complete).sum())
    tail_dropped = int((complete & ~targets.labelled).sum())

    n_train, n_train_val = _split_points(len(usable), spec)
    train_rows, val_rows, test_rows = np.split(usable, [n_train, n_train_val])
    val_start = int(val_rows[0]) if len(val_rows) else n_bars
    test_start = int(test_rows[0]) if len(test_rows) else n_bars
    # Embargo: drop the last rows before each later period (triple barrier: 1 % of the rows).
    embargo = int(targets.embargo * len(usable))
    embargoed = 0
    if embargo:
        kept_train, kept_val = max(len(train_rows) - embargo, 0), max(len(val_rows) - embargo, 0)
        embargoed = (len(train_rows) - kept_train) + (len(val_rows) - kept_val)
        train_rows, val_rows = train_rows[:kept_train], val_rows[:kept_val]
    # Purge: a label decided by a price at or after the next period's first bar would leak it.
    train_keep = train_rows[targets.decided_at[train_rows] < val_start]
    val_keep = val_rows[targets.decided_at[val_rows] < test_start]
    purged = embargoed + (len(train_rows) - len(train_keep)) + (len(val_rows) - len(val_keep))

    for name, rows in (("training", train_keep), ("validation", val_keep), ("test", test_rows)):
        if len(rows) == 0:
            raise DataError(
                f"{symbol}: no {name} samples left: {n_bars} bars, {warmup_dropped} in indicator "
                f"warm-up, {tail_dropped} without a label, {purged} purged or embargoed at the "
                "split boundaries. Use a longer date range, shorter indicator periods or "
                "labels that decide sooner (a smaller zigzag_threshold or max_holding_period)."
            )

    weights = None
    if isinstance(labels, TripleBarrierLabelsSpec) and labels.compute_weights:
        assert targets.span_end is not None
        weights = uniqueness_weights(train_keep, targets.span_end[train_keep])

    index = features.index
    label_type = np.float32 if targets.regression else np.int64
    close = base_bars["close"].to_numpy(dtype=np.float64)
    next_return = np.append(close[1:] / close[:-1] - 1.0, np.nan)
    baselines = {} if targets.regression else label_baselines(labels, base_bars, targets)
    splits = DatasetSplits(
        feature_names=list(features.names),
        x_train=_rows(x_all, train_keep),
        y_train=targets.values[train_keep].astype(label_type),
        x_val=_rows(x_all, val_keep),
        y_val=targets.values[val_keep].astype(label_type),
        x_test=_rows(x_all, test_rows),
        y_test=targets.values[test_rows].astype(label_type),
        train_index=index[train_keep],
        val_index=index[val_keep],
        test_index=index[test_rows],
        w_train=weights,
        class_names=targets.class_names,
        test_next_return=next_return[test_rows],
        test_baselines={name: values[test_rows] for name, values in baselines.items()},
        windows=(
            None
            if length == 0
            else SequenceWindows(
                source=x_all,
                train_ends=train_keep,
                val_ends=val_keep,
                test_ends=test_rows,
                length=length,
            )
        ),
    )
    summary = SplitSummary(
        symbol=symbol,
        bars=n_bars,
        warmup_dropped=warmup_dropped,
        unlabelled_tail_dropped=tail_dropped,
        purged=purged,
        train=len(train_keep),
        validation=len(val_keep),
        test=len(test_rows),
    )
    return SymbolDataset(splits=splits, summary=summary, features=features)


def _complete_rows(values: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Rows with no NaN, checked in slices so no full-size mask is ever built."""
    complete = np.empty(values.shape[0], dtype=bool)
    for start in range(0, values.shape[0], chunk):
        block = values[start : start + chunk]
        complete[start : start + chunk] = ~np.isnan(block.sum(axis=1))
    return complete


def _rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, as a view (no copy) when the rows are consecutive, as a chronological
    split's rows are unless a slower timeframe leaves a gap of unknown values."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        view: np.ndarray = values[int(rows[0]) : int(rows[-1]) + 1]
        return view
    copied: np.ndarray = values[rows]
    return copied


def concat_splits(parts: list[DatasetSplits]) -> DatasetSplits:
    """Join several symbols' splits split by split (feature columns must match)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    for other in parts[1:]:
        if other.feature_names != first.feature_names:
            raise DataError("symbols produced different feature columns; this is a bug")

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    def cat_index(name: str) -> pd.DatetimeIndex:
        head: pd.DatetimeIndex = getattr(first, name)
        return pd.DatetimeIndex(head.append([getattr(p, name) for p in parts[1:]]))

    return DatasetSplits(
        feature_names=first.feature_names,
        x_train=cat("x_train"),
        y_train=cat("y_train"),
        x_val=cat("x_val"),
        y_val=cat("y_val"),
        x_test=cat("x_test"),
        y_test=cat("y_test"),
        train_index=cat_index("train_index"),
        val_index=cat_index("val_index"),
        test_index=cat_index("test_index"),
        w_train=(
            None
            if any(p.w_train is None for p in parts)
            else np.concatenate([p.w_train for p in parts if p.w_train is not None])
        ),
        windows=_concat_windows(parts),
        class_names=first.class_names,
        test_next_return=(
            None
            if any(p.test_next_return is None for p in parts)
            else np.concatenate(
                [p.test_next_return for p in parts if p.test_next_return is not None]
            )
        ),
        test_baselines={
            name: np.concatenate([p.test_baselines[name] for p in parts])
            for name in first.test_baselines
            if all(name in p.test_baselines for p in parts)
        },
    )


def _concat_windows(parts: list[DatasetSplits]) -> SequenceWindows | None:
    """Every symbol's rows in one source, each symbol's window ends shifted to its rows."""
    windows = [p.windows for p in parts]
    if any(w is None for w in windows):
        return None
    present = [w for w in windows if w is not None]
    offsets = np.cumsum([0] + [w.source.shape[0] for w in present[:-1]])
    return SequenceWindows(
        source=np.concatenate([w.source for w in present]),
        train_ends=np.concatenate(
            [w.train_ends + o for w, o in zip(present, offsets, strict=True)]
        ),
        val_ends=np.concatenate([w.val_ends + o for w, o in zip(present, offsets, strict=True)]),
        test_ends=np.concatenate([w.test_ends + o for w, o in zip(present, offsets, strict=True)]),
        length=present[0].length,
    )
