"""A small typed client for the KTRDR HTTP API (``ktrdr serve api``), used by ``ktrdr --api``.

Every answer is decoded into its Struct: the v1 shapes of ``KTRDR-API-V1.md`` as
:mod:`ktrdr_lib.schemas.v1` declares them (:class:`~ktrdr_lib.schemas.v1.OperationInfo`,
:class:`~ktrdr_lib.schemas.v1.PerformanceResponse`, ...) and, for the routes v1 did not have,
the core Structs (:meth:`ApiClient.result` is a
:class:`~ktrdr_lib.schemas.results.TrainingResult`); nothing is read by string key. The event
stream yields :class:`~ktrdr_lib.schemas.progress.ProgressSnapshot` per ``progress`` event and
one :class:`FinalEvent` at the end. An answer that is not the expected shape raises
:class:`~ktrdr_lib.errors.KtrdrError`. Error bodies (``{status_code, detail, error_type, ...}``)
are turned back into the project's errors::

    KtrdrError
    ├── ConfigError / StrategyError / DataError / TrainingError / NotFoundError /
    │   StrategyNotFoundError / StateConflictError / OperationCancelled /
    │   HostUnavailableError      chosen by the body's ``error_type`` (else by status code)
    ├── ConfigError
    │   └── ApiAuthError          401/403: missing or wrong bearer token
    └── HostUnavailableError
        └── ApiUnreachableError   no connection to the API (refused, timed out, dropped)

Every answer is read as a stream with a hard cap (:mod:`ktrdr_lib.http.bounded`):
``max_response_bytes`` for an ordinary answer, :data:`MAX_ERROR_BYTES` for an error's body,
``max_event_bytes`` for one event of the event stream. An answer over its cap fails with a
KtrdrError that says so, without the rest being read.

httpx comes with the ``api`` extra (``pip install 'ktrdr_lib[api]'``); importing this module
without it raises an ImportError that says so. ``transport`` is the test seam
(``httpx.MockTransport``), as in httpx itself.

Example:
    >>> client = ApiClient("http://127.0.0.1:8000", token=None)  # doctest: +SKIP
    >>> started = client.start_training("small_test", symbols=["SYNTH"], timeframes=["1h"])
    >>> for event in client.events(started.task_id):  # doctest: +SKIP
    ...     print(event)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgspec

from ktrdr_lib.errors import ConfigError, HostUnavailableError, KtrdrError, rebuild_error
from ktrdr_lib.http.bounded import (
    IDENTITY,
    bounded_lines,
    encoding_refused,
    raw_chunks,
    read_bounded,
    size_text,
)
from ktrdr_lib.http.status import error_class_for, read_error_body
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
from ktrdr_lib.schemas.strategies import StrategyListing
from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot
from ktrdr_lib.schemas.v1 import (
    CancelResponse,
    CancelResult,
    ModelListItem,
    ModelsListResponse,
    OperationEnvelope,
    OperationInfo,
    OperationListResponse,
    PerformanceResponse,
    ResumeResponse,
    StrategiesResponse,
    StrategyValidateResponse,
    TrainingStartResponse,
)
from ktrdr_lib.settings import read_str

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "talking to a KTRDR API needs httpx; install the api extra: pip install 'ktrdr_lib[api]'"
    ) from exc

__all__ = [
    "API_PREFIX",
    "MAX_ERROR_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_RESPONSE_BYTES",
    "ApiAuthError",
    "ApiClient",
    "ApiUnreachableError",
    "StreamEvent",
    "error_from_response",
    "normalize_base_url",
]

API_PREFIX = "/api/v1"
MAX_RESPONSE_BYTES = 64 << 20  # an ordinary answer (a result with analytics, a long list)
MAX_ERROR_BYTES = 1 << 20  # an error answer's body
MAX_EVENT_BYTES = 1 << 20  # one event (or line) of an operation's event stream


class ApiAuthError(ConfigError):
    """The API refused the request's bearer token (or its absence)."""


class ApiUnreachableError(HostUnavailableError):
    """The API could not be reached, or the connection to it failed."""


StreamEvent = ProgressSnapshot | FinalEvent

_T = TypeVar("_T")
_decode_snapshot = msgspec.json.Decoder(ProgressSnapshot).decode
_decode_final = msgspec.json.Decoder(FinalEvent).decode


def normalize_base_url(url: str) -> str:
    """``host:port``, ``http://host:port/`` or ``http://host:port/api/v1`` → ``http://host:port``.

    Raises:
        ConfigError: the URL is empty or not http(s).
    """
    text = url.strip()
    if not text:
        raise ConfigError("the API URL is empty; pass --api http://HOST:PORT or set KTRDR_API_URL")
    if "://" not in text:
        text = "http://" + text
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"API URL {url!r} must start with http:// or https://")
    text = text.rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)]
    return text


