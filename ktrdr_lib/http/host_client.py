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
"""

from __future__ import annotations

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
from ktrdr_lib.http.status import error_class_for, read_error_body
from ktrdr_lib.schemas.health import OperationMetrics
from ktrdr_lib.schemas.host import (
    HOST_PREFIX,
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
    "HostAuthError",
    "HostClient",
    "HostProtocolError",
    "HostSessionGone",
    "HostUnreachableError",
]

T = TypeVar("T")


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
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _normalize(base_url)
        self.timeout = timeout
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
        return self._decode("GET /health", self._send("GET", "/health"), HostHealth)

    def start_session(self, request: HostSessionRequest) -> HostSessionCreated:
        """``POST /sessions``: start a session (queued ``pending`` when the host is busy)."""
        response = self._send("POST", "/sessions", content=msgspec.json.encode(request))
        return self._decode("POST /sessions", response, HostSessionCreated)

    def resume_session(self, session_id: str) -> HostSessionCreated:
        """``POST /sessions/{id}/resume``: continue a stopped session as a new one."""
        response = self._send("POST", f"/sessions/{session_id}/resume")
        return self._decode(f"POST /sessions/{session_id}/resume", response, HostSessionCreated)

    def session(self, session_id: str) -> HostSessionStatus:
        """``GET /sessions/{id}``."""
        what = f"GET /sessions/{session_id}"
        status = self._decode(what, self._send("GET", f"/sessions/{session_id}"), HostSessionStatus)
        if status.session_id != session_id:
            raise HostProtocolError(
                f"host {self.base_url} answered {what} with session {status.session_id!r}; "
                "check that KTRDR_HOST_URL points at a ktrdr training host"
            )
        return status

    def stop(
        self, session_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> HostSessionStatus:
        """``POST /sessions/{id}/stop``; returns at once (StateConflictError when final)."""
        body = msgspec.json.encode(HostStopRequest(graceful=graceful, reason=reason))
        response = self._send("POST", f"/sessions/{session_id}/stop", content=body)
        return self._decode(f"POST /sessions/{session_id}/stop", response, HostSessionStatus)

    def result(self, session_id: str) -> TrainingResult:
        """``GET /sessions/{id}/result`` (StateConflictError unless completed)."""
        response = self._send("GET", f"/sessions/{session_id}/result")
        return self._decode(f"GET /sessions/{session_id}/result", response, TrainingResult)

    def metrics(self, session_id: str) -> OperationMetrics:
        """``GET /sessions/{id}/metrics``: the epoch history."""
        response = self._send("GET", f"/sessions/{session_id}/metrics")
        return self._decode(f"GET /sessions/{session_id}/metrics", response, OperationMetrics)

    def model_archive(self, session_id: str) -> ModelArchive:
        """``GET /sessions/{id}/artifacts/model``: the archive and its announced checksum."""
        what = f"GET /sessions/{session_id}/artifacts/model"
        response = self._send("GET", f"/sessions/{session_id}/artifacts/model")
        digest = response.headers.get(SHA256_HEADER)
        if not digest:
            raise HostProtocolError(
                f"host {self.base_url} answered {what} without an {SHA256_HEADER} header; the "
                "archive cannot be verified"
            )
        return ModelArchive(
            data=response.content,
            sha256=digest.strip().lower(),
            model_id=response.headers.get(MODEL_ID_HEADER),
        )

    # -- internals ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, content: bytes | None = None) -> httpx.Response:
        what = f"{method} {path}"
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._http.request(method, path, content=content, headers=headers)
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
        if response.is_success:
            return response
        raise self._error(what, response)

    def _error(self, what: str, response: httpx.Response) -> KtrdrError:
        code = response.status_code
        body = read_error_body(response.content)
        if body is not None:
            detail = body.detail
        else:
            detail = response.text.strip()[:200] or response.reason_phrase
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

    def _decode(self, what: str, response: httpx.Response, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            head = response.content[:120].decode("utf-8", "replace")
            raise HostProtocolError(
                f"training host {self.base_url} answered {what} with a payload that is not a "
                f"{kind.__name__}: {exc} (body starts {head!r}). Check that KTRDR_HOST_URL "
                "points at a ktrdr training host of this version."
            ) from exc
