"""RayTrainingRunner: runs trained in a worker of a Ray cluster, followed to the end.

:class:`RayTrainingRunner` is the orchestrator's runner for ``mode="ray"``. It keeps every
promise the other runners keep:

- **Data**: the orchestrator's process prepares the run's data (the phases show as usual,
  and a cancel between steps is honoured here) and puts it in Ray's object store; the worker
  reads it from there, so nodes need no shared filesystem. Runs whose data would be prepared
  alike (:func:`~ktrdr_lib.pipeline.prepare.preparation_key`: a sweep's trials) reuse one
  object while somebody holds its key (:meth:`RayTrainingRunner.hold`). With
  ``prepare_on="worker"`` the worker prepares instead, from a data directory every node reads
  at the same path.
- **Where**: one named, detached actor per run (:class:`~ktrdr_lib.runners.ray_actor.RunActor`,
  ``ktrdr-<operation id>``, namespace ``ktrdr``) with the run's ``num_cpus``/``num_gpus``.
  While the cluster has no room, the run waits (``queued``) and a cancel ends it at once.
- **Progress**: the actor keeps its tracker's throttled snapshots and epoch rows; this
  runner polls it every ``poll_interval`` (one remote call per poll, never one per batch) and
  republishes them under the operation's own id (``ProgressTracker.forward``).
- **Cancel**: the token's request is sent to the actor at once and sets the worker's token:
  abort within a batch plus the call's delay, graceful after the running epoch.
- **Failures**: a worker or node that dies fails the operation with the reason Ray gives; an
  orchestrator that restarts re-attaches to actors still running (the actor name is stored as
  the operation's session id).
- **Result**: the model comes back as a checksummed archive and lands in the local
  ModelStore; the result has the keys of a local run, and ``session_info.ray`` names the Ray
  job, actor and node.

Ray is optional: without the ``ray`` extra, creating this runner raises a ConfigError that
names the extra.

Example:
    >>> orch = TrainingOrchestrator(ray_address="local")  # doctest: +SKIP
    >>> orch.start_training("rsi_mean_reversion", mode="ray", epochs=5).wait()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from ktrdr_lib.errors import ConfigError, OperationCancelled, TrainingError
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.runners.ray_actor import RunActor, RunOutcome, RunPoll, WorkerPlace
from ktrdr_lib.schemas.results import ArtifactsInfo, RayPlacement, TrainingResult
from ktrdr_lib.settings import read_str

if TYPE_CHECKING:
    from ktrdr_lib.pipeline.prepare import PreparedData

__all__ = [
    "NAMESPACE",
    "RAY_ADDRESS_ENV",
    "RayTrainingRunner",
    "actor_name",
    "import_ray",
    "ray_runner_from_env",
]

log = logging.getLogger(__name__)

RAY_ADDRESS_ENV = "KTRDR_RAY_ADDRESS"
"""The environment variable the orchestrator reads the Ray cluster's address from."""
NAMESPACE = "ktrdr"
"""The Ray namespace the runs' actors are named in."""
IDLE_RELEASE_S = 30.0
"""Seconds a run's actor may wait to start before idle warm actors give up their room."""

_MISSING_RAY = (
    "mode 'ray' needs Ray, which is not installed here: install the ray extra "
    "(pip install 'ktrdr-lib[ray]', or make dev), then set KTRDR_RAY_ADDRESS to a cluster "
    "address or 'local'"
)


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError naming the extra that brings it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(_MISSING_RAY) from exc
    return ray


def actor_name(operation_id: str) -> str:
    """The name of the actor that trains ``operation_id``."""
    return f"ktrdr-{operation_id}"


