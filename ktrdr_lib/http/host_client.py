"""HostClient: typed calls to a training host's ``/host/v1`` routes (sync httpx).

``transport`` is the test seam (``httpx.MockTransport``). Errors::

    KtrdrError
    ├── ConfigError              400: the host rejected the request (``StrategyError`` with
    │                            every problem when the strategy was rejected)
    ├── NotFoundError
    │   └── HostSessionGone      404: the host does not know the session (restarted, forgot it)
    ├── StateConflictError       409: e.g. stopping a finished session
    └── HostUnavailableError
        ├── HostUnreachableError no connection, a timeout, or a 5xx/429 (retried while polling)
        ├── HostAuthError        401/403: missing or wrong KTRDR_HOST_TOKEN
        └── HostProtocolError    an answer that is not the protocol (wrong URL, wrong server)
            └── HostResponseTooLargeError  an answer over its call's cap (the rest unread)

Every answer is read as a stream with a hard cap suited to its call (:mod:`ktrdr_lib.http.bounded`):
:data:`MAX_STATUS_BYTES` for health, session starts, stops, snapshots and error answers,
:data:`MAX_RESULT_BYTES` for a result or an epoch history, :data:`MAX_ARCHIVE_BYTES` for a
model archive. An answer over its cap fails the call without reading the rest, so a host (or
whatever answers at its URL) cannot make its client hold more than that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from ktrdr_lib.errors import (
    ConfigError,
    HostUnavailableError,
    KtrdrError,
    NotFoundError,
    StrategyError,
    rebuild_error,
)
from ktrdr_lib.http.bounded import IDENTITY, encoding_refused, read_bounded, size_text
from ktrdr_lib.http.status import error_class_for, read_error_body
from ktrdr_lib.schemas.health import OperationMetrics
from ktrdr_lib.schemas.host import (
    HOST_PREFIX,
    MAX_ID_CHARS,
    MAX_REASON_CHARS,
    MODEL_ID_HEADER,
    SHA256_HEADER,
    HostHealth,
    HostSessionCreated,
    HostSessionRequest,
    HostSessionStatus,
    HostStopRequest,
    ModelArchive,
)
from ktrdr_lib.schemas.results import TrainingResult

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "training on a host needs httpx; install the host extra: pip install 'ktrdr_lib[host]'"
    ) from exc

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_RESULT_BYTES",
    "MAX_STATUS_BYTES",
    "HostAuthError",
    "HostClient",
    "HostProtocolError",
    "HostResponseTooLargeError",
    "HostSessionGone",
    "HostUnreachableError",
]

T = TypeVar("T")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# The most an answer may hold, per kind of call (the host's own answers are far smaller).
MAX_STATUS_BYTES = 1 << 20  # health, session start/resume/stop/status, any error answer
MAX_RESULT_BYTES = 16 << 20  # a TrainingResult, an epoch history
MAX_ARCHIVE_BYTES = 1 << 30  # a model archive: models.archive.DEFAULT_MAX_ARCHIVE_BYTES


class HostUnreachableError(HostUnavailableError):
    """No connection to the host, a timeout, or a server-side failure (5xx, 429).

    Args:
        detail: the whole message.
        reason: the cause in a few words (``connection refused``, ``timed out after 10 s``,
            ``answered 503``), for messages that sum up several failures.
    """

    reason: str = "no answer"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason


class HostAuthError(HostUnavailableError):
    """The host refused the bearer token (or its absence)."""


class HostProtocolError(HostUnavailableError):
    """The host answered with something that is not the host protocol."""


class HostResponseTooLargeError(HostProtocolError):
    """The host's answer was larger than its call accepts; the rest of it was not read."""


class HostSessionGone(NotFoundError):
    """The host does not know the session (it restarted, or forgot a finished one)."""


def _normalize(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith(HOST_PREFIX):
        url = url[: -len(HOST_PREFIX)]
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"host URL {url!r} is not an http(s) URL; set KTRDR_HOST_URL (or host_url) like "
            "http://127.0.0.1:5002"
        )
    return url


@dataclass(frozen=True)
class _Answer:
    """An answer read within its cap."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    body_over_cap: bool = False  # an error answer whose body was over the cap (left unread)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def _transport_reason(exc: httpx.TransportError) -> str:
    """A transport failure in a few words: ``connection refused`` when nothing listens."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return "connection refused"
    return text


