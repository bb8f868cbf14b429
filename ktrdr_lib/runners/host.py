"""HostTrainingRunner: training on a remote training host, followed to the end.

:class:`HostTrainingRunner` is the orchestrator's runner for ``mode="host"``. It starts a
session on a training host (``ktrdr serve host``), polls it, forwards each new host snapshot
through the operation's :class:`~ktrdr_lib.progress.tracker.ProgressTracker` (so percentage, ETA and
metrics mean the same as a local run), turns a cancel into a ``stop`` and waits for the host to
confirm, and on completion downloads the model archive, checks its SHA-256 and imports it into
the local ModelStore. The result has the keys of a local run (ResultAggregator).
Given a session id in its :class:`~ktrdr_lib.runners.base.RunControl`, it re-attaches to a
session that is already running (after an orchestrator restart).

:class:`~ktrdr_lib.http.host_client.HostClient` is the typed HTTP client underneath.

Faults while a run is followed: starting a session is tried once (a POST is not idempotent,
and a host that is down at the start should fail the operation at once); every later call is
retried with bounded exponential back-off for at most ``retry_budget_s`` of continuous
failure (default 30 s, or ``KTRDR_HOST_RETRY_BUDGET_S``), then the operation fails saying how
long the host did not answer, after how many attempts, and why ("the training host at
http://127.0.0.1:5002 did not answer for 30 s (11 attempts): connection refused").

Example:
    >>> runner = HostTrainingRunner("http://gpu-box:5002", token="s3cret")  # doctest: +SKIP
    >>> orch = TrainingOrchestrator(host_runner=runner)  # doctest: +SKIP
    >>> orch.start_training("small_test", mode="host", epochs=5).wait()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import yaml

from ktrdr_lib.errors import (
    ConfigError,
    DataError,
    KtrdrError,
    OperationCancelled,
    StateConflictError,
    TrainingError,
)
from ktrdr_lib.http.host_client import HostClient, HostSessionGone, HostUnreachableError
from ktrdr_lib.pipeline.aggregate import ResultAggregator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.runners.base import RunControl
from ktrdr_lib.schemas.host import HostSessionRequest, HostSessionStatus
from ktrdr_lib.schemas.results import ArtifactsInfo, TrainingResult
from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.settings import read_float, read_str

if TYPE_CHECKING:
    import httpx

__all__ = ["RETRY_BUDGET_ENV", "HostTrainingRunner", "host_runner_from_env"]

RETRY_BUDGET_ENV = "KTRDR_HOST_RETRY_BUDGET_S"
"""The environment variable :func:`host_runner_from_env` reads the retry budget from."""

log = logging.getLogger(__name__)
T = TypeVar("T")


class HostTrainingRunner:
    """Runs training operations on a training host and follows them to the end.

    Args:
        host_url: the host's root URL (``KTRDR_HOST_URL``).
        token: the host's bearer token (``KTRDR_HOST_TOKEN``).
        poll_interval: seconds between status polls (default 0.5).
        retry_budget_s: how long calls may keep failing (unreachable host, 5xx) before the
            operation fails (default 30; :func:`host_runner_from_env` reads
            ``KTRDR_HOST_RETRY_BUDGET_S``). A host that refuses connections fails the run
            within the budget; one that hangs may add one ``request_timeout_s``.
        backoff_initial_s / backoff_max_s: the first and the largest wait between retries;
            each failed call doubles the wait.
        stop_confirm_timeout_s: after an abort, how long to wait for the host to confirm
            before giving up on it (the operation still ends ``cancelled``); meanwhile the
            session is polled every 0.05 s (or ``poll_interval`` when shorter).
        request_timeout_s: seconds per HTTP request.
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        sleep: waits between retries and polls (default: on the cancel token, so a cancel
            wakes the loop at once); inject a fake for instant tests.
        clock: monotonic seconds (injectable for tests).
    """

    mode = "host"
    can_reattach = True

    def __init__(
        self,
        host_url: str,
        token: str | None = None,
        *,
        poll_interval: float = 0.5,
        retry_budget_s: float = 30.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 5.0,
        stop_confirm_timeout_s: float = 60.0,
        request_timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("poll_interval", poll_interval),
            ("retry_budget_s", retry_budget_s),
            ("backoff_initial_s", backoff_initial_s),
            ("stop_confirm_timeout_s", stop_confirm_timeout_s),
            ("request_timeout_s", request_timeout_s),
        ):
            if value <= 0 and name != "retry_budget_s":
                raise ConfigError(f"{name} must be > 0, got {value}")
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if backoff_max_s < backoff_initial_s:
            raise ConfigError(
                f"backoff_max_s ({backoff_max_s}) must be >= backoff_initial_s "
                f"({backoff_initial_s})"
            )
        self.client = HostClient(host_url, token, timeout=request_timeout_s, transport=transport)
        self.host_url = self.client.base_url
        self.poll_interval = poll_interval
        self.retry_budget_s = retry_budget_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stop_confirm_timeout_s = stop_confirm_timeout_s
        self.confirm_poll_s = min(poll_interval, 0.05)
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    # -- the run -----------------------------------------------------------------------------

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Train ``context`` on the host (or follow ``control.session_id`` when re-attaching);
        returns the result with local artifacts.

        ``control.token`` stops the host session when set; ``control.tracker`` receives every
        new host snapshot (:meth:`ProgressTracker.forward`); ``control.on_session`` hears the
        session id as soon as the host accepted the run.

        Raises:
            HostUnavailableError: the host could not be reached at the start, refused the
                token, answered garbage, or stayed unreachable past ``retry_budget_s``.
            ConfigError: the host rejected the request (every strategy problem listed).
            TrainingError: the session failed or was interrupted on the host, or vanished.
            OperationCancelled: the session was cancelled (by ``token`` or on the host).
            DataError: the model archive did not match its checksum or was malformed.
        """
        token, tracker = control.token, control.tracker
        if control.session_id is not None:
            return self.follow(context, control.session_id, token=token, tracker=tracker)
        token.raise_if_aborted()
        if context.resume_from:  # continue a stopped session from its checkpoint on the host
            session_id = self.client.resume_session(context.resume_from).session_id
            log.info(
                "operation %s resumes host session %s as %s",
                context.operation_id,
                context.resume_from,
                session_id,
            )
            control.on_session(session_id)
            tracker.set_host_session(
                session_id, f"Resuming session {context.resume_from} on {self.host_url}"
            )
            return self.follow(context, session_id, token=token, tracker=tracker)
        request = HostSessionRequest(
            strategy_yaml=yaml.safe_dump(context.strategy_config(), sort_keys=False),
            symbols=list(context.symbols),
            timeframes=list(context.timeframes),
            start_date=context.start_date,
            end_date=context.end_date,
            overrides=None,  # already applied to the strategy sent
            seed=context.seed,
            detailed_analytics=context.detailed_analytics,
            loggers=list(context.loggers),  # written on the host, under its own KTRDR_HOME
            client_operation_id=context.operation_id,
        )
        session_id = self.client.start_session(request).session_id  # once: POST is not idempotent
        log.info("operation %s runs as host session %s", context.operation_id, session_id)
        control.on_session(session_id)
        tracker.set_host_session(session_id, f"Started on training host {self.host_url}")
        return self.follow(context, session_id, token=token, tracker=tracker)

    def follow(
        self,
        context: TrainingOperationContext,
        session_id: str,
        *,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Follow host session ``session_id`` of ``context`` to its end; the result as ``run``.

        :meth:`run` calls it once the host accepted the session, or at once to re-attach after
        an orchestrator restart. A token already set stops the
        session first (a cancel that was under way when the previous process died).

        Raises:
            HostUnavailableError: the host stayed unreachable past ``retry_budget_s``, refused
                the token, or answered garbage.
            TrainingError: the session failed or was interrupted on the host, or is gone
                (404: the host restarted or forgot it).
            OperationCancelled: the session was cancelled (by ``token`` or on the host).
            DataError: the model archive did not match its checksum or was malformed.
        """
        final = self._follow(session_id, token=token, tracker=tracker)
        self._copy_history(session_id, tracker)
        if final.status == "completed":
            return self._collect(context, final, token=token)
        if final.status == "cancelled":
            reason = final.cancellation_reason or "cancelled on the training host"
            if not token.is_set:  # stopped on the host itself: the operation says so
                token.cancel(reason=f"host session {session_id} was cancelled: {reason}")
            token.mark_observed()
            raise OperationCancelled(token.reason or reason)
        if final.status == "interrupted":
            raise TrainingError(
                f"host session {session_id} on {self.host_url} was interrupted: "
                f"{final.error_message or 'the host stopped before it finished'}; start the "
                "training again"
            )
        raise TrainingError(
            f"host session {session_id} on {self.host_url} failed: "
            f"{final.error_message or 'the host gave no reason'}"
        )

    def _follow(
        self, session_id: str, *, token: CancelToken, tracker: ProgressTracker
    ) -> HostSessionStatus:
        """Poll until the session is final; stop it when the token is set."""
        last_sequence = -1
        stop_sent: str | None = None  # None, "graceful" or "abort"
        confirm_by: float | None = None
        while True:
            wanted = None if not token.is_set else "graceful" if token.graceful else "abort"
            if wanted is not None and wanted != stop_sent and stop_sent != "abort":
                self._stop(session_id, token)
                stop_sent = wanted
                if wanted == "abort":
                    confirm_by = self._clock() + self.stop_confirm_timeout_s
            status = self._retrying(
                f"following host session {session_id}",
                session_id,
                token,
                lambda: self.client.session(session_id),
            )
            if status.progress.sequence > last_sequence:
                last_sequence = status.progress.sequence
                tracker.forward(status.progress)
            if status.status in FINAL_STATUSES:
                return status
            if confirm_by is not None and self._clock() > confirm_by:
                raise OperationCancelled(
                    f"{token.reason or 'cancelled'} (host session {session_id} did not confirm "
                    f"the stop within {self.stop_confirm_timeout_s:.0f} s; it may still run "
                    "on the host)"
                )
            # Waiting for an abort to be confirmed, poll faster: it comes within a host batch.
            interval = self.poll_interval if confirm_by is None else self.confirm_poll_s
            self._pause(interval, token, wake_on_cancel=not token.is_set)

    def _stop(self, session_id: str, token: CancelToken) -> None:
        try:
            self._retrying(
                f"stopping host session {session_id}",
                session_id,
                token,
                lambda: self.client.stop(session_id, graceful=token.graceful, reason=token.reason),
            )
        except StateConflictError:
            return  # already final on the host; the next poll reads how it ended
        token.mark_observed()

    def _retrying(
        self,
        what: str,
        session_id: str,
        token: CancelToken,
        call: Callable[[], T],
    ) -> T:
        """``call()``, retried on HostUnreachableError with exponential back-off, for at most
        ``retry_budget_s`` of continuous failure."""
        first_failure: float | None = None
        delay = self.backoff_initial_s
        attempts = 0
        while True:
            try:
                return call()
            except HostUnreachableError as exc:
                attempts += 1
                now = self._clock()
                if first_failure is None:
                    first_failure = now
                spent = now - first_failure
                left = self.retry_budget_s - spent
                if left <= 0:
                    raise HostUnreachableError(
                        f"lost contact with the training host while {what}: the training host "
                        f"at {self.host_url} did not answer for {round(spent, 1):g} s "
                        f"({attempts} attempt{'s' if attempts != 1 else ''}): {exc.reason} "
                        f"(retry budget {self.retry_budget_s:g} s, set by retry_budget_s or "
                        f"{RETRY_BUDGET_ENV}). Check that the host runs (`ktrdr serve host`), "
                        f"then start the training again. Last error: {exc.detail}",
                        reason=exc.reason,
                    ) from exc
                log.warning("%s failed (%s); retrying in %.2f s", what, exc.detail, delay)
                self._pause(min(delay, left), token, wake_on_cancel=False)
                delay = min(delay * 2, self.backoff_max_s)
            except HostSessionGone as exc:
                raise TrainingError(
                    f"host session {session_id} is gone from {self.host_url} while {what} "
                    f"(the host restarted or forgot it): {exc.detail}"
                ) from exc

    def _pause(self, seconds: float, token: CancelToken, *, wake_on_cancel: bool) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif wake_on_cancel:
            token.wait(seconds)
        else:
            time.sleep(seconds)

    def _copy_history(self, session_id: str, tracker: ProgressTracker) -> None:
        """The host's epoch history into the local operation's (best effort)."""
        try:
            metrics = self.client.metrics(session_id)
        except KtrdrError as exc:
            log.warning("host session %s: epoch history not copied: %s", session_id, exc)
            return
        for row in metrics.epochs:
            tracker.record_epoch(row)

    def _collect(
        self, context: TrainingOperationContext, final: HostSessionStatus, *, token: CancelToken
    ) -> TrainingResult:
        """Result and model of a completed session, the model imported locally."""
        session_id = final.session_id
        remote = self._retrying(
            f"reading the result of host session {session_id}",
            session_id,
            token,
            lambda: self.client.result(session_id),
        )
        artifacts = None
        if final.model_available or remote.artifacts.model_id is not None:
            archive = self._retrying(
                f"downloading the model of host session {session_id}",
                session_id,
                token,
                lambda: self.client.model_archive(session_id),
            )
            actual = hashlib.sha256(archive.data).hexdigest()
            if not hmac.compare_digest(actual, archive.sha256):
                raise DataError(
                    f"the model archive of host session {session_id} does not match its "
                    f"checksum: the host announced sha256 {archive.sha256}, the "
                    f"{len(archive.data)} bytes received hash to {actual}. The download was "
                    "corrupted; train again or fetch the model from the host."
                )
            from ktrdr_lib.models.archive import import_model_archive
            from ktrdr_lib.models.store import ModelStore

            saved = import_model_archive(
                archive.data,
                archive.sha256,
                store=ModelStore(Path(context.models_dir)),
                name=context.model_name,
                extra_metadata={
                    "host_session_id": session_id,
                    "host_url": self.host_url,
                    "host_model_id": archive.model_id,
                    "operation_id": context.operation_id,
                    "mode": "host",
                },
            )
            artifacts = ArtifactsInfo(
                model_id=saved.model_id,
                model_name=saved.name,
                model_version=saved.version,
                model_path=str(saved.path),
                size_bytes=saved.size_bytes,
            )
        result = ResultAggregator.from_host(
            remote,
            host_session_id=session_id,
            artifacts=artifacts
            or ArtifactsInfo(  # the host saved none: its reason (none: say so) and no paths
                no_model_reason=remote.artifacts.no_model_reason
                or f"no model was saved: host session {session_id} offered none"
            ),
        )
        # The host ran its own operation from inline YAML: who and what are the local run's.
        info = ResultAggregator.session_info(
            context,
            started_at=result.session_info.started_at,
            finished_at=result.session_info.finished_at,
            cancellation_reason=result.session_info.cancellation_reason,
            host_session_id=session_id,
        )
        return msgspec.structs.replace(result, session_info=info)


def host_runner_from_env(
    host_url: str | None, host_token: str | None, **options: Any
) -> HostTrainingRunner | None:
    """A runner for ``host_url`` (else ``KTRDR_HOST_URL``), or ``None`` when neither is set.

    The token is ``host_token`` (else ``KTRDR_HOST_TOKEN``); the retry budget is
    ``options["retry_budget_s"]`` (else ``KTRDR_HOST_RETRY_BUDGET_S``, else 30 s); other
    ``options`` go to :class:`HostTrainingRunner`.

    Raises:
        ConfigError: ``KTRDR_HOST_RETRY_BUDGET_S`` is not a number of seconds ≥ 0, or the URL
            is not an http(s) URL.
    """
    url = host_url or read_str("KTRDR_HOST_URL")
    if url is None:
        return None
    token = host_token if host_token is not None else read_str("KTRDR_HOST_TOKEN")
    if "retry_budget_s" not in options:
        options["retry_budget_s"] = read_float(RETRY_BUDGET_ENV)
    return HostTrainingRunner(url, token, **options)
