"""HostClient's caps: every answer is read as a stream, no further than its call's cap.

Bodies come from generators that count what they produced, so "the rest was not read" is
measured, not assumed; one test streams from a real server on loopback.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import msgspec
import pytest

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.http.host_client import (
    MAX_ARCHIVE_BYTES,
    MAX_STATUS_BYTES,
    HostClient,
    HostProtocolError,
    HostResponseTooLargeError,
    HostUnreachableError,
)
from ktrdr_lib.models.archive import DEFAULT_MAX_ARCHIVE_BYTES
from ktrdr_lib.schemas.host import MAX_REASON_CHARS, HostStopRequest
from tests.test_host_runner import SID, host_result, status_body

URL = "http://host.test:5002"
CHUNK = 64 << 10


class Flood:
    """A body of ``total`` bytes in 64 KiB chunks, produced only as they are read."""

    def __init__(self, total: int, head: bytes = b'{"session_id": "') -> None:
        self.total = total
        self.head = head
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.produced = len(self.head)
        while self.produced < self.total:
            self.produced += CHUNK
            yield b"x" * CHUNK


def client_for(
    answer: httpx.Response, seen: list[httpx.Request] | None = None, **caps: int
) -> HostClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer

    return HostClient(URL, "s3cret", transport=httpx.MockTransport(handler), **caps)


def test_a_flooding_status_fails_the_call_without_reading_the_rest() -> None:
    flood = Flood(200 << 20)  # the 200 MB progress message that took the API to 3 GB
    seen: list[httpx.Request] = []
    client = client_for(httpx.Response(200, content=flood), seen)
    with pytest.raises(HostResponseTooLargeError) as caught:
        client.session(SID)
    assert f"answered GET /sessions/{SID} with more than 1 MiB" in caught.value.detail
    assert "the rest was not read" in caught.value.detail
    assert flood.produced <= MAX_STATUS_BYTES + 2 * CHUNK
    assert seen[0].headers["Accept-Encoding"] == "identity"
    assert isinstance(caught.value, HostProtocolError)  # not retried as a host that is down


def test_an_announced_length_over_the_cap_is_believed_without_reading() -> None:
    flood = Flood(200 << 20)
    answer = httpx.Response(200, headers={"Content-Length": str(200 << 20)}, content=flood)
    with pytest.raises(HostResponseTooLargeError, match="more than 1 MiB"):
        client_for(answer).health()
    assert flood.produced == 0


@pytest.mark.parametrize(
    ("call", "path", "cap"),
    [
        ("result", "/result", {"max_result_bytes": 4096}),
        ("metrics", "/metrics", {"max_result_bytes": 4096}),
        ("model_archive", "/artifacts/model", {"max_archive_bytes": 4096}),
        ("stop", "/stop", {"max_status_bytes": 4096}),
    ],
)
def test_every_call_has_its_cap(call: str, path: str, cap: dict[str, int]) -> None:
    flood = Flood(1 << 20)
    answer = httpx.Response(200, headers={"X-Content-SHA256": "0" * 64}, content=flood)
    client = client_for(answer, **cap)
    with pytest.raises(HostResponseTooLargeError, match=f"{path} with more than 4 KiB"):
        getattr(client, call)(SID)
    assert flood.produced <= 4096 + CHUNK


def test_answers_within_their_caps_are_read_whole() -> None:
    result = msgspec.json.encode(host_result())
    assert client_for(httpx.Response(200, content=result), max_result_bytes=len(result)).result(
        SID
    ) == msgspec.json.decode(result, type=type(host_result()))
    archive = bytes(range(256)) * 64
    headers = {"X-Content-SHA256": "AB" * 32, "X-Model-Id": "demo/v1"}
    fetched = client_for(
        httpx.Response(200, headers=headers, content=iter([archive[:100], archive[100:]])),
        max_archive_bytes=len(archive),
    ).model_archive(SID)
    assert fetched.data == archive and fetched.sha256 == "ab" * 32
    assert MAX_ARCHIVE_BYTES == DEFAULT_MAX_ARCHIVE_BYTES  # what the import accepts


def test_a_flooding_error_answer_keeps_its_status_and_is_not_read() -> None:
    flood = Flood(200 << 20, head=b"<html>")
    with pytest.raises(HostUnreachableError) as caught:
        client_for(httpx.Response(503, content=flood)).session(SID)
    assert caught.value.reason == "answered 503"
    assert "an error body over 1 MiB, not read" in caught.value.detail
    assert flood.produced <= MAX_STATUS_BYTES + 2 * CHUNK


def test_a_compressed_answer_is_refused_before_it_is_inflated() -> None:
    bomb = gzip.compress(b" " * (8 << 20))  # 8 MiB of JSON whitespace in 8 KB
    answer = httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=iter([bomb]))
    with pytest.raises(HostProtocolError, match="Content-Encoding 'gzip'"):
        client_for(answer).session(SID)


def test_caps_below_a_kilobyte_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_status_bytes must be at least 1024 bytes"):
        HostClient(URL, max_status_bytes=10)


class _FloodingHost(BaseHTTPRequestHandler):
    """Answers every GET with an endless JSON string; counts what it managed to send."""

    sent = 0
    finished = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b'{"session_id": "')
            while type(self).sent < 200 << 20:
                self.wfile.write(b"x" * CHUNK)
                type(self).sent += CHUNK
        except OSError:
            pass  # the client hung up: what it stops reading is never sent
        finally:
            type(self).finished.set()

    def log_message(self, *args: object) -> None:
        pass


def test_a_real_host_flooding_over_loopback_is_cut_off() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FloodingHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        client = HostClient(f"http://{host!s}:{port}", "s3cret")
        with pytest.raises(HostResponseTooLargeError, match="more than 1 MiB"):
            client.session(SID)
        client.close()
        assert _FloodingHost.finished.wait(30)
        # what the kernel buffers took before the client hung up, far from the 200 MB
        assert _FloodingHost.sent < 32 << 20
    finally:
        server.shutdown()
        server.server_close()


def test_a_status_answer_in_chunks_decodes() -> None:
    body = msgspec.json.encode(status_body("running", sequence=3))
    status = client_for(httpx.Response(200, content=iter([body[:10], body[10:]]))).session(SID)
    assert status.progress.sequence == 3


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Content-SHA256": "zz" * 32}, "not a SHA-256 (64 hex digits)"),
        ({"X-Content-SHA256": "ab" * 33}, "not a SHA-256 (64 hex digits)"),
        ({"X-Content-SHA256": "ab" * 32, "X-Model-Id": "m" * 129}, "header of 129 characters"),
    ],
)
def test_the_archive_headers_are_checked(headers: dict[str, str], expected: str) -> None:
    with pytest.raises(HostProtocolError, match=re.escape(expected)):
        client_for(httpx.Response(200, headers=headers, content=b"x")).model_archive(SID)


def test_a_stop_reason_over_the_protocol_cap_is_cut_not_refused() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(202, json=status_body("cancelling", sequence=1))
    client_for(answer, seen).stop(SID, reason="r" * (MAX_REASON_CHARS + 100))
    sent = msgspec.json.decode(seen[0].content, type=HostStopRequest)
    assert sent.reason is not None and len(sent.reason) == MAX_REASON_CHARS