class RayTrainingRunner:
    """Runs training operations in Ray workers and follows them to the end.

    Args:
        address: the Ray cluster (``ray://head:10001``, ``head:6379`` or ``auto``), or
            ``local`` to start a Ray in this process for a single machine. When this process
            is already connected to Ray (``ray.init`` was called), that connection is used.
        local_cpus: CPUs a ``local`` Ray offers (default: this machine's).
        num_cpus: CPUs a run reserves when its request says nothing (default 1).
        num_gpus: GPUs a run reserves when its request says nothing (default: 1 when the
            cluster has GPUs, else 0).
        poll_interval: seconds between polls of a run's actor (default 0.2, the progress
            bridge's rate).
        prepare_on: ``driver`` (default: this process prepares the data and ships it through
            the object store) or ``worker`` (the worker reads ``data_dir`` itself: every node
            must see the same files at the same path).
        trainer_options: accelerator, devices and precision for Lightning in the worker.
        save_model: save each trained model (back here, in the local ModelStore).
        runtime_env: a Ray runtime environment for the runs' actors (``pip``,
            ``env_vars``, ...), for clusters whose nodes lack this library.
        log_to_driver: show the workers' output in this process (``local`` only).
        stall_timeout_s: how long a started run's actor may leave a poll unanswered before
            the run fails (a hung node).
        abort_grace_s: after an abort, how long the worker may take to stop before its actor
            is killed (the operation still ends ``cancelled``).
        warm_workers: actors of the default shape (``num_cpus``, ``num_gpus``) kept warm:
            torch and Lightning imported and a tiny sample run done, so a run that takes one
            starts training at once instead of after a new worker's seconds of imports. The
            pool fills once Ray is connected (the first ray-mode run, or :meth:`prestart`) and
            refills as runs take them; 0 turns it off.
        lease_s: an idle warm actor ends itself when this process has not renewed it for this
            long (the process died), so none outlives its pool.

    Raises:
        ConfigError: Ray is not installed (the message names the extra), or an option is out
            of range.
    """

    mode = "ray"
    can_reattach = True

    def __init__(
        self,
        address: str = "local",
        *,
        local_cpus: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        poll_interval: float = 0.2,
        prepare_on: str = "driver",
        trainer_options: TrainerOptions | None = None,
        save_model: bool = True,
        runtime_env: dict[str, Any] | None = None,
        log_to_driver: bool = False,
        stall_timeout_s: float = 120.0,
        abort_grace_s: float = 60.0,
        warm_workers: int = 1,
        lease_s: float = 60.0,
    ) -> None:
        import_ray()
        if prepare_on not in ("driver", "worker"):
            raise ConfigError(f"prepare_on must be 'driver' or 'worker', got {prepare_on!r}")
        for name, value in (
            ("poll_interval", poll_interval),
            ("stall_timeout_s", stall_timeout_s),
            ("abort_grace_s", abort_grace_s),
            ("num_cpus", num_cpus),
        ):
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if not address.strip():
            raise ConfigError(
                f"{RAY_ADDRESS_ENV} is empty; set it to a Ray cluster address "
                "(ray://head:10001) or 'local'"
            )
        self.address = address.strip()
        self.local_cpus = local_cpus
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.poll_interval = poll_interval
        self.prepare_on = prepare_on
        self.trainer_options = trainer_options or TrainerOptions(accelerator="auto")
        self.save_model = save_model
        self.runtime_env = runtime_env
        self.log_to_driver = log_to_driver
        self.stall_timeout_s = stall_timeout_s
        self.abort_grace_s = abort_grace_s
        self.preparations = 0  # data preparations done here (a sweep's bench row reads it)
        self._connect_lock = threading.Lock()
        self._started_ray = False
        self._shared: dict[str, Any] = {}  # preparation key -> ObjectRef, while held
        self._holds: Counter[str] = Counter()
        self._key_locks: dict[str, threading.Lock] = {}
        self._shared_lock = threading.Lock()
        if warm_workers < 0 or not lease_s > 0:
            raise ConfigError(
                f"warm_workers must be >= 0 and lease_s > 0, got {warm_workers} and {lease_s}"
            )
        self.warm_workers = warm_workers
        self.lease_s = lease_s
        self._warm: list[tuple[Any, str, Any]] = []  # (actor, name, its warm-up reference)
        self._warm_lock = threading.Lock()
        self._warm_target = warm_workers
        self._renewer: threading.Thread | None = None
        self._closing = threading.Event()
        self._totals: tuple[float, dict[str, float]] | None = None  # (when read, resources)

    # -- the cluster ---------------------------------------------------------------------------

    def connect(self) -> Any:
        """Connect to the cluster (once); returns the ``ray`` module."""
        ray = import_ray()
        with self._connect_lock:
            if ray.is_initialized():
                return ray
            options: dict[str, Any] = {
                "namespace": NAMESPACE,
                "include_dashboard": False,
                "log_to_driver": self.log_to_driver,
                "configure_logging": False,
            }
            if self.address == "local":  # a new Ray here, whatever RAY_ADDRESS says
                options["address"] = "local"
                options["num_cpus"] = self.local_cpus or os.cpu_count() or 1
            else:
                options["address"] = self.address
                options["log_to_driver"] = True
            try:
                ray.init(**options)
            except ConnectionError as exc:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {self.address!r} ({RAY_ADDRESS_ENV}): "
                    f"{exc}. Start it (ray start --head) or fix the address; a cluster that "
                    "uses token authentication also needs RAY_AUTH_MODE=token and its token "
                    "in this process's environment."
                ) from exc
            self._started_ray = self.address == "local"
            log.info("connected to Ray (%s)", self.address)
            return ray

    def _driver_node(self) -> str | None:
        try:
            return str(import_ray().get_runtime_context().get_node_id())
        except Exception:
            return None

    def warm_up(self) -> None:
        """Nothing to do ahead: Ray starts on the first ray-mode run (starting a local Ray
        takes seconds, and an orchestrator that never trains in ray mode should not pay)."""

    def close(self) -> None:
        """Drop the shared data this runner still holds and end its idle warm actors; a
        ``local`` Ray it started stops."""
        self._closing.set()
        with self._shared_lock:
            self._shared.clear()
            self._holds.clear()
        with self._warm_lock:
            idle, self._warm = self._warm, []
        if idle:
            ray = import_ray()
            for actor, _, _ in idle:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        if self._started_ray:
            ray = import_ray()
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._started_ray = False

    def describe(self) -> str:
        """The cluster, in words (for messages)."""
        return "a local Ray" if self.address == "local" else f"the Ray cluster at {self.address}"

    # -- warm actors ---------------------------------------------------------------------------

    def _cluster_resources(self) -> dict[str, float]:
        """The cluster's resources in all, read at most once every few seconds (a run asks
        several times while it starts; nodes join and leave far less often)."""
        now = time.monotonic()
        cached = self._totals
        if cached is None or now - cached[0] > 5.0:
            cached = (now, dict(self.connect().cluster_resources()))
            self._totals = cached
        return cached[1]

    def default_shape(self) -> tuple[float, float]:
        """The CPUs and GPUs of a run whose request names none (what warm actors reserve)."""
        total = self._cluster_resources()
        gpus = self.num_gpus if self.num_gpus is not None else min(total.get("GPU", 0.0), 1.0)
        return self.num_cpus, gpus

    def prestart(self, count: int | None = None) -> None:
        """Keep ``count`` warm actors (default ``warm_workers``) from now on; returns at once
        (they warm up in the background)."""
        if count is not None:
            self._warm_target = max(self._warm_target, count)
        self._fill()

    def _fill(self, reserved: tuple[float, float] = (0.0, 0.0)) -> None:
        """Warm actors up to the target, on room the cluster has free only: an idle warm
        actor never takes resources a run waits for (a run that finds no room ends idle ones,
        :meth:`_release_idle_for`). ``reserved``: the CPUs and GPUs of an actor this runner
        has just created, which the cluster's free room does not show yet."""
        if self._closing.is_set() or self._warm_target <= 0:
            return
        ray = self.connect()
        cpus, gpus = self.default_shape()
        with self._warm_lock:
            free = ray.available_resources()
            free_cpus = free.get("CPU", 0.0) - reserved[0]
            free_gpus = free.get("GPU", 0.0) - reserved[1]
            room = int(
                min(
                    free_cpus // cpus if cpus > 0 else self._warm_target,
                    free_gpus // gpus if gpus > 0 else self._warm_target,
                )
            )
            wanted = min(self._warm_target - len(self._warm), room)
            for _ in range(max(wanted, 0)):
                name = f"ktrdr-worker-{uuid.uuid4().hex[:12]}"
                actor = self._new_actor(ray, name, cpus, gpus, min_interval=0.2)
                self._warm.append((actor, name, actor.warm_up.remote(self.lease_s)))
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew, name="ktrdr-ray-warm", daemon=True
                )
                self._renewer.start()

    def _renew(self) -> None:
        """Thread: renew the idle warm actors' leases while this process lives."""
        while not self._closing.wait(self.lease_s / 4):
            with self._warm_lock:
                idle = list(self._warm)
            for actor, name, _ in idle:
                try:
                    actor.renew.remote()
                except Exception:  # gone (a node died): drop it, the next fill replaces it
                    log.info("warm Ray actor %s is gone", name)
                    with self._warm_lock:
                        self._warm = [w for w in self._warm if w[1] != name]

    def _release_idle(self, ray: Any) -> None:
        """End every idle warm actor (a run waits for the room they hold)."""
        with self._warm_lock:
            idle, self._warm = self._warm, []
        for actor, name, _ in idle:
            log.info("ending idle warm Ray actor %s: a run waits for its room", name)
            with contextlib.suppress(Exception):
                ray.kill(actor)

    def _release_idle_for(self, ray: Any, cpus: float, gpus: float) -> None:
        """End idle warm actors while the cluster lacks room for a run of another shape."""
        while True:
            free = ray.available_resources()
            if free.get("CPU", 0.0) >= cpus and free.get("GPU", 0.0) >= gpus:
                return
            with self._warm_lock:
                if not self._warm:
                    return
                actor, name, _ = self._warm.pop()
            log.info("ending warm Ray actor %s to make room for a %g CPU run", name, cpus)
            with contextlib.suppress(Exception):
                ray.kill(actor)
            time.sleep(0.2)  # the cluster frees its resources

    def _refill_later(self) -> None:
        """Top the warm pool up once the room of a run's ended actor is free again (the
        cluster frees it a moment after the kill), in the background."""
        if self._closing.is_set() or len(self._warm) >= self._warm_target:
            return

        def refill() -> None:
            with contextlib.suppress(Exception):  # the cluster went away: nothing to keep warm
                ray = self.connect()
                cpus, gpus = self.default_shape()
                deadline = time.monotonic() + 10.0
                while not self._closing.wait(0.1) and time.monotonic() < deadline:
                    free = ray.available_resources()
                    if free.get("CPU", 0.0) >= cpus and free.get("GPU", 0.0) >= gpus:
                        break
                self._fill()

        threading.Thread(target=refill, name="ktrdr-ray-refill", daemon=True).start()

    def _take_warm(self, cpus: float, gpus: float) -> tuple[Any, str] | None:
        """A warm actor of this shape, or ``None``: one that finished warming up if there is
        one, else the oldest still warming (its process is further along than a new one's;
        the run starts once its imports are done)."""
        if self.warm_workers <= 0 or (cpus, gpus) != self.default_shape():
            return None
        ray = import_ray()
        with self._warm_lock:
            for index, (actor, name, warming) in enumerate(self._warm):
                ready, _ = ray.wait([warming], timeout=0)
                if ready:
                    del self._warm[index]
                    return actor, name
            if self._warm:
                actor, name, _ = self._warm.pop(0)
                return actor, name
        return None

    def _new_actor(
        self, ray: Any, name: str, cpus: float, gpus: float, *, min_interval: float
    ) -> Any:
        options: dict[str, Any] = {
            "name": name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "num_cpus": cpus,
            "num_gpus": gpus,
            "max_restarts": 0,
            "max_concurrency": 4,
        }
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        return (
            ray.remote(RunActor)
            .options(**options)
            .remote(name, min_interval, max(1, math.ceil(cpus)))
        )

    # -- shared prepared data ------------------------------------------------------------------

    def hold(self, keys: list[str]) -> None:
        """Keep the prepared data of runs with these preparation keys in the object store
        until :meth:`release`: later runs with an equal key reuse it instead of preparing."""
        with self._shared_lock:
            self._holds.update(keys)

    def release(self, keys: list[str]) -> None:
        """Stop holding ``keys``; data nobody holds leaves the object store."""
        with self._shared_lock:
            self._holds.subtract(keys)
            for key in keys:
                if self._holds[key] <= 0:
                    del self._holds[key]
                    self._shared.pop(key, None)

    def _prepared_ref(
        self, context: TrainingOperationContext, token: CancelToken, tracker: ProgressTracker
    ) -> Any:
        """The object-store reference of the run's prepared data: shared when held, else
        prepared here now (phases on the operation's tracker)."""
        from ktrdr_lib.pipeline.prepare import PhaseSteps, preparation_key, prepare_data

        ray = self.connect()
        key = preparation_key(context)
        with self._shared_lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        while not lock.acquire(timeout=0.1):  # another run prepares this data right now
            token.raise_if_aborted()
        try:
            with self._shared_lock:
                ref = self._shared.get(key)
            if ref is not None:
                tracker.on_phase("labels", "Using data already prepared for this sweep")
                return ref
            steps = PhaseSteps(tracker, token)
            prepared: PreparedData = prepare_data(context, steps=steps)
            steps.close()
            steps.check()
            ref = ray.put(prepared)
            self.preparations += 1
            with self._shared_lock:
                if self._holds[key] > 0:
                    self._shared[key] = ref
            return ref
        finally:
            lock.release()

    # -- the run -------------------------------------------------------------------------------

    def resources(self, context: TrainingOperationContext) -> tuple[float, float]:
        """The CPUs and GPUs the run reserves, checked against what the cluster has.

        Raises:
            ConfigError: the cluster has fewer in all than the run asks for.
        """
        total = self._cluster_resources()
        cpus = context.num_cpus if context.num_cpus is not None else self.num_cpus
        gpus = context.num_gpus
        if gpus is None:
            gpus = self.num_gpus if self.num_gpus is not None else min(total.get("GPU", 0.0), 1.0)
        for name, wanted, have in (
            ("num_cpus", cpus, total.get("CPU", 0.0)),
            ("num_gpus", gpus, total.get("GPU", 0.0)),
        ):
            if wanted > have:
                raise ConfigError(
                    f"{name}: the run asks for {wanted:g} but {self.describe()} has "
                    f"{have:g} in all; ask for at most {have:g} (or add nodes)"
                )
        return cpus, gpus

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Train ``context`` in a Ray worker (or follow ``control.session_id``'s actor when
        re-attaching); returns the result with the model in the local store.

        Raises:
            OperationCancelled: the run was cancelled (by the token, or its actor was gone
                while an abort was under way).
            TrainingError: the worker failed, died, or stopped answering.
            ConfigError: the run asks for more than the cluster has.
            KtrdrError: the worker's error, as the same subclass (``DataError``, ...).
        """
        ray = self.connect()
        token, tracker = control.token, control.tracker
        if control.session_id is not None:
            return self._reattach(context, control.session_id, token, tracker)
        token.raise_if_aborted()
        if context.resume_from:
            raise ConfigError(
                "a ray-mode run cannot resume from a checkpoint: its checkpoints stay on the "
                "worker's node; resume local runs, or start the training again"
            )
        cpus, gpus = self.resources(context)
        prepared = (
            None if self.prepare_on == "worker" else self._prepared_ref(context, token, tracker)
        )
        token.raise_if_aborted()
        warm = self._take_warm(cpus, gpus)
        if warm is not None:
            actor, name = warm
            self._fill()  # a replacement warms up while this one trains
        else:
            # Idle warm actors must not keep this run from being placed: the cluster's free
            # room is exact now, before this run's actor asks for its share.
            self._release_idle_for(ray, cpus, gpus)
            name = actor_name(context.operation_id)
            actor = self._new_actor(ray, name, cpus, gpus, min_interval=tracker.min_interval)
            if (cpus, gpus) == self.default_shape():
                self._fill(reserved=(cpus, gpus))  # later runs of this shape find one ready
        control.on_session(name)
        tracker.on_phase(
            "queued", f"Waiting for {cpus:g} CPU and {gpus:g} GPU on {self.describe()}"
        )
        started = actor.start.remote(
            context,
            prepared,
            self.trainer_options,
            self.save_model,
            tracker.min_interval,
            max(1, math.ceil(cpus)),
            warm is not None,
        )
        answered: list[bool] = []  # the worker gave its outcome: the actor is sound
        try:
            place = self._wait_started(ray, actor, started, token)
            tracker.set_host_session(
                name, f"Training on Ray node {place.node_address} ({self.describe()})"
            )
            return self._follow(
                ray, context, actor, name, place, cpus, gpus, token, tracker, answered
            )
        finally:
            self._let_go(ray, actor, name, (cpus, gpus), reusable=bool(answered))

    def _let_go(
        self, ray: Any, actor: Any, name: str, shape: tuple[float, float], *, reusable: bool
    ) -> None:
        """After a run: its actor joins the warm pool when the pool is short of its target
        and the run ended with an outcome (a sweep's next trial then starts without a new
        process, as Ray Tune's actor reuse does); else it ends and the pool refills."""
        if (
            reusable
            and not self._closing.is_set()
            and len(self._warm) < self._warm_target
            and shape == self.default_shape()
        ):
            try:
                reset = actor.reset.remote(self.lease_s)
                reused = bool(ray.get(reset, timeout=30))
            except Exception:  # gone or stuck: end it like any other
                reused = False
            if reused:
                with self._warm_lock:
                    self._warm.append((actor, name, reset))
                return
        with contextlib.suppress(Exception):
            ray.kill(actor)
        self._refill_later()

    def _wait_started(self, ray: Any, actor: Any, started: Any, token: CancelToken) -> WorkerPlace:
        """Wait while the cluster finds room for the actor and its process starts; a cancel
        ends the wait at once. Room was made before the actor was created; a wait past
        :data:`IDLE_RELEASE_S` (other work took the room meanwhile) ends idle warm actors.
        Not sooner: a new worker process takes seconds to start, and that wait is not one a
        warm actor's room would shorten."""
        waited_since = time.monotonic()
        while True:
            if time.monotonic() - waited_since > IDLE_RELEASE_S:
                self._release_idle(ray)
                waited_since = time.monotonic()
            ready, _ = ray.wait([started], timeout=min(self.poll_interval, 0.1))
            if ready:
                try:
                    place: WorkerPlace = ray.get(started)
                except ray.exceptions.RayActorError as exc:
                    raise TrainingError(
                        f"the Ray worker for this run could not start: {_first_line(exc)}"
                    ) from exc
                return place
            if token.is_set:  # nothing ran yet: a graceful stop has no epoch to finish
                token.mark_observed()
                raise OperationCancelled(token.reason or "cancelled while waiting for Ray")

    def _reattach(
        self,
        context: TrainingOperationContext,
        name: str,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        ray = self.connect()
        try:
            actor = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            raise TrainingError(
                f"the Ray actor {name} that ran this operation is gone from "
                f"{self.describe()} (the cluster restarted, or the run's worker ended while "
                "nobody followed it); start the training again"
            ) from None
        try:
            place: WorkerPlace = ray.get(actor.place.remote(), timeout=self.stall_timeout_s)
        except Exception as exc:
            raise TrainingError(
                f"the Ray actor {name} does not answer: {_first_line(exc)}"
            ) from exc
        tracker.set_host_session(name, f"Re-attached to Ray actor {name} on {place.node_address}")
        try:
            return self._follow(ray, context, actor, name, place, None, None, token, tracker, [])
        finally:
            with contextlib.suppress(Exception):
                ray.kill(actor)

    def _follow(
        self,
        ray: Any,
        context: TrainingOperationContext,
        actor: Any,
        name: str,
        place: WorkerPlace,
        cpus: float | None,
        gpus: float | None,
        token: CancelToken,
        tracker: ProgressTracker,
        answered: list[bool],
    ) -> TrainingResult:
        """Poll the actor until the run's outcome (``answered`` then holds ``True``); send
        the token's requests to it."""
        seen = 0
        last_sequence = -1
        sent: str | None = None  # None, "graceful" or "abort"
        abort_deadline: float | None = None
        where = f"Ray actor {name} on node {place.node_address}"
        while True:
            wanted = None if not token.is_set else "graceful" if token.graceful else "abort"
            if wanted is not None and wanted != sent and sent != "abort":
                actor.cancel.remote(token.graceful, token.reason or "cancelled")
                sent = wanted
                if wanted == "abort":
                    abort_deadline = time.monotonic() + self.abort_grace_s
            try:
                poll: RunPoll = ray.get(actor.poll.remote(seen), timeout=self.stall_timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise TrainingError(
                    f"the {where} did not answer for {self.stall_timeout_s:g} s; the node may "
                    "be overloaded or cut off. Start the training again."
                ) from None
            except ray.exceptions.RayActorError as exc:
                if token.aborting:
                    raise OperationCancelled(
                        f"{token.reason or 'cancelled'} (the Ray worker went away)"
                    ) from exc
                raise TrainingError(
                    f"the Ray worker running this operation ({where}) died: "
                    f"{_first_line(exc)}. Ray may have killed it (out of memory) or the node "
                    "went down; start the training again."
                ) from exc
            if poll.snapshot is not None and poll.snapshot.sequence > last_sequence:
                last_sequence = poll.snapshot.sequence
                tracker.forward(msgspec.structs.replace(poll.snapshot, host_session_id=name))
            for row in poll.epochs:
                tracker.record_epoch(row)
            seen += len(poll.epochs)
            if poll.outcome is not None:
                answered.append(True)
                return self._finish(context, poll.outcome, name, place, cpus, gpus, token)
            if abort_deadline is not None and time.monotonic() > abort_deadline:
                raise OperationCancelled(
                    f"{token.reason or 'cancelled'} (the {where} did not stop within "
                    f"{self.abort_grace_s:g} s of the abort and was killed)"
                )
            if token.is_set:
                time.sleep(min(self.poll_interval, 0.05))
            else:
                token.wait(self.poll_interval)

    def _finish(
        self,
        context: TrainingOperationContext,
        outcome: RunOutcome,
        name: str,
        place: WorkerPlace,
        cpus: float | None,
        gpus: float | None,
        token: CancelToken,
    ) -> TrainingResult:
        """The run's result with its model imported here, or its error raised here."""
        if outcome.cancel_observed:
            # Monotonic clocks compare within one machine only: the worker's moment when it
            # ran here, else the moment its answer arrived.
            same_node = place.node_id == self._driver_node()
            token.mark_observed(at=outcome.cancel_observed_at if same_node else None)
        if outcome.error is not None:
            from ktrdr_lib.runners.process import _rebuild_error

            error = _rebuild_error(outcome.error)
            if not isinstance(error, OperationCancelled):
                log.warning("ray run %s failed:\n%s", name, outcome.error.trace.rstrip())
            raise error
        result = outcome.result
        if result is None:  # pragma: no cover - the actor always sets one or the other
            raise TrainingError(f"the {name} actor ended without a result")
        artifacts = ArtifactsInfo(  # the worker saved none: its reason (none: say so)
            no_model_reason=result.artifacts.no_model_reason
            or f"no model was saved: the Ray worker {name} sent none back"
        )
        if outcome.archive is not None and outcome.archive_sha256 is not None:
            artifacts = self._import_model(
                context, outcome.archive, outcome.archive_sha256, name, place
            )
        placement = RayPlacement(
            job_id=place.job_id,
            actor_name=name,
            actor_id=place.actor_id,
            node_id=place.node_id,
            node_address=place.node_address,
            num_cpus=cpus if cpus is not None else context.num_cpus or self.num_cpus,
            num_gpus=gpus if gpus is not None else context.num_gpus or 0.0,
        )
        info = msgspec.structs.replace(result.session_info, ray=placement, mode="ray")
        return msgspec.structs.replace(result, artifacts=artifacts, session_info=info)

    def _import_model(
        self,
        context: TrainingOperationContext,
        archive: bytes,
        sha256: str,
        name: str,
        place: WorkerPlace,
    ) -> ArtifactsInfo:
        from pathlib import Path

        from ktrdr_lib.models.archive import import_model_archive
        from ktrdr_lib.models.store import ModelStore

        saved = import_model_archive(
            archive,
            sha256,
            store=ModelStore(Path(context.models_dir)),
            name=context.model_name,
            extra_metadata={
                "operation_id": context.operation_id,
                "mode": "ray",
                "ray_actor": name,
                "ray_job_id": place.job_id,
                "ray_node_id": place.node_id,
                "ray_node_address": place.node_address,
            },
        )
        return ArtifactsInfo(
            model_id=saved.model_id,
            model_name=saved.name,
            model_version=saved.version,
            model_path=str(saved.path),
            size_bytes=saved.size_bytes,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def ray_runner_from_env(address: str | None, **options: Any) -> RayTrainingRunner | None:
    """A runner for ``address`` (else ``KTRDR_RAY_ADDRESS``), or ``None`` when neither is set.

    Raises:
        ConfigError: Ray is not installed (the message names the extra).
    """
    chosen = address if address is not None else read_str(RAY_ADDRESS_ENV)
    if chosen is None:
        return None
    return RayTrainingRunner(chosen, **options)
