"""Reading HTTP answers with hard size caps, so a server cannot flood its client.

``response.content`` reads whatever a server sends: one 200 MB progress message from a
training host took the API from 475 MB to 3 GB. The clients
(:mod:`ktrdr_lib.http.host_client`, :mod:`ktrdr_lib.http.client`) instead open every answer as
a stream and read it here: :func:`read_bounded` stops at the first chunk past the cap (and
believes a ``Content-Length`` over the cap without reading at all); :func:`bounded_lines` cuts
an event stream into lines no longer than a cap. Both count the bytes as they arrive: the
clients ask for ``Accept-Encoding: identity`` (:data:`IDENTITY`) and refuse a compressed
answer (:func:`encoding_refused`), since one compressed chunk can inflate a thousandfold
before any cap could see it.

Example:
    >>> with client.stream("GET", "/status", headers=IDENTITY) as response:  # doctest: +SKIP
    ...     body = read_bounded(response, 1 << 20)
    ...     if body is None:
    ...         raise SomeError("the answer is larger than 1 MiB")
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx

__all__ = [
    "IDENTITY",
    "bounded_lines",
    "encoding_refused",
    "raw_chunks",
    "read_bounded",
    "size_text",
]

IDENTITY = {"Accept-Encoding": "identity"}

_LINE_END = re.compile(rb"\r\n|\r|\n")


def size_text(count: int) -> str:
    """``count`` bytes for a message: ``1 MiB``, ``16 MiB``, ``1 GiB``, ``300 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def encoding_refused(response: httpx.Response) -> str | None:
    """The answer's ``Content-Encoding`` when it is not identity (``None`` when it is)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    return None if encoding in ("", "identity") else encoding


def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed answer, or ``None`` when it is longer than ``limit`` bytes.

    Reads no further than the chunk that crosses ``limit``, and nothing at all when the
    answer's ``Content-Length`` is over it. Raw bytes are counted: call it only on answers
    :func:`encoding_refused` accepted.
    """
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in raw_chunks(response):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive (all at once from a transport that read it already,
    as ``httpx.MockTransport`` does with a bytes body)."""
    if response.is_stream_consumed:
        yield response.content
        return
    yield from response.iter_raw()


def bounded_lines(chunks: Iterator[bytes], limit: int) -> Iterator[str | None]:
    """The lines of a byte stream (split at CR LF, LF or CR, as server-sent events are),
    decoded as UTF-8; ``None`` once a line grows past ``limit`` bytes, and then nothing more.
    """
    pending = b""
    for chunk in chunks:
        pending += chunk
        start = 0
        for end in _LINE_END.finditer(pending):
            if end.group() == b"\r" and end.end() == len(pending):
                break  # a CR at the end of a chunk may be the first half of CR LF
            if end.start() - start > limit:
                yield None
                return
            yield pending[start : end.start()].decode("utf-8", "replace")
            start = end.end()
        pending = pending[start:]
        if len(pending) > limit:
            yield None
            return
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")
