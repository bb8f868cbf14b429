"""Sweeps: one strategy trained over a space of settings on Ray, trials ranked by a metric.

Ray Tune decides, the orchestrator executes. The space becomes trials with Ray Tune's variant
generator (``grid``: every combination; ``random``: draws, seeded by the request's seed;
Python callers may give Tune's own domains such as ``tune.loguniform``). Each trial is a
``ray``-mode training operation of its own (progress, cancel, result, model), started by the
sweep when a slot is free (``max_concurrent``). Trials whose data would be prepared alike
(:func:`~ktrdr_lib.pipeline.prepare.preparation_key`: they differ only in model or fit
settings) share one preparation, put in Ray's object store once.

Early stopping uses Ray Tune's ASHA scheduler (:class:`AsyncHyperBandScheduler`): every epoch a
trial completes is reported to it, and a trial it stops is stopped through the same graceful
stop a user has (the epoch under way finishes, then the trial evaluates and saves), so a
stopped trial still has a result and a model.

The sweep is an operation (``operation_type`` ``sweep``, mode ``ray``) whose metadata names
its trials; cancelling it cancels every trial (same kind) and the trials not yet started. Its
result (:class:`~ktrdr_lib.schemas.sweeps.SweepResult`) ranks the trials, best first, and the
best trial's model is saved again under the sweep's name for it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ktrdr_lib.errors import ConfigError, KtrdrError, NotFoundError, StateConflictError
from ktrdr_lib.operations.live import LiveOperation
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import FINAL_STATUSES, OperationStatus
from ktrdr_lib.schemas.sweeps import SWEEP_METRICS, SweepResult, SweepSnapshot, SweepTrial
from ktrdr_lib.timestamps import utc_now

if TYPE_CHECKING:
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator

__all__ = ["ASHA_PREFIX", "MAX_TRIALS", "SweepPlan", "SweepRun", "plan_sweep", "read_sweep"]

log = logging.getLogger(__name__)

MAX_TRIALS = 1000
"""The most trials one sweep may have (a space that multiplies out further is refused)."""
ASHA_PREFIX = "stopped early by ASHA"
"""How the cancel reason of a trial the scheduler stopped begins."""


@dataclass(frozen=True)
class SweepPlan:
    """A sweep, checked: its settings and every trial's resolved context."""

    sweep_id: str
    strategy: str
    space: dict[str, Any]
    metric: str
    mode: Literal["min", "max"]
    search: Literal["grid", "random"]
    early_stop: Literal["asha"] | None
    grace_period: int
    reduction_factor: float
    max_concurrent: int
    best_model_name: str
    configs: list[dict[str, Any]]
    contexts: list[TrainingOperationContext]

    def metadata(self) -> dict[str, Any]:
        """The sweep operation's metadata: its settings and its trials' operation ids."""
        return {
            "strategy": self.strategy,
            "space": _jsonable(self.space),
            "metric": self.metric,
            "mode": self.mode,
            "search": self.search,
            "early_stop": self.early_stop,
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "max_concurrent": self.max_concurrent,
            "best_model_name": self.best_model_name,
            "trials": len(self.contexts),
            "trial_operation_ids": [c.operation_id for c in self.contexts],
            "trial_configs": [_jsonable(c) for c in self.configs],
            "parameters": {"strategy_name": self.strategy},
        }


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and Tune domains made plain (for JSON and YAML)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _describe_domain(value)


def _describe_domain(domain: Any) -> str:
    """A Ray Tune domain in words: ``loguniform(0.0001, 0.1)``, ``choice([1, 2])``."""
    sampler = str(getattr(domain, "sampler", "") or "").lower() or "sample"
    categories = getattr(domain, "categories", None)
    if categories is not None:
        return f"choice({_jsonable(list(categories))})"
    lower, upper = getattr(domain, "lower", None), getattr(domain, "upper", None)
    kind = "int" if type(domain).__name__ == "Integer" else ""
    if lower is not None and upper is not None:
        return f"{kind}{sampler}({lower:g}, {upper:g})"
    return f"{type(domain).__name__.lower()} {sampler}"


