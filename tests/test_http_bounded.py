"""Bounded reading of HTTP answers: the shared reader, and the API client's caps.

The host client's caps are in ``tests/test_host_client.py``. Bodies are generators that count
what they produced, so "the rest was not read" is measured.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ktrdr_lib.errors import ConfigError, KtrdrError
from ktrdr_lib.http.bounded import bounded_lines, read_bounded, size_text
from ktrdr_lib.http.client import MAX_ERROR_BYTES, ApiClient

CHUNK = 64 << 10


class Flood:
    """``head`` then 64 KiB chunks of ``fill`` up to ``total`` bytes, produced as read."""

    def __init__(self, total: int, head: bytes = b"", fill: bytes = b"x") -> None:
        self.total, self.head, self.fill = total, head, fill
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.produced = len(self.head)
        while self.produced < self.total:
            self.produced += CHUNK
            yield self.fill * CHUNK


def _streamed(body: Flood | bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, headers=headers, content=body)


def test_read_bounded_stops_at_the_chunk_past_the_cap() -> None:
    flood = Flood(100 << 20)
    assert read_bounded(_streamed(flood), 1 << 20) is None
    assert flood.produced <= (1 << 20) + CHUNK
    assert read_bounded(_streamed(Flood(3 * CHUNK)), 3 * CHUNK) == b"x" * 3 * CHUNK
    assert read_bounded(_streamed(b"small"), 5) == b"small"
    assert read_bounded(_streamed(b"small!"), 5) is None


def test_read_bounded_believes_a_content_length_over_the_cap() -> None:
    flood = Flood(100 << 20)
    assert read_bounded(_streamed(flood, **{"Content-Length": str(100 << 20)}), 1024) is None
    assert flood.produced == 0


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\r", b"\nb\rc\n\nd"], ["a", "b", "c", "", "d"]),  # CR LF split across chunks
        ([b"event: x\ndata: 1\n\n"], ["event: x", "data: 1", ""]),
        ([b"caf\xc3", b"\xa9\n"], ["café"]),
    ],
)
def test_bounded_lines_splits_like_an_event_stream(
    chunks: list[bytes], lines: list[str | None]
) -> None:
    assert list(bounded_lines(iter(chunks), 64)) == lines


def test_bounded_lines_stops_at_a_line_over_the_cap() -> None:
    assert list(bounded_lines(iter([b"ok\n", b"x" * 11 + b"\n", b"never\n"]), 10)) == ["ok", None]
    flood = Flood(100 << 20)  # one endless line
    assert list(bounded_lines(iter(flood), 1 << 20)) == [None]
    assert flood.produced <= (1 << 20) + CHUNK


def test_size_text() -> None:
    assert [size_text(n) for n in (1 << 30, 16 << 20, 4096, 1000)] == [
        "1 GiB",
        "16 MiB",
        "4 KiB",
        "1000 bytes",
    ]


# -- the API client ---------------------------------------------------------------------------


def _api(answer: httpx.Response, **options: int) -> tuple[ApiClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return ApiClient("http://api.test", transport=httpx.MockTransport(handler), **options), seen


def test_an_api_answer_over_its_cap_fails_without_the_rest_being_read() -> None:
    flood = Flood(200 << 20, head=b'{"operation_id": "')
    client, seen = _api(httpx.Response(200, content=flood), max_response_bytes=1 << 20)
    with pytest.raises(
        KtrdrError, match=r"/result on http://api\.test answered with more than 1 MiB"
    ):
        client.result("op_1")
    assert flood.produced <= (1 << 20) + 2 * CHUNK
    assert seen[0].headers["Accept-Encoding"] == "identity"


def test_an_api_error_answer_over_its_cap_keeps_its_status() -> None:
    flood = Flood(200 << 20, head=b"<html>")
    client, _ = _api(httpx.Response(404, content=flood))
    with pytest.raises(KtrdrError, match=r"HTTP 404 from .*/operations/op_1: Not Found"):
        client.get_operation("op_1")
    assert flood.produced <= MAX_ERROR_BYTES + 2 * CHUNK


def test_a_compressed_api_answer_is_refused() -> None:
    client, _ = _api(httpx.Response(200, headers={"Content-Encoding": "br"}, content=b"x"))
    with pytest.raises(KtrdrError, match="Content-Encoding 'br'"):
        client.get_operation("op_1")


@pytest.mark.parametrize(
    "flood",
    [
        Flood(200 << 20, head=b"event: progress\ndata: "),  # one endless line
        Flood(200 << 20, head=b"event: progress\n", fill=b"data: xxxxxxxxx\n"),  # many lines
    ],
)
def test_an_event_over_its_cap_ends_the_stream(flood: Flood) -> None:
    answer = httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=flood)
    client, _ = _api(answer, max_event_bytes=1 << 20)
    with pytest.raises(KtrdrError, match="the event stream of op_1 sent an event over 1 MiB"):
        list(client.events("op_1"))
    assert flood.produced <= (1 << 20) + 2 * CHUNK


def test_api_caps_below_a_kilobyte_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_event_bytes must be at least 1024 bytes"):
        ApiClient("http://api.test", max_event_bytes=1)
