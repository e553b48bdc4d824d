"""One upstream connection of :class:`~._http1.Http1Client` and the response it is
receiving: httptools parses each read straight into the response (one Python call
per HTTP chunk), which holds the body until it is read."""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

import httptools

if TYPE_CHECKING:
    from luthien_lab.gateway._http1 import Http1Client, _Origin

__all__ = ["Http1Response", "UpstreamConnectionError"]

# Buffered, unread response bytes above which the connection stops reading.
_HIGH_WATER = 1 << 20
# How long the end of a body the reader no longer wants may take (see drain).
_DRAIN_SECONDS = 1.0


class UpstreamConnectionError(ConnectionError):
    """The upstream connection failed or closed before the response was complete."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the response in progress gets its bytes."""

    def __init__(self, client: Http1Client, origin: _Origin) -> None:
        self.client = client
        self.origin = origin
        self.transport: Any = None
        self.response: Http1Response | None = None
        self.parser: Any = None
        self.closed = False
        self.paused = False
        self.served = 0  # responses completed on it (0: a new connection)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def start(self, response: Http1Response) -> None:
        self.response = response
        self.parser = httptools.HttpResponseParser(response)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: nothing after them can be trusted
            self.close()
            return
        response.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            response.fail(UpstreamConnectionError(f"malformed HTTP from the upstream: {error}"))
            self.close()  # the response may be complete, the connection idle: not reused
            return
        if response.error is not None:
            self.close()

    def eof_received(self) -> bool:
        return False  # close: HTTP/1.1 has no half-closed connections

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client._forget(self)
        response = self.response
        if response is not None and not response.done:
            response.connection_ended(exc)

    def pause(self, on: bool) -> None:
        if on != self.paused and not self.closed:
            self.paused = on
            if on:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client._forget(self)
            self.transport.close()

    def finished(self, keep_alive: bool) -> None:
        """The response in progress is complete: the connection is free again."""
        self.response = self.parser = None
        self.served += 1
        self.pause(False)
        if keep_alive and not self.closed:
            self.client._idle_again(self)
        else:
            self.close()


class _Content:
    """``response.content``: what ``sse_batches`` reads (aiohttp's name). It is its own
    iterator over the body (a piece per read, as it comes), and a class rather than an
    async generator: a reader that stops before the end (``sse_batches`` at a stream's
    ``[DONE]``) would leave an async generator unfinished, and the event loop then
    closes it from a task of its own, scheduled through its cross-thread wake-up: per
    streamed request, a task, an eventfd write and one more turn of the loop."""

    __slots__ = ("_response",)

    def __init__(self, response: Http1Response) -> None:
        self._response = response

    def iter_any(self) -> AsyncIterator[bytes]:
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        return self._response.next_part()


class Http1Response:
    """A response being received: status and headers once :meth:`Http1Client.post`
    returned it, the body as it comes (``content.iter_any()``) or whole (``read()``).
    The httptools parser calls its ``on_*`` methods. ``on_end`` is called once, when
    the connection is free again or gone (the client's slot for it)."""

    def __init__(
        self, connection: _Connection, loop: asyncio.AbstractEventLoop, on_end: Any
    ) -> None:
        self.connection = connection
        self.status = 0
        self.headers: dict[str, str] = {}
        self.content = _Content(self)
        self.done = False
        self.received = False  # any byte of it arrived
        self.error: BaseException | None = None
        self._loop = loop
        self._on_end = on_end
        self._buffer: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._head: asyncio.Future[None] = loop.create_future()
        self._decoder: Any = None
        self._delimited = False  # the body has a length or chunks (else: until the close)
        self._draining: asyncio.TimerHandle | None = None
        self._interim = False

    # ----- the parser's callbacks -----

    def on_message_begin(self) -> None:
        if self.done:  # a second response in the read that ended this one: unasked
            raise UpstreamConnectionError("bytes after the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self.headers.get(key)
        self.headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        status = self.connection.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (103 Early Hints): the real one follows
            self._interim = True
            return
        self.status = status
        headers = self.headers
        self._delimited = "content-length" in headers or "chunked" in headers.get(
            "transfer-encoding", ""
        )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(47)  # gzip or zlib, told by the header
        elif encoding not in ("identity", ""):
            self.fail(UpstreamConnectionError(f"unsupported content-encoding {encoding!r}"))
            return
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.error is not None or self._draining is not None:
            return
        if self._decoder is not None:
            body = self._decoder.decompress(body)
        self._buffer.append(body)
        self._size += len(body)
        if self._size > _HIGH_WATER:
            self.connection.pause(True)
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self.headers = {}
            return
        if self.done:
            return
        self.done = True
        if self._draining is not None:
            self._draining.cancel()
        elif self._decoder is not None:
            self._buffer.append(self._decoder.flush())
        self.connection.finished(self.connection.parser.should_keep_alive())
        self._end()
        self._wake()

    # ----- the connection's end, failures -----

    def connection_ended(self, exc: Exception | None) -> None:
        if self._head.done() and not self._delimited and self.error is None:
            self.on_message_complete()  # a body that ends with the connection
            return
        why = f": {exc}" if exc else ""
        self.fail(UpstreamConnectionError(f"the upstream closed the connection{why}"))

    def fail(self, error: BaseException) -> None:
        if self.error is None and not self.done:
            self.error = error
            if not self._head.done():
                self._head.set_exception(error)
                self._head.exception()  # retrieved: nobody may await it any more
            self._end()
            self._wake()

    def _end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ----- reading -----

    async def next_part(self) -> bytes:
        """What arrived of the body since the last call, once something has;
        ``StopAsyncIteration`` at its end."""
        buffer = self._buffer
        while True:
            if buffer:
                part = buffer.popleft() if len(buffer) == 1 else b"".join(buffer)
                buffer.clear()
                self._size = 0
                self.connection.pause(False)
                if part:
                    return part
                continue
            if self.error is not None:
                raise self.error
            if self.done:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read(self) -> bytes:
        return b"".join([part async for part in self.content])

    def drain(self) -> None:
        """The reader has what it wanted (a stream's ``[DONE]``), and the rest of the
        body is only its end (a chunked body's last chunk, often in a later read): it
        is read and dropped, so the connection goes back to the pool, instead of
        being closed by :meth:`release`. Given up after ``_DRAIN_SECONDS``."""
        if not self.done and self.error is None and self._draining is None:
            self._buffer.clear()
            self.connection.pause(False)
            self._draining = self._loop.call_later(_DRAIN_SECONDS, self._abandon)

    def release(self) -> None:
        """Done with it: a response not read to its end closes its connection (unless
        it is draining, see :meth:`drain`)."""
        if self._draining is None:
            self._abandon()

    def _abandon(self) -> None:
        if not self.done and self.error is None:
            self.done = True
            self.connection.close()
            self._end()