class HostClient:
    """Typed calls to a training host's ``/host/v1`` routes.

    Args:
        base_url: the host's root URL (``http://host:5002``; a trailing ``/host/v1`` is fine).
        token: the host's bearer token (``KTRDR_HOST_TOKEN``), or ``None`` for an insecure host.
        timeout: seconds per request (connect, read, write).
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        max_status_bytes: the most a status-sized answer (health, a session's start, stop or
            snapshot, any error) may hold.
        max_result_bytes: the most a result or an epoch history may hold.
        max_archive_bytes: the most a model archive may hold.

    Raises:
        ConfigError: the URL is not http(s), or a cap is below 1 KiB.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_status_bytes: int = MAX_STATUS_BYTES,
        max_result_bytes: int = MAX_RESULT_BYTES,
        max_archive_bytes: int = MAX_ARCHIVE_BYTES,
    ) -> None:
        self.base_url = _normalize(base_url)
        self.timeout = timeout
        caps = {
            "max_status_bytes": max_status_bytes,
            "max_result_bytes": max_result_bytes,
            "max_archive_bytes": max_archive_bytes,
        }
        for name, value in caps.items():
            if value < 1024:
                raise ConfigError(f"HostClient {name} must be at least 1024 bytes, got {value}")
        self.max_status_bytes = max_status_bytes
        self.max_result_bytes = max_result_bytes
        self.max_archive_bytes = max_archive_bytes
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url + HOST_PREFIX,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def health(self) -> HostHealth:
        """``GET /health``."""
        return self._decode("GET /health", self._status("GET", "/health"), HostHealth)

    def start_session(self, request: HostSessionRequest) -> HostSessionCreated:
        """``POST /sessions``: start a session (queued ``pending`` when the host is busy)."""
        response = self._status("POST", "/sessions", content=msgspec.json.encode(request))
        return self._decode("POST /sessions", response, HostSessionCreated)

    def resume_session(self, session_id: str) -> HostSessionCreated:
        """``POST /sessions/{id}/resume``: continue a stopped session as a new one."""
        response = self._status("POST", f"/sessions/{session_id}/resume")
        return self._decode(f"POST /sessions/{session_id}/resume", response, HostSessionCreated)

    def session(self, session_id: str) -> HostSessionStatus:
        """``GET /sessions/{id}``."""
        what = f"GET /sessions/{session_id}"
        answer = self._status("GET", f"/sessions/{session_id}")
        status = self._decode(what, answer, HostSessionStatus)
        if status.session_id != session_id:
            raise HostProtocolError(
                f"host {self.base_url} answered {what} with session {status.session_id!r}; "
                "check that KTRDR_HOST_URL points at a ktrdr training host"
            )
        return status

    def stop(
        self, session_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> HostSessionStatus:
        """``POST /sessions/{id}/stop``; returns at once (StateConflictError when final).

        A ``reason`` longer than the protocol's :data:`~ktrdr_lib.schemas.host.MAX_REASON_CHARS`
        is cut to it (the stop matters more than the whole reason).
        """
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 1] + "…"
        body = msgspec.json.encode(HostStopRequest(graceful=graceful, reason=reason))
        response = self._status("POST", f"/sessions/{session_id}/stop", content=body)
        return self._decode(f"POST /sessions/{session_id}/stop", response, HostSessionStatus)

    def result(self, session_id: str) -> TrainingResult:
        """``GET /sessions/{id}/result`` (StateConflictError unless completed)."""
        response = self._send("GET", f"/sessions/{session_id}/result", self.max_result_bytes)
        return self._decode(f"GET /sessions/{session_id}/result", response, TrainingResult)

    def metrics(self, session_id: str) -> OperationMetrics:
        """``GET /sessions/{id}/metrics``: the epoch history."""
        response = self._send("GET", f"/sessions/{session_id}/metrics", self.max_result_bytes)
        return self._decode(f"GET /sessions/{session_id}/metrics", response, OperationMetrics)

    def model_archive(self, session_id: str) -> ModelArchive:
        """``GET /sessions/{id}/artifacts/model``: the archive and its announced checksum."""
        what = f"GET /sessions/{session_id}/artifacts/model"
        response = self._send(
            "GET", f"/sessions/{session_id}/artifacts/model", self.max_archive_bytes
        )
        digest = response.headers.get(SHA256_HEADER)
        if not digest:
            raise HostProtocolError(
                f"host {self.base_url} answered {what} without an {SHA256_HEADER} header; the "
                "archive cannot be verified"
            )
        digest = digest.strip().lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise HostProtocolError(
                f"host {self.base_url} answered {what} with an {SHA256_HEADER} header that is "
                f"not a SHA-256 (64 hex digits): {digest[:80]!r}; the archive cannot be verified"
            )
        model_id = response.headers.get(MODEL_ID_HEADER)
        if model_id is not None and len(model_id) > MAX_ID_CHARS:
            raise HostProtocolError(
                f"host {self.base_url} answered {what} with an {MODEL_ID_HEADER} header of "
                f"{len(model_id)} characters (at most {MAX_ID_CHARS}); check that "
                "KTRDR_HOST_URL points at a ktrdr training host"
            )
        return ModelArchive(data=response.body, sha256=digest, model_id=model_id)

    # -- internals ---------------------------------------------------------------------------

    def _status(self, method: str, path: str, *, content: bytes | None = None) -> _Answer:
        return self._send(method, path, self.max_status_bytes, content=content)

    def _send(self, method: str, path: str, limit: int, *, content: bytes | None = None) -> _Answer:
        """One call, its answer read within ``limit`` bytes (an error answer within
        ``max_status_bytes``); an error answer raised as the matching KtrdrError."""
        what = f"{method} {path}"
        headers = dict(IDENTITY)
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(method, path, content=content, headers=headers)
        try:
            response = self._http.send(request, stream=True)
            try:
                answer = self._read(what, response, limit)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise HostUnreachableError(
                f"training host {self.base_url} did not answer {what} in time ({exc!r}); check "
                "that it runs (`ktrdr serve host`) and is reachable",
                reason=f"timed out after {self.timeout:g} s",
            ) from exc
        except httpx.TransportError as exc:
            raise HostUnreachableError(
                f"cannot reach the training host at {self.base_url} ({what}: {exc!r}); start it "
                "with `ktrdr serve host` or fix KTRDR_HOST_URL",
                reason=_transport_reason(exc),
            ) from exc
        if answer.is_success:
            return answer
        raise self._error(what, answer)

    def _read(self, what: str, response: httpx.Response, limit: int) -> _Answer:
        """The streamed answer's body, read no further than its cap."""
        encoding = encoding_refused(response)
        if encoding is not None:
            raise HostProtocolError(
                f"training host {self.base_url} answered {what} with Content-Encoding "
                f"{encoding!r} although the client asked for identity; a compressed answer "
                "cannot be size-checked before it is inflated. Point KTRDR_HOST_URL at the "
                "training host itself (a proxy in between must not compress)."
            )
        cap = limit if response.is_success else self.max_status_bytes
        body = read_bounded(response, cap)
        if body is None and response.is_success:
            raise HostResponseTooLargeError(
                f"training host {self.base_url} answered {what} with more than {size_text(cap)}, "
                "the most this call accepts; the rest was not read. A ktrdr training host "
                "answers it in far less: check that KTRDR_HOST_URL points at a ktrdr training "
                "host you trust (or pass a larger cap to HostClient if this answer is expected)."
            )
        return _Answer(
            status_code=response.status_code,
            reason_phrase=response.reason_phrase,
            headers=response.headers,
            body=body or b"",
            body_over_cap=body is None,
        )

    def _error(self, what: str, response: _Answer) -> KtrdrError:
        code = response.status_code
        body = read_error_body(response.body)
        if body is not None:
            detail = body.detail
        elif response.body_over_cap:
            detail = f"an error body over {size_text(self.max_status_bytes)}, not read"
        else:
            text = response.body.decode("utf-8", "replace")
            detail = text.strip()[:200] or response.reason_phrase
        where = f"training host {self.base_url} answered {what} with {code}"
        if code in (401, 403):
            return HostAuthError(
                f"{where}: {detail}. Set KTRDR_HOST_TOKEN (or host_token) to the host's token."
            )
        if code == 404:
            return HostSessionGone(f"{where}: {detail}")
        if code >= 500 or code in (408, 429):
            return HostUnreachableError(f"{where}: {detail}", reason=f"answered {code}")
        if code in (400, 409, 413, 422):
            if body is not None and body.problems:
                return StrategyError(body.problems)
            cls = error_class_for(code, body.error_type if body is not None else None)
            return rebuild_error(cls, f"{where}: {detail}")
        return HostProtocolError(f"{where}: {detail}")

    def _decode(self, what: str, response: _Answer, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(response.body, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            head = response.body[:120].decode("utf-8", "replace")
            raise HostProtocolError(
                f"training host {self.base_url} answered {what} with a payload that is not a "
                f"{kind.__name__}: {exc} (body starts {head!r}). Check that KTRDR_HOST_URL "
                "points at a ktrdr training host of this version."
            ) from exc
