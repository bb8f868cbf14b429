"""TrainingResult: one result shape for every runner, and the metric Structs inside it.

The keys are fixed by the design brief: ``training_metrics``, ``validation_metrics``,
``test_metrics``, ``resource_usage``, ``artifacts``, ``session_info``, ``data_summary``.
Pieces a run did not reach (a cancelled run has no test metrics) are ``None``, never missing.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ktrdr_lib.schemas.status import TrainingMode
from ktrdr_lib.schemas.strategies import StrategyNotice

__all__ = [
    "ArtifactsInfo",
    "BarsSummary",
    "BaselineFigures",
    "ClassMetrics",
    "ClassificationMetrics",
    "ConfidenceFigures",
    "DataSummary",
    "EconomicsReport",
    "EpochAnalytics",
    "EpochReached",
    "FeatureReport",
    "HonestEvaluation",
    "ParameterFigures",
    "PlaceboReport",
    "RayPlacement",
    "RegressionEpochFigures",
    "RegressionMetrics",
    "ResourceUsage",
    "SessionInfo",
    "SignalEconomics",
    "TrainingAnalytics",
    "TrainingMetrics",
    "TrainingResult",
]


class ClassMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Figures for one class.

    Attributes:
        precision: of the samples predicted as this class, the fraction that are.
        recall: of the samples of this class, the fraction predicted as it.
        f1: harmonic mean of precision and recall.
        support: samples of this class in the split.
    """

    precision: float
    recall: float
    f1: float
    support: int


class ClassificationMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """A model's figures on one split.

    Attributes:
        loss: mean cross-entropy.
        accuracy: fraction of samples classified right.
        precision: macro-averaged precision (classes absent from both truth and predictions
            are left out of the average).
        recall: macro-averaged recall.
        f1: macro-averaged F1.
        per_class: ``BUY``/``HOLD``/``SELL`` → :class:`ClassMetrics`.
        confusion_matrix: counts, rows the true class, columns the predicted class.
        samples: samples in the split.
        majority_class: the training split's most frequent class id.
        majority_baseline_accuracy: accuracy of always predicting ``majority_class`` here.
    """

    loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    samples: int
    majority_class: int
    majority_baseline_accuracy: float


class RegressionMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """A regression model's figures on one split, with two baselines.

    Attributes:
        loss: the training loss (Huber or MSE) on the split.
        mae: mean absolute error.
        rmse: root mean squared error.
        directional_accuracy: share of samples where the predicted and the true value have the
            same sign.
        correlation: Pearson correlation of predictions and truth (``None`` when either is
            constant).
        samples: samples in the split.
        train_mean: the training split's mean target (the mean baseline's prediction).
        zero_baseline_mae: MAE of always predicting 0.
        mean_baseline_mae: MAE of always predicting ``train_mean``.
        mean_baseline_directional_accuracy: directional accuracy of always predicting
            ``train_mean`` (the share of the split on its side of zero).
    """

    loss: float
    mae: float
    rmse: float
    directional_accuracy: float
    correlation: float | None
    samples: int
    train_mean: float
    zero_baseline_mae: float
    mean_baseline_mae: float
    mean_baseline_directional_accuracy: float


class _Out(msgspec.Struct, frozen=True, kw_only=True):
    """Base of result Structs."""


class EpochReached(_Out, frozen=True, kw_only=True):
    """How far the epoch a run stopped in got. It is not a completed epoch: no history row,
    no curve point and no ``epochs_completed`` count stand for it.

    Attributes:
        epoch: the 1-based epoch that was running.
        batches_completed: its training batches that ran before the stop.
        batches_total: the training batches an epoch has.
    """

    epoch: int
    batches_completed: int
    batches_total: int


class TrainingMetrics(_Out, frozen=True, kw_only=True):
    """How the fit went.

    ``epochs_completed`` counts epochs that ran to their end, validation included. A run
    aborted (or failed) mid-epoch says how far that epoch got in ``interrupted_epoch``; a
    graceful stop always ends at an epoch's end, so it has none.
    """

    final_train_loss: float | None = None
    final_val_loss: float | None = None
    final_train_accuracy: float | None = None
    final_val_accuracy: float | None = None
    epochs_completed: int = 0
    best_epoch: int | None = None
    early_stopped: bool = False
    stop_reason: str | None = None
    training_time_s: float = 0.0
    samples_per_second: float | None = None
    interrupted_epoch: EpochReached | None = None