def error_from_response(response: httpx.Response, *, token_sent: bool) -> KtrdrError:
    """The KtrdrError an error response stands for (its ``detail`` kept as the message)."""
    status = response.status_code
    body = read_error_body(response.content)
    if body is None:
        text = " ".join(response.text.split())[:300] or response.reason_phrase
        return KtrdrError(f"HTTP {status} from {response.request.url}: {text}")
    detail = body.detail
    cls: type[KtrdrError] = (
        ApiAuthError if status in (401, 403) else error_class_for(status, body.error_type)
    )
    if cls is ApiAuthError:
        hint = (
            "the token in KTRDR_API_TOKEN was refused; check that it is the server's token"
            if token_sent
            else "set KTRDR_API_TOKEN to the server's token"
        )
        detail = f"{detail.rstrip('.')} ({hint})"
    elif status >= 500 and cls is KtrdrError:
        detail = f"the server failed (HTTP {status}): {detail}"
    return rebuild_error(cls, detail, body.problems or ())


class ApiClient:
    """Blocking client for one KTRDR API server.

    Args:
        base_url: ``http://HOST:PORT`` (a trailing ``/api/v1`` is accepted).
        token: bearer token; ``None`` sends no Authorization header.
        timeout: seconds for connecting and for each ordinary request.
        stream_read_timeout: seconds without a byte (events or heartbeats) before an event
            stream counts as dropped and is reconnected.
        reconnect_attempts: consecutive failed reconnects before :meth:`events` gives up.
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
        max_response_bytes: the most an ordinary answer may hold.
        max_event_bytes: the most one event of an event stream may hold.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        stream_read_timeout: float = 60.0,
        reconnect_attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        if reconnect_attempts < 0:
            raise ConfigError(f"reconnect_attempts must be >= 0, got {reconnect_attempts}")
        for name, value in (
            ("max_response_bytes", max_response_bytes),
            ("max_event_bytes", max_event_bytes),
        ):
            if value < 1024:
                raise ConfigError(f"ApiClient {name} must be at least 1024 bytes, got {value}")
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes
        self.base_url = normalize_base_url(base_url)
        self.token = token or None
        self.stream_read_timeout = stream_read_timeout
        self.reconnect_attempts = reconnect_attempts
        headers = {"Accept": "application/json", "User-Agent": "ktrdr-cli", **IDENTITY}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    @classmethod
    def from_env(cls, url: str | None = None, **kwargs: Any) -> ApiClient:
        """A client for ``url`` or ``KTRDR_API_URL``, with ``KTRDR_API_TOKEN`` as the token."""
        base = url or read_str("KTRDR_API_URL")
        if not base:
            raise ConfigError("no API URL: pass --api http://HOST:PORT or set KTRDR_API_URL")
        return cls(base, token=read_str("KTRDR_API_TOKEN"), **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _unreachable(self, exc: httpx.TransportError, doing: str) -> ApiUnreachableError:
        reason = str(exc).strip() or type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ApiUnreachableError(
                f"could not reach the KTRDR API at {self.base_url} ({reason}); check that the "
                "server is running (`ktrdr serve api`) and that --api / KTRDR_API_URL points to it"
            )
        return ApiUnreachableError(
            f"the connection to the KTRDR API at {self.base_url} failed while {doing} "
            f"({reason}); check that the server is still running"
        )

    def _request(self, method: str, path: str, answer: type[_T], **kwargs: Any) -> _T:
        """Send one request; the answer decoded as ``answer`` (errors raised as KtrdrErrors)."""
        doing = f"{method} {API_PREFIX}{path}"
        try:
            with self._http.stream(method, path, **kwargs) as streamed:
                response = self._read(streamed, doing)
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(f"API URL {self.base_url!r} is not usable: {exc}") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc, doing) from exc
        if response.is_error:
            raise error_from_response(response, token_sent=self.token is not None)
        try:
            return msgspec.json.decode(response.content, type=answer)
        except msgspec.ValidationError as exc:
            raise KtrdrError(
                f"{doing} on {self.base_url} answered {response.status_code} with an unexpected "
                f"body ({exc}); is the server a KTRDR API of this version?"
            ) from exc
        except msgspec.DecodeError as exc:
            raise KtrdrError(
                f"{doing} on {self.base_url} answered {response.status_code} without JSON; "
                "is that URL a KTRDR API?"
            ) from exc

    def _read(self, streamed: httpx.Response, doing: str) -> httpx.Response:
        """The streamed answer as a read one, its body within ``max_response_bytes`` (an
        error's within :data:`MAX_ERROR_BYTES`: longer, it is left unread and the status
        speaks alone)."""
        self._refuse_encoding(streamed, doing)
        limit = MAX_ERROR_BYTES if streamed.is_error else self.max_response_bytes
        body = read_bounded(streamed, limit)
        if body is None and not streamed.is_error:
            raise KtrdrError(
                f"{doing} on {self.base_url} answered with more than {size_text(limit)}, the "
                "most this client reads from one answer; the rest was not read. Check that "
                "--api / KTRDR_API_URL points at a KTRDR API (or pass a larger "
                "max_response_bytes to ApiClient if such an answer is expected)."
            )
        return httpx.Response(streamed.status_code, content=body or b"", request=streamed.request)

    def _refuse_encoding(self, response: httpx.Response, doing: str) -> None:
        encoding = encoding_refused(response)
        if encoding is not None:
            raise KtrdrError(
                f"{doing} on {self.base_url} answered with Content-Encoding {encoding!r} "
                "although the client asked for identity; a compressed answer cannot be "
                "size-checked before it is inflated (a proxy in between must not compress)."
            )

    # -- trainings -----------------------------------------------------------------------------

    def start_training(
        self,
        strategy_name: str,
        *,
        symbols: list[str],
        timeframes: list[str],
        start_date: str | None = None,
        end_date: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        seed: int | None = None,
        mode: str | None = None,
        detailed_analytics: bool = False,
        loggers: list[str] | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        placebo_runs: int = 0,
    ) -> TrainingStartResponse:
        """``POST /trainings/start``; the answer's ``task_id`` is the operation id.

        Only the fields given are sent (the server's defaults apply to the rest);
        ``placebo_runs`` trains that many placebos on random walks after the run.
        """
        body: dict[str, Any] = {
            "strategy_name": strategy_name,
            "symbols": list(symbols),
            "timeframes": list(timeframes),
        }
        optional = {
            "start_date": start_date,
            "end_date": end_date,
            "overrides": dict(overrides) if overrides else None,
            "seed": seed,
            "mode": mode,
            "detailed_analytics": detailed_analytics or None,
            "loggers": None if loggers is None else list(loggers),
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "placebo_runs": placebo_runs or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._request("POST", "/trainings/start", TrainingStartResponse, json=body)

    def resume(self, operation_id: str) -> ResumeResponse:
        """``POST /operations/{id}/resume``: continue a stopped run from its checkpoint; the
        answer's ``task_id`` is the new, linked operation's id."""
        return self._request("POST", f"/operations/{operation_id}/resume", ResumeResponse)

    def performance(self, task_id: str) -> PerformanceResponse:
        """``GET /trainings/{task_id}/performance`` (StateConflictError until completed)."""
        return self._request("GET", f"/trainings/{task_id}/performance", PerformanceResponse)

    def strategies(self) -> list[StrategyListing]:
        """``GET /strategies``: what the server resolves by name."""
        return self._request("GET", "/strategies", StrategiesResponse).strategies

    def validate_strategy(
        self, content: str, *, file_name: str | None = None
    ) -> StrategyValidateResponse:
        """``POST /strategies/validate``: every problem of a strategy's YAML text."""
        body: dict[str, Any] = {"content": content}
        if file_name is not None:
            body["file_name"] = file_name
        return self._request("POST", "/strategies/validate", StrategyValidateResponse, json=body)

    def list_models(self) -> list[ModelListItem]:
        """``GET /models``: every saved model version."""
        return self._request("GET", "/models", ModelsListResponse).models

    # -- sweeps --------------------------------------------------------------------------------

    def start_sweep(self, request: SweepRequest) -> SweepSnapshot:
        """``POST /sweeps``: start a sweep on the server's Ray cluster; the answer's
        ``operation.operation_id`` is the sweep's id."""
        body = msgspec.to_builtins(request)
        return self._request("POST", "/sweeps", SweepSnapshot, json=body)

    def sweep(self, sweep_id: str) -> SweepSnapshot:
        """``GET /sweeps/{id}``: the sweep as it stands (its ranking once it ended)."""
        return self._request("GET", f"/sweeps/{sweep_id}", SweepSnapshot)

    # -- operations ----------------------------------------------------------------------------

    def get_operation(self, operation_id: str) -> OperationInfo:
        """The v1 ``OperationInfo`` (``data`` of ``GET /operations/{id}``)."""
        return self._request("GET", f"/operations/{operation_id}", OperationEnvelope).data

    def result(self, operation_id: str) -> TrainingResult:
        """``GET /operations/{id}/result``: the run's TrainingResult (the partial one for a
        cancelled or failed run).

        Raises:
            NotFoundError: unknown id.
            StateConflictError: the run has no result (yet).
        """
        return self._request("GET", f"/operations/{operation_id}/result", TrainingResult)

    def analytics(self, task_id: str) -> TrainingAnalytics:
        """``GET /trainings/{id}/analytics``: the detailed analytics a completed run recorded.

        Raises:
            NotFoundError: unknown id, or the run recorded none.
            StateConflictError: the run has not ended yet.
        """
        return self._request("GET", f"/trainings/{task_id}/analytics", TrainingAnalytics)

    def list_operations(
        self,
        *,
        status: str | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> OperationListResponse:
        """``GET /operations``: ``total_count``, ``active_count`` and the rows, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        if operation_type is not None:
            params["operation_type"] = operation_type
        if active_only:
            params["active_only"] = "true"
        return self._request("GET", "/operations", OperationListResponse, params=params)

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> CancelResult:
        """``DELETE /operations/{id}``; ``status`` is ``cancelled`` or ``cancelling``."""
        body: dict[str, Any] = {"graceful": graceful}
        if reason is not None:
            body["reason"] = reason
        path = f"/operations/{operation_id}"
        return self._request("DELETE", path, CancelResponse, json=body).data

    def wait(
        self, operation_id: str, *, timeout: float | None = None, interval: float = 0.3
    ) -> OperationInfo:
        """Poll the operation until its v1 status is final (or ``timeout``); returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.get_operation(operation_id)
            if info.status in ("completed", "failed", "cancelled"):
                return info
            if deadline is not None and time.monotonic() >= deadline:
                return info
            time.sleep(interval)

    def events(self, operation_id: str, *, after: int = 0) -> Iterator[StreamEvent]:
        """Follow ``/operations/{id}/events``: ProgressSnapshots, then one FinalEvent.

        A dropped connection (or one that ends without a final event) is reopened with
        ``Last-Event-ID`` set to the last sequence seen, so nothing is repeated or skipped;
        after ``reconnect_attempts`` consecutive failures ApiUnreachableError is raised.

        Raises:
            ApiUnreachableError: the server stayed unreachable.
            NotFoundError, ApiAuthError, ...: the server answered the request with an error.
        """
        last = after
        failures = 0
        path = f"/operations/{operation_id}/events"
        timeout = httpx.Timeout(self._http.timeout.connect, read=self.stream_read_timeout)
        while True:
            headers = {"Accept": "text/event-stream"}
            if last > 0:
                headers["Last-Event-ID"] = str(last)
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if response.is_error:
                        read = self._read(response, f"following {operation_id}")
                        raise error_from_response(read, token_sent=self.token is not None)
                    self._refuse_encoding(response, f"following {operation_id}")
                    lines = bounded_lines(raw_chunks(response), self.max_event_bytes)
                    for kind, data in _sse_messages(lines, self.max_event_bytes, operation_id):
                        if kind == "progress":
                            snap = _decode_event(_decode_snapshot, data, kind)
                            if snap.sequence <= last:
                                continue
                            last = snap.sequence
                            failures = 0
                            yield snap
                        elif kind == "final":
                            yield _decode_event(_decode_final, data, kind)
                            return
                reason = "the stream ended without a final event"
            except httpx.UnsupportedProtocol as exc:
                raise ConfigError(f"API URL {self.base_url!r} is not usable: {exc}") from exc
            except httpx.TransportError as exc:
                if failures >= self.reconnect_attempts:
                    raise self._unreachable(exc, f"following {operation_id}") from exc
                reason = str(exc)
            if failures >= self.reconnect_attempts:
                raise ApiUnreachableError(
                    f"lost the event stream of {operation_id} on {self.base_url}: {reason}"
                )
            time.sleep(min(0.25 * 2**failures, 5.0))
            failures += 1


def _decode_event(decode: Callable[[str], _T], data: str, kind: str) -> _T:
    try:
        return decode(data)
    except msgspec.DecodeError as exc:
        raise KtrdrError(f"the server sent a malformed {kind} event: {exc}") from exc


def _sse_messages(
    lines: Iterator[str | None], limit: int, operation_id: str
) -> Iterator[tuple[str, str]]:
    """``(event, data)`` per server-sent event; comments (heartbeats) are skipped.

    Raises:
        KtrdrError: a line (``None`` from :func:`bounded_lines`) or an event's data is over
            ``limit`` bytes.
    """
    kind = "message"
    data: list[str] = []
    size = 0
    for line in lines:
        if line is None or size > limit:
            raise KtrdrError(
                f"the event stream of {operation_id} sent an event over {size_text(limit)}, "
                "the most this client reads for one event; the stream was closed. Check that "
                "--api / KTRDR_API_URL points at a KTRDR API."
            )
        if not line:
            if data:
                yield kind, "\n".join(data)
            kind, data, size = "message", [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
            size += len(value) + 1
    # an event cut off by the end of the stream is incomplete: dropped, as the SSE spec says
