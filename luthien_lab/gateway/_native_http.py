"""Shared plumbing of the native upstream clients: their HTTP clients (one set per
event loop: :class:`SessionPool`), SSE framing that keeps each event's raw bytes, and
upstream errors that keep the upstream's own body (so the client sees the provider's
error as it was sent).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json as _from_json

from luthien_lab.errors import UpstreamError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["NativeUpstreamError", "SessionPool", "fail", "forward", "load_json", "sse_batches"]


class NativeUpstreamError(UpstreamError):
    """The upstream answered an HTTP error; ``body`` is its own error body (bytes)."""

    def __init__(self, message: str, *, provider: str, status_code: int, body: bytes) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.body = body


class SessionPool:
    """The upstream clients of the running event loop, made on first use (each belongs
    to one loop); ``headers`` go with every request. :meth:`client` serves the API
    calls (the gateway's own HTTP/1.1 client, :mod:`._http1`; aiohttp's without
    httptools), :meth:`session` every other request (an ``aiohttp.ClientSession``)."""

    def __init__(self, max_connections: int = 256, headers: dict[str, str] | None = None) -> None:
        self._max = max_connections
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http1: Any = None
        self._http1_loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> Any:
        """What posts the API calls: ``async with client.post(url, data=, headers=)``."""
        loop = asyncio.get_running_loop()
        client = self._http1
        if client is None or client.closed or self._http1_loop is not loop:
            client_class = _http1_client()
            if client_class is None:  # no httptools: aiohttp's client does it
                return self.session()
            if client is not None:
                client.close()  # its loop is gone: its connections are closed now
            client = self._http1 = client_class(self._max, self._headers)
            self._http1_loop = loop
        return client

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            import aiohttp

            if session is not None and not session.closed:
                _let_go(session)
            # Timeouts are the orchestrator's (chunk_timeout), none here (aiohttp's
            # default would end any response after 300 s).
            connector = aiohttp.TCPConnector(limit=self._max, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                headers=self._headers,
            )
            self._session, self._loop = session, loop
        return session

    async def aclose(self) -> None:
        client, self._http1 = self._http1, None
        if client is not None:
            client.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


@functools.cache
def _http1_client() -> Any:
    """The gateway's HTTP/1.1 client class, or None without httptools (asked once: a
    failed import is not cached by Python, and this is asked per request)."""
    try:
        from luthien_lab.gateway._http1 import Http1Client
    except ImportError:
        return None
    return Http1Client


def _let_go(session: aiohttp.ClientSession) -> None:
    """Drop a session made in an event loop that is gone (its connections cannot be
    closed from another loop): its sockets are closed now, not reported as leaked
    when the process exits."""
    connector = session.connector
    session.detach()
    if connector is not None:
        connector._close()  # the synchronous part of close(): closes the transports


async def forward(
    pool: SessionPool, method: str, url: str, headers: dict[str, str], data: bytes | None = None
) -> tuple[int, bytes, str]:
    """One plain request upstream: (status, body, content type), errors included."""
    session = pool.session()
    async with session.request(method, url, data=data, headers=headers) as response:
        body = await response.read()
        return response.status, body, response.headers.get("content-type", "application/json")


async def fail(response: aiohttp.ClientResponse, provider: str) -> NativeUpstreamError:
    body = await response.read()
    text = body.decode(errors="replace")[:500]
    return NativeUpstreamError(
        f"the provider answered HTTP {response.status}: {text}",
        provider=provider,
        status_code=response.status,
        body=body,
    )


async def sse_batches(
    response: Any, provider: str
) -> AsyncIterator[list[tuple[dict[str, Any], bytes]]]:
    """The SSE events of ``response``, as (parsed ``data``, the frame's raw bytes), in
    one list per read of the body: a read often holds several events, and a consumer
    that loops over a list pays less per event than one more async generator step.

    Frames without data (comments, keep-alives) are skipped; ``[DONE]`` ends.
    """
    pending = b""
    async for part in response.content.iter_any():
        # Walk the read by position, keep only the tail.
        buffer = pending + part if pending else part
        if b"\r" in buffer:  # on the joined bytes: a CRLF may straddle two reads
            buffer = buffer.replace(b"\r\n", b"\n")
        batch: list[tuple[dict[str, Any], bytes]] = []
        start = 0
        last = len(buffer) - 1
        while True:
            # The usual frame is one line of an object and a blank line: told by its
            # first line end and the byte after it, then parsed here as load_json
            # parses (per event: two calls fewer; through load_json, or a partial of
            # the parser, cost 0.5 and 1.5 % of a streamed request's instructions).
            # What the parser refuses goes to _parse, as any other frame.
            line_end = buffer.find(b"\n", start)
            if line_end < 0 or line_end == last:
                break  # no frame ends in this read (a frame ends with a blank line)
            if buffer[line_end + 1] == 10 and buffer[start : start + 7] == b"data: {":
                frame = buffer[start : line_end + 2]
                try:
                    batch.append((_from_json(frame[6:-2]), frame))
                    start = line_end + 2
                    continue
                except ValueError:
                    pass
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            frame = buffer[start : end + 2]
            start = end + 2
            event = _parse(frame, provider)
            if event is _DONE:
                drain = getattr(response, "drain", None)
                if drain is not None:
                    drain()  # the rest is the body's end: the connection can be reused
                if batch:
                    yield batch
                return
            if event is not None:
                batch.append((event, frame))
        if batch:
            yield batch
        pending = buffer[start:]
    if pending.strip():
        event = _parse(pending + b"\n\n", provider)
        if event is not None and event is not _DONE:
            yield [(event, pending + b"\n\n")]


_DONE: Any = object()


def load_json(data: bytes) -> Any:
    """``json.loads(data)``, in two thirds of its time on an event of a few hundred
    bytes: pydantic-core's JSON parser (jiter), whose values are ``json.loads``'s for
    every document it accepts (integers of any size, ``NaN`` and ``Infinity``
    included). What it refuses (a lone surrogate escape, nesting past 200 levels, a
    byte-order mark, a malformed document) goes through ``json.loads`` itself, which
    accepts what it always did and words the error. ``sse_batches`` makes the same
    parser call itself for one-line frames: keep the two alike."""
    try:
        return _from_json(data)
    except ValueError:
        return json.loads(data)


def _parse(frame: bytes, provider: str) -> Any:
    if frame.startswith(b"data:") and frame.find(b"\n") == len(frame) - 2:
        data: bytes | None = frame[5:-2].lstrip(b" ")  # the usual frame: one data line
    else:
        data = None
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                piece = line[5:].lstrip(b" ")
                data = piece if data is None else data + b"\n" + piece
    if data is None:
        return None
    if data == b"[DONE]":
        return _DONE
    try:
        event = load_json(data)
    except ValueError:
        raise UpstreamError(
            f"malformed SSE event from the provider: {data[:200]!r}", provider=provider
        ) from None
    if not isinstance(event, dict):
        raise UpstreamError(
            f"malformed SSE event from the provider (not an object): {data[:200]!r}",
            provider=provider,
        )
    return event