class ResourceUsage(_Out, frozen=True, kw_only=True):
    """Where and with what the run trained, how long each phase took and the memory it used.

    Attributes:
        run_peak_rss_mb: the training process's peak resident memory while this run ran
            (sampled; ``process_peak_rss_mb`` is that process's peak over its whole life).
        phase_seconds: wall time of each pipeline phase, in order (``load_data``,
            ``indicators``, ``fuzzy``, ``labels``, ``train``, ``evaluate``, ``save``).
    """

    device: str = "cpu"
    accelerator: str = "cpu"
    gpu_name: str | None = None
    gpu_memory_peak_mb: float | None = None
    gpu_memory_total_mb: float | None = None
    gpu_utilization_percent: float | None = None
    process_peak_rss_mb: float | None = None
    cpu_threads: int | None = None
    run_peak_rss_mb: float | None = None
    phase_seconds: dict[str, float] = msgspec.field(default_factory=dict)


class ArtifactsInfo(_Out, frozen=True, kw_only=True):
    """What the run saved.

    A model is saved only by a run that completed at least one epoch and ended
    ``completed`` (a graceful stop included). When none was saved, the ``model_*`` fields are
    ``None`` and ``no_model_reason`` says why (cancelled or failed, and after how many
    completed epochs; or saving was turned off).
    """

    model_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    model_path: str | None = None
    checkpoint_paths: list[str] = msgspec.field(default_factory=list)
    size_bytes: int | None = None
    no_model_reason: str | None = None


class SignalEconomics(_Out, frozen=True, kw_only=True):
    """What a position series would have earned on the test split (formulas in
    :mod:`ktrdr_lib.training.economics`; an evaluation of the training result, not a
    backtest).

    Attributes:
        bars: test bars with a next-bar return.
        total_return: compounded net return over those bars (0.12 = +12 %).
        annualised_return: ``total_return`` per year of the bars' own spacing.
        sharpe: annualised Sharpe ratio of the net per-bar returns (no risk-free rate).
        max_drawdown: the largest fall of equity from a peak (0.2 = −20 %).
        hit_rate: share of bars in a position that gained before costs.
        turnover: position units changed per bar.
        exposure: share of bars in a position.
        costs: the sum of per-bar costs paid.
        round_trip_cost: the cost of opening and closing a position (a fraction), from
            ``decisions.cost_model`` (0 when the strategy has none).
        periods_per_year: bars per year used to annualise.
    """

    bars: int
    total_return: float
    annualised_return: float | None = None
    sharpe: float | None = None
    max_drawdown: float = 0.0
    hit_rate: float | None = None
    turnover: float = 0.0
    exposure: float = 0.0
    costs: float = 0.0
    round_trip_cost: float = 0.0
    periods_per_year: float | None = None


class BaselineFigures(_Out, frozen=True, kw_only=True):
    """A baseline's figures on the test rows the model was scored on.

    Attributes:
        name: ``majority``, ``swing_state``, ``swing_state_retrace``, ``last_confirmed_side``
            (classification), ``zero`` or ``train_mean`` (regression).
        description: what it predicts, in words.
        score: its value of the headline's score (accuracy; MAE for a regression).
        f1: its macro F1 (classification).
    """

    name: str
    description: str
    score: float
    f1: float | None = None


class EconomicsReport(_Out, frozen=True, kw_only=True):
    """Signal economics on the test split, the model beside buy-and-hold and the strongest
    baseline.

    Attributes:
        model: the model's positions (BUY +1, SELL −1, HOLD 0, or held with
            ``decisions.position_awareness``; flat below ``decisions.confidence_threshold``).
        buy_and_hold: long on every bar.
        strongest_baseline: the strongest baseline's positions, when it gives any.
        cost_source: where the round-trip cost came from (``decisions.cost_model`` or none).
        rules: the decision rules applied to the model's signals, in words.
    """

    model: SignalEconomics
    buy_and_hold: SignalEconomics
    strongest_baseline: SignalEconomics | None = None
    cost_source: str = ""
    rules: list[str] = msgspec.field(default_factory=list)


class PlaceboReport(_Out, frozen=True, kw_only=True):
    """The same strategy trained on random walks matched to the real data
    (:mod:`ktrdr_lib.data.placebo`), scored on their own test splits.

    Attributes:
        runs: placebo runs asked for.
        operation_ids: the placebo runs' operations (children of this one).
        scores: each completed placebo's test score (the headline's score).
        mean / spread: their mean and sample standard deviation.
        edge: how much better the real run scored than the placebos' mean (positive:
            better; accuracy points, or MAE saved).
        z_score: ``edge / spread``: within ±2 is what a model with no edge over a random walk
            scores (``None`` with fewer than two placebos or no spread).
        total_returns / sharpes: each placebo model's signal economics on its test split.
        note: why fewer than ``runs`` completed, when they did.
    """

    runs: int
    operation_ids: list[str] = msgspec.field(default_factory=list)
    scores: list[float] = msgspec.field(default_factory=list)
    mean: float | None = None
    spread: float | None = None
    edge: float | None = None
    z_score: float | None = None
    total_returns: list[float] = msgspec.field(default_factory=list)
    sharpes: list[float | None] = msgspec.field(default_factory=list)
    note: str = ""