def _variants(
    space: Mapping[str, Any], search: str, num_samples: int, seed: int
) -> list[dict[str, Any]]:
    """The trials' overrides, in the order Ray Tune's variant generator makes them."""
    import numpy as np
    from ray import tune
    from ray.tune.search.sample import Domain
    from ray.tune.search.variant_generator import generate_variants

    spec: dict[str, Any] = {}
    for key, values in space.items():
        if isinstance(values, Domain):
            if search == "grid":
                raise ConfigError(
                    f"space.{key}: {values!r} is a distribution; a grid search needs a list of "
                    "values (or use search 'random')"
                )
            spec[key] = values
        else:
            spec[key] = tune.grid_search(list(values)) if search == "grid" else tune.choice(values)
    state = np.random.RandomState(seed)
    configs: list[dict[str, Any]] = []
    for _ in range(num_samples):
        for _, config in generate_variants(spec, random_state=state):
            configs.append({key: _jsonable(config[key]) for key in space})
    return configs


def plan_sweep(
    sweep_id: str,
    strategy_label: str,
    space: Mapping[str, Any],
    *,
    metric: str,
    mode: str | None,
    search: str,
    num_samples: int | None,
    max_concurrent: int | None,
    early_stop: str | None,
    grace_period: int,
    reduction_factor: float,
    best_model_name: str | None,
    seed: int,
    base_overrides: Mapping[str, Any],
    build: Callable[[dict[str, Any], str], TrainingOperationContext],
    new_id: Callable[[], str],
    default_concurrency: Callable[[TrainingOperationContext], int],
) -> SweepPlan:
    """Check a sweep request and resolve every trial (nothing is stored or started).

    ``build(overrides, operation_id)`` resolves one trial's context (raising ConfigError with
    the field for a bad override path or value).

    Raises:
        ConfigError: anything wrong, named (the space, a value, the metric, the search...).
    """
    from ktrdr_lib.models.layout import check_name

    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            "space: give at least one setting to sweep, as a dotted override path and the "
            'values to try, e.g. {"model.training.learning_rate": [0.001, 0.0003]}'
        )
    for key, values in space.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"space: {key!r} is not a dotted override path")
        if isinstance(values, str | bytes) or not (
            isinstance(values, Sequence) or type(values).__module__.startswith("ray.tune")
        ):
            raise ConfigError(
                f"space.{key}: {values!r} is not a list of values to try; write e.g. {key}: [a, b]"
            )
        if isinstance(values, Sequence) and not values:
            raise ConfigError(f"space.{key}: the list of values is empty; give at least one")
    if metric not in SWEEP_METRICS:
        raise ConfigError(
            f"metric: {metric!r} is not a metric every epoch reports; use one of "
            f"{', '.join(sorted(SWEEP_METRICS))}"
        )
    chosen_mode = mode or SWEEP_METRICS[metric]
    if chosen_mode not in ("min", "max"):
        raise ConfigError(f"mode: {mode!r} is not 'min' or 'max'")
    if search not in ("grid", "random"):
        raise ConfigError(
            f"search: {search!r} is not a search this sweep knows; use grid or random"
        )
    samples = num_samples if num_samples is not None else (1 if search == "grid" else 8)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"num_samples: {num_samples!r} is not a whole number >= 1")
    if early_stop not in (None, "asha"):
        raise ConfigError(
            f"early_stop: {early_stop!r} is not a scheduler; use 'asha' or leave it out"
        )
    if isinstance(grace_period, bool) or not isinstance(grace_period, int) or grace_period < 1:
        raise ConfigError(f"grace_period: {grace_period!r} is not a whole number of epochs >= 1")
    if not isinstance(reduction_factor, int | float) or not reduction_factor > 1:
        raise ConfigError(f"reduction_factor: {reduction_factor!r} must be a number > 1")
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool)
        or not isinstance(max_concurrent, int)
        or max_concurrent < 1
    ):
        raise ConfigError(f"max_concurrent: {max_concurrent!r} is not a whole number >= 1")
    size = samples
    for values in space.values():
        size *= len(values) if search == "grid" and isinstance(values, Sequence) else 1
    if size > MAX_TRIALS:
        raise ConfigError(
            f"space: the sweep would train {size} trials, more than {MAX_TRIALS}; sweep fewer "
            "values (or use search 'random' with num_samples)"
        )
    configs = _variants(space, search, samples, seed)
    contexts = []
    for index, config in enumerate(configs):
        overrides = {**base_overrides, **config}
        try:
            contexts.append(build(overrides, new_id()))
        except ConfigError as exc:
            raise ConfigError(f"sweep trial {index} ({config}): {exc.detail}") from None
    first = contexts[0]
    if early_stop == "asha" and grace_period > max(c.total_epochs for c in contexts):
        raise ConfigError(
            f"grace_period: {grace_period} epochs is more than any trial trains; ASHA could "
            "never stop one. Lower it or train more epochs."
        )
    best_name = best_model_name or f"{first.model_name}_sweep_best"
    check_name(best_name)
    return SweepPlan(
        sweep_id=sweep_id,
        strategy=strategy_label,
        space=dict(space),
        metric=metric,
        mode=chosen_mode,  # type: ignore[arg-type]
        search=search,  # type: ignore[arg-type]
        early_stop=early_stop,  # type: ignore[arg-type]
        grace_period=grace_period,
        reduction_factor=float(reduction_factor),
        max_concurrent=max_concurrent or default_concurrency(first),
        best_model_name=best_name,
        configs=configs,
        contexts=contexts,
    )


