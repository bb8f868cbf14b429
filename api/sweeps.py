"""SweepApi: what the sweep routes do, as plain methods over the TrainingOrchestrator.

A sweep is an operation of its own (``operation_type`` ``sweep``, mode ``ray``) whose trials
are training operations; the routes under ``/sweeps`` start one, read its
:class:`~ktrdr_lib.schemas.sweeps.SweepSnapshot` and follow it as a stream. Cancelling needs no
route of its own: ``DELETE /operations/{sweep_id}`` cancels the sweep and every trial.

Like :class:`~api.service.TrainingApi` it is framework free: it takes and returns the core
Structs and raises the project's errors. The stream polls the orchestrator's sweep reads in a
worker thread (they read the store) and sleeps on the event loop between polls, so a client
holds no thread while it waits and one that disconnects costs nothing.

Example:
    >>> sweeps = SweepApi(TrainingOrchestrator(ray_address="local"))  # doctest: +SKIP
    >>> first = sweeps.start(SweepRequest(
    ...     strategy="rsi_mean_reversion", epochs=3,
    ...     space={"model.training.learning_rate": [0.001, 0.01]}))  # doctest: +SKIP
    >>> len(first.trials)  # doctest: +SKIP
    2
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from api.events import Heartbeat
from api.names import check_name
from ktrdr_lib.errors import ConfigError, NotFoundError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot
from ktrdr_lib.strategy.discovery import resolve_strategy_name

__all__ = ["SWEEP_POLL_S", "SWEEP_SETTINGS", "SweepApi", "SweepEnd", "SweepEvent", "sweep_events"]

SWEEP_POLL_S = 0.5
"""Seconds between a sweep stream's reads by default (as ``follow_sweep``): each read asks the
store for every trial's record and epochs, so a big sweep's read is not free."""

SWEEP_SETTINGS: tuple[str, ...] = tuple(
    name
    for name in SweepRequest.__struct_fields__
    if name not in TrainingRequest.__struct_fields__ and name not in ("strategy", "space")
)
"""The body fields that set up the sweep itself (``metric``, ``search``, ``early_stop``, ...);
each is passed to :meth:`TrainingOrchestrator.sweep` under its own name. The rest of the body
is the training request every trial shares."""


class SweepEnd(msgspec.Struct, frozen=True):
    """The last event of a sweep's stream: the sweep as it ended (``sweep.result`` ranks the
    trials, unless the sweep failed before ranking them)."""

    sweep: SweepSnapshot


SweepEvent = SweepSnapshot | SweepEnd | Heartbeat
_encode = msgspec.json.Encoder().encode


class SweepApi:
    """The sweep routes' operations on an orchestrator.

    Args:
        orchestrator: the orchestrator that runs the sweeps (it needs a Ray cluster:
            ``KTRDR_RAY_ADDRESS`` or ``ray_address``/``ray_runner``).
        poll_s: seconds between a sweep stream's reads of the sweep.
        sse_heartbeat_s: idle seconds between heartbeats on the stream.
    """

    def __init__(
        self,
        orchestrator: TrainingOrchestrator,
        *,
        poll_s: float = SWEEP_POLL_S,
        sse_heartbeat_s: float = 15.0,
    ) -> None:
        if poll_s <= 0:
            raise ConfigError(f"poll_s must be > 0, got {poll_s}")
        if sse_heartbeat_s <= 0:
            raise ConfigError(f"sse_heartbeat_s must be > 0, got {sse_heartbeat_s}")
        self.orchestrator = orchestrator
        self.poll_s = poll_s
        self.sse_heartbeat_s = sse_heartbeat_s

    def start(self, request: SweepRequest) -> SweepSnapshot:
        """Check the whole request, store the sweep and its trials, and start them.

        ``strategy`` is a name only (searched in KTRDR_STRATEGIES_DIR, then the shipped
        examples).

        Returns:
            The sweep as it stands right after the start (trials ``pending``).

        Raises:
            StrategyNotFoundError: no strategy of that name; the detail lists the places
                searched.
            ConfigError / StrategyError: the request, the space or the strategy is invalid,
                asks for more than a cap (``KTRDR_MAX_*``), Ray is not installed, or no Ray
                cluster is configured (nothing is stored).
            QueueFullError: too many runs wait already.
        """
        if request.best_model_name is not None:
            check_name("best_model_name", request.best_model_name)
        shared = TrainingRequest(
            **{name: getattr(request, name) for name in TrainingRequest.__struct_fields__}
        )
        settings: dict[str, Any] = {name: getattr(request, name) for name in SWEEP_SETTINGS}
        handle = self.orchestrator.sweep(
            resolve_strategy_name(request.strategy), request.space, request=shared, **settings
        )
        return self.orchestrator.get_sweep(handle.operation_id)

    def get(self, sweep_id: str) -> SweepSnapshot:
        """The sweep now: its operation, settings and every trial.

        Raises:
            NotFoundError: unknown id, or the id of an operation that is not a sweep.
        """
        self._check_is_sweep(sweep_id)
        return self.orchestrator.get_sweep(sweep_id)

    def events(self, sweep_id: str) -> AsyncIterator[SweepEvent]:
        """The sweep as it changes, then as it ended (see :func:`sweep_events`).

        Checks at once, before any event is sent.

        Raises:
            NotFoundError: unknown id, or not a sweep.
        """
        self._check_is_sweep(sweep_id)
        return sweep_events(
            self.orchestrator,
            sweep_id,
            poll_s=self.poll_s,
            heartbeat_s=self.sse_heartbeat_s,
        )

    def _check_is_sweep(self, sweep_id: str) -> None:
        check_name("sweep id", sweep_id)
        try:
            record = self.orchestrator.get_operation(sweep_id)
        except NotFoundError as exc:
            raise NotFoundError(f"Sweep not found: {sweep_id}") from exc
        if record.operation_type != "sweep":
            raise NotFoundError(
                f"Sweep not found: {sweep_id} is a {record.operation_type} operation, not a "
                f"sweep; read it at GET /operations/{sweep_id}"
            )


async def sweep_events(
    orchestrator: TrainingOrchestrator,
    sweep_id: str,
    *,
    poll_s: float = SWEEP_POLL_S,
    heartbeat_s: float = 15.0,
) -> AsyncIterator[SweepEvent]:
    """The sweep now, then each time it changes, then one :class:`SweepEnd` with the sweep as
    it ended; a :class:`~api.events.Heartbeat` after each idle ``heartbeat_s``.

    A change is what :meth:`TrainingOrchestrator.follow_sweep` counts as one: a trial's status,
    epoch or metric, the sweep's status or its progress message. The end is the sweep's final
    progress snapshot (so the last snapshot has the final message and, once ranked, the
    result). Every snapshot is the whole sweep, so a client that reconnects needs no replay:
    it starts from the current state.

    Args:
        orchestrator: the orchestrator that knows the sweep.
        sweep_id: the sweep to follow (the caller checks that it is one).
        poll_s: seconds between reads.
        heartbeat_s: idle seconds between heartbeats.
    """
    sequence = 0
    last: bytes | None = None
    idle = 0.0
    while True:
        snapshot, sequence, ended = await asyncio.to_thread(_read, orchestrator, sweep_id, sequence)
        if ended:
            yield SweepEnd(sweep=snapshot)
            return
        key = _change_key(snapshot)
        if key != last:
            last, idle = key, 0.0
            yield snapshot
        elif idle >= heartbeat_s:
            idle = 0.0
            yield Heartbeat()
        await asyncio.sleep(poll_s)
        idle += poll_s


def _read(
    orchestrator: TrainingOrchestrator, sweep_id: str, after: int
) -> tuple[SweepSnapshot, int, bool]:
    """The sweep now, the last progress sequence seen, and whether the sweep has ended (its
    final progress snapshot is published; read first, so the sweep read after it is final)."""
    batch, ended = orchestrator.poll(sweep_id, after)
    sequence = batch[-1].sequence if batch else after
    return orchestrator.get_sweep(sweep_id), sequence, ended


def _change_key(snapshot: SweepSnapshot) -> bytes:
    return _encode(
        [snapshot.trials, snapshot.operation.status, snapshot.operation.progress.message]
    )