class HonestEvaluation(_Out, frozen=True, kw_only=True):
    """The model against the strongest baseline that knows how its labels are built, and
    what its signals would have earned, on the test split.

    Attributes:
        headline: the comparison in one line (what every front door shows first).
        score_name: ``accuracy`` (classification) or ``mae`` (regression: lower is better).
        model_score: the model's score on the test rows.
        baselines: every baseline on the same rows, the strongest first.
        strongest_baseline: the name of the strongest.
        edge: how much better the model is than the strongest (positive: better; accuracy
            points, or MAE saved for a regression).
        economics: the signal economics (``None`` when the test split has no next bar).
        placebo_runs: placebo trainings asked for (0: none; ``placebo_note`` suggests them).
        placebo: the placebo runs' figures, when any ran.
        placebo_note: what the placebo comparison says, or how to ask for one.
    """

    headline: str
    score_name: str
    model_score: float
    baselines: list[BaselineFigures]
    strongest_baseline: str
    edge: float
    economics: EconomicsReport | None = None
    placebo_runs: int = 0
    placebo: PlaceboReport | None = None
    placebo_note: str = (
        "no placebo run: pass placebo_runs=N (ktrdr train --placebo N) to train the same "
        "strategy on N random walks matched to this data and see whether this edge is real"
    )


class RayPlacement(_Out, frozen=True, kw_only=True):
    """Where a ``ray``-mode run trained on the Ray cluster.

    Attributes:
        job_id: the Ray job (the orchestrator's driver) that started the run.
        actor_name: the run's named actor (``ktrdr-<operation id>`` in namespace ``ktrdr``).
        actor_id: that actor's id.
        node_id: the node it ran on.
        node_address: that node's IP address.
        num_cpus / num_gpus: the resources the run reserved.
    """

    job_id: str
    actor_name: str
    actor_id: str
    node_id: str
    node_address: str
    num_cpus: float
    num_gpus: float


class SessionInfo(_Out, frozen=True, kw_only=True):
    """Who, what and when, and how the strategy file was read.

    Attributes:
        strategy_layout: the layout the strategy file was written in (legacy, v2, v3).
        strategy_notices: every place where this run trains differently from what KTRDR
            would have done with the file (or where KTRDR would have dropped something).
        hyperparameter_sources: where each hyper-parameter came from
            (``training.epochs``, ``model.training.learning_rate``, ``default``).
        ray: where a ``ray``-mode run trained (job, actor, node); ``None`` for other modes.
    """

    operation_id: str
    mode: TrainingMode = "local"
    host_session_id: str | None = None
    strategy: str
    strategy_path: str | None = None
    symbols: list[str]
    timeframes: list[str]
    base_timeframe: str
    start_date: str | None = None
    end_date: str | None = None
    seed: int = 42
    started_at: str | None = None
    finished_at: str | None = None
    cancellation_reason: str | None = None
    strategy_layout: str | None = None
    strategy_notices: list[StrategyNotice] = msgspec.field(default_factory=list)
    hyperparameter_sources: dict[str, str] = msgspec.field(default_factory=dict)
    ray: RayPlacement | None = None


class BarsSummary(_Out, frozen=True, kw_only=True):
    """Bars used for one symbol and timeframe."""

    symbol: str
    timeframe: str
    bars: int
    first: str | None = None
    last: str | None = None
    resampled_from: str | None = None


class FeatureReport(_Out, frozen=True, kw_only=True):
    """How alive each input was on the training rows (before scaling, lags left out).

    Attributes:
        active_share: per fuzzy membership column, the share of training rows where the
            membership is above 0.01.
        dead: membership columns active on fewer than 1 % of training rows: the set almost
            never fires (often a scale mistake, e.g. ratio-scale sets over a price).
        constant: columns with one value on every training row (they carry no information).
    """

    active_share: dict[str, float] = msgspec.field(default_factory=dict)
    dead: list[str] = msgspec.field(default_factory=list)
    constant: list[str] = msgspec.field(default_factory=list)


class DataSummary(_Out, frozen=True, kw_only=True):
    """What the data became."""

    bars: list[BarsSummary] = msgspec.field(default_factory=list)
    samples: dict[str, int] = msgspec.field(default_factory=dict)
    label_distribution: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    feature_count: int = 0
    feature_names: list[str] = msgspec.field(default_factory=list)
    warmup_dropped: int = 0
    unlabelled_tail_dropped: int = 0
    purged: int = 0
    feature_report: FeatureReport | None = None
    target_quantiles: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)