@dataclass(eq=False)  # hashed by identity: Tune's scheduler keeps trials in dicts
class _Trial:
    index: int
    live: LiveOperation
    config: dict[str, Any]
    started: bool = False
    seen_epochs: int = 0
    stopped_early: bool = False
    cancel_sent: str | None = None  # None, "graceful" or "abort"
    rows: list[EpochHistoryRow] = field(default_factory=list)

    @property
    def operation_id(self) -> str:
        return self.live.context.operation_id

    @property
    def trial_id(self) -> str:  # what Tune's scheduler keys its bookkeeping on
        return self.operation_id


class SweepRun:
    """The thread that takes a sweep to its end (see the module)."""

    def __init__(
        self,
        orch: TrainingOrchestrator,
        plan: SweepPlan,
        live: LiveOperation,
        trials: list[LiveOperation],
        *,
        interval: float = 0.2,
    ) -> None:
        self.orch = orch
        self.plan = plan
        self.live = live
        self.trials = [
            _Trial(index, trial, config)
            for index, (trial, config) in enumerate(zip(trials, plan.configs, strict=True))
        ]
        self.interval = interval
        self.scheduler = _asha(plan) if plan.early_stop == "asha" else None
        self._sequence = 0
        self.thread = threading.Thread(
            target=self._run_safely, name=f"ktrdr-sweep-{plan.sweep_id}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    # -- the loop --------------------------------------------------------------------------------

    def _run_safely(self) -> None:
        sweep_id = self.plan.sweep_id
        try:
            self._run()
        except Exception as exc:  # never leave a sweep running with nobody driving it
            log.exception("sweep %s: unexpected error", sweep_id)
            for trial in self.trials:
                with contextlib.suppress(KtrdrError):
                    self.orch.cancel(trial.operation_id, reason=f"the sweep failed: {exc!r}")
            with contextlib.suppress(KtrdrError):
                self._transition("failed", error_message=f"internal error: {exc!r}")
            self._publish("failed", f"Failed: {exc!r}")
        finally:
            self.live.done.set()
            self.orch._release(self.plan.sweep_id)

    def _run(self) -> None:
        runner = self.orch.runners["ray"]
        keys = self._preparation_keys()
        hold = getattr(runner, "hold", None)
        if callable(hold):
            hold(keys)
        prestart = getattr(runner, "prestart", None)
        if callable(prestart):  # a warm actor for every trial slot
            prestart(min(self.plan.max_concurrent, len(self.trials)))
        try:
            with contextlib.suppress(StateConflictError):
                self._transition("running")
            self._publish("running", f"Sweeping {len(self.trials)} trials")
            self._drive()
        finally:
            release = getattr(runner, "release", None)
            if callable(release):
                release(keys)
        self._finish()

    def _preparation_keys(self) -> list[str]:
        from ktrdr_lib.pipeline.prepare import preparation_key

        return [preparation_key(t.live.context) for t in self.trials]

    def _drive(self) -> None:
        token = self.live.token
        waiting = list(self.trials)
        active: list[_Trial] = []
        while waiting or active:
            if token.is_set:
                for trial in waiting:  # never started: cancelled at once
                    self._cancel_unstarted(trial)
                waiting = []
                for trial in active:
                    self._pass_cancel(trial)
            while waiting and len(active) < self.plan.max_concurrent and not token.is_set:
                trial = waiting.pop(0)
                trial.started = True
                if self.scheduler is not None:
                    self.scheduler.on_trial_add(None, trial)
                self.orch._enqueue(trial.live)
                active.append(trial)
            self.orch._writer.flush()  # the trials' epoch rows are in the store
            for trial in active:
                self._report_epochs(trial)
            ended = [t for t in active if t.live.done.is_set()]
            for trial in ended:
                self._report_epochs(trial)
                active.remove(trial)
                self._complete(trial)
            self._publish("cancelling" if token.is_set else "running")
            if ended:
                continue
            token.wait(self.interval) if not token.is_set else self.live.done.wait(self.interval)

    def _cancel_unstarted(self, trial: _Trial) -> None:
        """A trial the sweep never started: cancelled, its final snapshot published, done."""
        live = trial.live
        with contextlib.suppress(KtrdrError):
            self.orch.cancel(trial.operation_id, reason=self._cancel_reason())
        with contextlib.suppress(KtrdrError):
            record = self.orch.store.get(trial.operation_id)
            live.record = record
            previous = live.channel.latest
            live.channel.publish(
                msgspec.structs.replace(
                    previous or record.progress,
                    sequence=(previous.sequence if previous else 0) + 1,
                    status=record.status,
                    message=f"Cancelled before it started: {record.cancellation_reason}",
                    updated_at=utc_now(),
                )
            )
        live.done.set()
        self.orch._release(trial.operation_id)

    def _cancel_reason(self) -> str:
        return f"sweep {self.plan.sweep_id} cancelled: {self.live.token.reason or 'by request'}"

    def _pass_cancel(self, trial: _Trial) -> None:
        """The sweep's cancel to a running trial (an abort may follow a graceful stop)."""
        token = self.live.token
        wanted = "graceful" if token.graceful else "abort"
        if trial.cancel_sent == wanted or trial.cancel_sent == "abort":
            return
        with contextlib.suppress(KtrdrError):  # it may have ended meanwhile
            self.orch.cancel(
                trial.operation_id, graceful=token.graceful, reason=self._cancel_reason()
            )
        trial.cancel_sent = wanted

    def _report_epochs(self, trial: _Trial) -> None:
        """New epochs of ``trial`` to the scheduler; stop the trial when it says so."""
        try:
            rows = self.orch.store.epoch_history(trial.operation_id)
        except KtrdrError:
            return
        trial.rows = rows
        fresh = rows[trial.seen_epochs :]
        trial.seen_epochs = len(rows)
        if self.scheduler is None or not fresh or trial.stopped_early:
            return
        from ray.tune.schedulers import TrialScheduler

        total = trial.live.context.total_epochs
        for row in fresh:
            value = getattr(row, self.plan.metric)
            if value is None:
                continue
            result = {"training_iteration": row.epoch, self.plan.metric: value}
            decision = self.scheduler.on_trial_result(None, trial, result)
            if decision == TrialScheduler.STOP and row.epoch < total and trial.cancel_sent is None:
                trial.stopped_early = True
                trial.cancel_sent = "graceful"
                reason = (
                    f"{ASHA_PREFIX} after epoch {row.epoch}: {self.plan.metric} {value:.4g} "
                    "is behind the trials that reached this epoch"
                )
                log.info("sweep %s: trial %d %s", self.plan.sweep_id, trial.index, reason)
                with contextlib.suppress(KtrdrError):
                    self.orch.cancel(trial.operation_id, graceful=True, reason=reason)
                return

    def _complete(self, trial: _Trial) -> None:
        if self.scheduler is None:
            return
        value = _best(trial.rows, self.plan.metric, self.plan.mode)
        last = (
            {"training_iteration": trial.rows[-1].epoch, self.plan.metric: value[0]}
            if value
            else {}
        )
        with contextlib.suppress(KeyError):
            if last:
                self.scheduler.on_trial_complete(None, trial, last)
            else:
                self.scheduler.on_trial_remove(None, trial)

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        token = self.live.token
        self.orch._writer.flush()
        result = build_result(self.orch, self.plan)
        result = self._save_best(result)
        self.orch.store.set_sweep_result(self.plan.sweep_id, msgspec.json.encode(result))
        trained = [t for t in result.trials if t.epoch > 0]
        status: OperationStatus
        error = None
        if token.is_set and not token.graceful:
            status = "cancelled"
        elif result.best_trial is None:
            status = "failed"
            errors = [t.error_message for t in result.trials if t.error_message]
            error = "no trial completed an epoch" + (
                f"; first error: {errors[0]}" if errors else ""
            )
        else:
            status = "completed"
        with contextlib.suppress(StateConflictError):
            self._transition(
                status,
                error_message=error,
                cancellation_reason=token.reason if token.is_set else None,
                cancel_kind=None if not token.is_set else "graceful" if token.graceful else "abort",
            )
        best = (
            f"; best {self.plan.metric} {result.trials[0].metric:.4g} (trial {result.best_trial})"
            if result.best_trial is not None and result.trials[0].metric is not None
            else ""
        )
        message = {
            "completed": f"Completed {len(trained)} of {len(result.trials)} trials{best}",
            "cancelled": f"Cancelled: {token.reason}",
            "failed": f"Failed: {error}",
        }[status]
        self._publish(status, message, final=True)
        self.orch._writer.flush()

    def _save_best(self, result: SweepResult) -> SweepResult:
        """Save the best trial's model again under the sweep's name for it."""
        if result.best_trial is None:
            return result
        best = result.trials[0]
        if best.model_name is None or best.model_version is None:
            return result
        from ktrdr_lib.models.store import ModelStore

        try:
            saved = ModelStore(self.orch.models_dir).copy_as(
                (best.model_name, best.model_version),
                self.plan.best_model_name,
                description=f"best of sweep {self.plan.sweep_id} by {self.plan.metric}",
                extra_metadata={"sweep_id": self.plan.sweep_id, "sweep_trial": best.trial},
            )
        except KtrdrError as exc:
            log.warning("sweep %s: the best model was not copied: %s", self.plan.sweep_id, exc)
            return result
        return msgspec.structs.replace(
            result, best_model_name=saved.name, best_model_version=saved.version
        )

    # -- records and snapshots -----------------------------------------------------------------

    def _transition(self, status: OperationStatus, **fields: Any) -> OperationSnapshot:
        return self.orch._executor.transition(self.live, self.plan.sweep_id, status, **fields)

    def _message(self, records: Sequence[OperationSnapshot], best: tuple[float, int] | None) -> str:
        counts = Counter(record.status for record in records)
        done = sum(n for s, n in counts.items() if s in FINAL_STATUSES)
        running = counts["running"] + counts["cancelling"]
        stopped = sum(t.stopped_early for t in self.trials)
        parts = [f"{done}/{len(self.trials)} trials done", f"{running} running"]
        if stopped:
            parts.append(f"{stopped} stopped early")
        if best is not None:
            parts.append(f"best {self.plan.metric} {best[0]:.4g} (trial {best[1]})")
        return ", ".join(parts)

    def _publish(
        self, status: OperationStatus, message: str | None = None, *, final: bool = False
    ) -> None:
        """The sweep's snapshot from its trials' records (each read once); ``message``
        defaults to the trials' count by status and the leader."""
        records = [self.orch.get_operation(trial.operation_id) for trial in self.trials]
        best = _leader(self.trials, self.plan.metric, self.plan.mode)
        if message is None:
            message = self._message(records, best)
        shares = [100.0 if r.is_final else r.progress.percentage for r in records]
        percentage = round(sum(shares) / len(shares), 2) if shares else 0.0
        self._sequence += 1
        previous = self.live.channel.latest
        if previous is not None:
            self._sequence = max(self._sequence, previous.sequence + 1)
            if not final:
                percentage = max(percentage, previous.percentage)
        snapshot = ProgressSnapshot(
            operation_id=self.plan.sweep_id,
            sequence=self._sequence,
            status=status,
            phase="remote",
            percentage=100.0 if final and status == "completed" else percentage,
            message=message,
            items_processed=sum(record.is_final for record in records),
            items_total=len(self.trials),
            metrics={self.plan.metric: best[0]} if best is not None else {},
            updated_at=utc_now(),
        )
        self.live.channel.publish(snapshot)


def _asha(plan: SweepPlan) -> Any:
    from ray.tune.schedulers import AsyncHyperBandScheduler

    return AsyncHyperBandScheduler(
        time_attr="training_iteration",
        metric=plan.metric,
        mode=plan.mode,
        max_t=max(c.total_epochs for c in plan.contexts),
        grace_period=plan.grace_period,
        reduction_factor=plan.reduction_factor,
    )


def _best(rows: Sequence[EpochHistoryRow], metric: str, mode: str) -> tuple[float, int] | None:
    """The best value of ``metric`` over ``rows`` and its epoch."""
    values = [
        (float(v), row.epoch)
        for row in rows
        if (v := getattr(row, metric)) is not None and math.isfinite(v)
    ]
    if not values:
        return None
    pick = min if mode == "min" else max
    return pick(values, key=lambda pair: pair[0])


def _leader(trials: Sequence[_Trial], metric: str, mode: str) -> tuple[float, int] | None:
    """The best value any trial reached so far, and that trial's number."""
    found = [(b[0], t.index) for t in trials if (b := _best(t.rows, metric, mode)) is not None]
    if not found:
        return None
    pick = min if mode == "min" else max
    return pick(found, key=lambda pair: pair[0])


def trial_of(
    orch: Any, index: int, operation_id: str, config: dict[str, Any], metric: str, mode: str
) -> SweepTrial:
    """One trial as it stands, from the store."""
    record: OperationSnapshot = orch.get_operation(operation_id)
    rows = orch.store.epoch_history(operation_id)
    best = _best(rows, metric, mode)
    result = record.result
    test = result.test_metrics if result is not None else None
    artifacts = result.artifacts if result is not None and record.status == "completed" else None
    total = record.progress.total_epochs
    # ASHA's stop is graceful: one that reached the trial in its last epoch stopped nothing.
    ran_out = record.is_final and total is not None and len(rows) >= total
    return SweepTrial(
        trial=index,
        operation_id=operation_id,
        config=config,
        status=record.status,
        epoch=len(rows),
        total_epochs=record.progress.total_epochs,
        metric=None if best is None else best[0],
        best_epoch=None if best is None else best[1],
        stopped_early=(record.cancellation_reason or "").startswith(ASHA_PREFIX) and not ran_out,
        test_accuracy=None if test is None else test.accuracy,
        edge=None if result is None or result.evaluation is None else result.evaluation.edge,
        model_name=None if artifacts is None else artifacts.model_name,
        model_version=None if artifacts is None else artifacts.model_version,
        error_message=record.error_message,
    )


def _trials(orch: Any, record: OperationSnapshot) -> list[SweepTrial]:
    meta = record.metadata
    return [
        trial_of(orch, index, op_id, config, meta["metric"], meta["mode"])
        for index, (op_id, config) in enumerate(
            zip(meta["trial_operation_ids"], meta["trial_configs"], strict=True)
        )
    ]


def build_result(orch: Any, plan: SweepPlan) -> SweepResult:
    """The sweep's trials ranked by the metric, best first (trials without it last)."""
    record = orch.get_operation(plan.sweep_id)
    trials = _trials(orch, record)
    sign = 1.0 if plan.mode == "min" else -1.0
    ranked = sorted(
        trials,
        key=lambda t: (t.metric is None, sign * (t.metric or 0.0), t.trial),
    )
    best = ranked[0] if ranked and ranked[0].metric is not None else None
    runner = orch.runners.get("ray")
    return SweepResult(
        metric=plan.metric,
        mode=plan.mode,
        trials=ranked,
        best_trial=None if best is None else best.trial,
        best_operation_id=None if best is None else best.operation_id,
        preparations=_preparations(runner, plan),
        early_stopped=sum(t.stopped_early for t in trials),
    )


def _preparations(runner: Any, plan: SweepPlan) -> int:
    from ktrdr_lib.pipeline.prepare import preparation_key

    if getattr(runner, "prepare_on", "driver") == "worker":
        return len(plan.contexts)
    return len({preparation_key(c) for c in plan.contexts})


def read_sweep(orch: Any, sweep_id: str) -> SweepSnapshot:
    """A sweep as it stands (from the store, so any process sharing it can read).

    Raises:
        NotFoundError: unknown id, or an operation that is not a sweep.
    """
    record: OperationSnapshot = orch.get_operation(sweep_id)
    if record.operation_type != "sweep":
        raise NotFoundError(
            f"operation {sweep_id} is a {record.operation_type} operation, not a sweep; "
            "read it as an operation"
        )
    meta = record.metadata
    body = orch.store.sweep_result(sweep_id)
    result = None if body is None else msgspec.json.decode(body, type=SweepResult)
    trials = result.trials if result is not None and record.is_final else _trials(orch, record)
    if result is None or not record.is_final:
        trials = sorted(trials, key=lambda t: t.trial)
    return SweepSnapshot(
        operation=record,
        strategy=meta["strategy"],
        space=meta["space"],
        metric=meta["metric"],
        mode=meta["mode"],
        search=meta["search"],
        early_stop=meta["early_stop"],
        max_concurrent=meta["max_concurrent"],
        trials=trials,
        result=result if record.is_final else None,
    )