class ParameterFigures(_Out, frozen=True, kw_only=True):
    """One parameter tensor of the network at an epoch's end.

    Attributes:
        grad_norm: L2 norm of its gradient from the epoch's last training batch (``None``
            when it had none, e.g. a frozen tensor).
        mean: mean of its values.
        std: standard deviation of its values (population, so one value gives 0).
        abs_max: largest absolute value.
    """

    grad_norm: float | None
    mean: float
    std: float
    abs_max: float


class ConfidenceFigures(_Out, frozen=True, kw_only=True):
    """How sure a classifier's validation predictions were.

    Attributes:
        mean_max_probability: mean over rows of the highest class probability.
        mean_entropy: mean over rows of the predicted distribution's entropy (nats; three
            classes give at most ln 3 ≈ 1.0986).
        confident_share: share of rows whose highest probability is above the analytics'
            ``confidence_threshold``.
    """

    mean_max_probability: float
    mean_entropy: float
    confident_share: float


class RegressionEpochFigures(_Out, frozen=True, kw_only=True):
    """A regression's validation figures at an epoch's end.

    Attributes:
        mae: mean absolute error.
        rmse: root mean squared error.
        directional_accuracy: share of rows where prediction and truth have the same sign.
        prediction_mean: mean predicted value.
        prediction_std: standard deviation of the predicted values (near 0: the model
            predicts a constant).
    """

    mae: float
    rmse: float
    directional_accuracy: float
    prediction_mean: float
    prediction_std: float


class EpochAnalytics(_Out, frozen=True, kw_only=True, omit_defaults=True):
    """What detailed analytics recorded at the end of one completed epoch.

    A classifier fills ``per_class``, ``macro_f1`` and ``confidence``; a regression fills
    ``regression`` (the others are left out of the encoded record).

    Attributes:
        epoch: the 1-based epoch.
        learning_rate: the optimiser's learning rate during the epoch.
        gradient_norm: L2 norm of all gradients of the epoch's last training batch.
        parameters: per named parameter tensor (``0.weight``, ``recurrent.weight_hh_l0`` …).
        per_class: validation precision, recall, F1 and support per class.
        macro_f1: validation F1 averaged over the classes.
        confidence: validation prediction confidence.
        regression: a regression's validation figures.
    """

    epoch: int
    learning_rate: float
    gradient_norm: float
    parameters: dict[str, ParameterFigures]
    per_class: dict[str, ClassMetrics] | None = None
    macro_f1: float | None = None
    confidence: ConfidenceFigures | None = None
    regression: RegressionEpochFigures | None = None


class TrainingAnalytics(_Out, frozen=True, kw_only=True):
    """A run's detailed analytics (``detailed_analytics=True`` or the strategy's
    ``model.training.analytics.enabled``).

    Attributes:
        task: ``classification`` or ``regression``.
        classes: the class names, in output order (empty for a regression).
        confidence_threshold: the probability above which a prediction counts as confident.
        epochs: one record per completed epoch (a partial epoch is never recorded).
        fuzzy_activity: per fuzzy membership input, the share of training rows where it fires
            (above ``fuzzy_active_level``); the same for every epoch.
        fuzzy_active_level: the membership degree above which an input counts as firing.
        stop_reason: ``max_epochs``, ``early_stopping`` or ``stopped_by_callback`` (a
            graceful stop).
        best_epoch: the epoch whose weights the model kept.
        epochs_completed: the epochs that ran to their end.
    """

    task: Literal["classification", "regression"]
    classes: list[str] = msgspec.field(default_factory=list)
    confidence_threshold: float
    epochs: list[EpochAnalytics] = msgspec.field(default_factory=list)
    fuzzy_activity: dict[str, float] = msgspec.field(default_factory=dict)
    fuzzy_active_level: float
    stop_reason: str
    best_epoch: int | None = None
    epochs_completed: int = 0


class TrainingResult(_Out, frozen=True, kw_only=True, omit_defaults=True):
    """The result of one training run, the same for local and host mode.

    A classifier fills ``validation_metrics`` / ``test_metrics``; a regression (forward-return
    labels) leaves them ``None`` and fills ``validation_regression`` / ``test_regression``
    (left out of the encoded result when ``None``, so a classifier's result has the seven keys
    it always had). ``analytics`` holds the run's :class:`TrainingAnalytics` when it recorded
    them (left out otherwise). ``evaluation`` is the honest comparison: the model against
    the strongest label-aware baseline, and its signal economics on the test split (left out
    of partial results).
    """

    training_metrics: TrainingMetrics
    validation_metrics: ClassificationMetrics | None
    test_metrics: ClassificationMetrics | None
    resource_usage: ResourceUsage
    artifacts: ArtifactsInfo
    session_info: SessionInfo
    data_summary: DataSummary
    validation_regression: RegressionMetrics | None = None
    test_regression: RegressionMetrics | None = None
    analytics: TrainingAnalytics | None = None
    evaluation: HonestEvaluation | None = None
