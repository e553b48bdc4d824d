"""``Http1Client``: the gateway's own HTTP/1.1 client for its calls upstream.

Every API call the gateway serves makes one upstream call, and a streamed answer
arrives as one HTTP chunk per event. aiohttp's client spends a dozen Python calls on
each chunk (its stream reader, flow control, chunk bookkeeping) and more on each
request (its request and response objects, connector, timers): a fifth of the
gateway's CPU on a streamed request, as much as everything the pipeline does with
the events. This client parses with ``httptools`` (the C parser uvicorn serves the
gateway with) straight into the response (one Python call per chunk) and writes each
request in one ``write``.

What it does: keep-alive connections pooled per origin (``max_connections`` open at
most; a request waits for one beyond that), ``http`` and ``https`` (the system's
trust store), ``Content-Length`` or chunked responses or a body that ends when the
connection does, ``gzip``/``deflate`` bodies (it never asks for them), a request
sent again on a new connection when a pooled one turns out to have been closed by
the upstream before it answered a single byte. No timeouts: the orchestrator's
``chunk_timeout`` cancels a silent upstream (a cancelled request closes its
connection). No proxies, no redirects: as the aiohttp session it replaces.

The interface is the part of aiohttp's the gateway uses (``async with
client.post(url, data=..., headers=...) as response``, ``response.status``,
``.headers``, ``await response.read()``, ``response.content.iter_any()``), so
:class:`~._native_http.SessionPool` hands out either (aiohttp without httptools).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from luthien_lab.gateway._http1_connection import (
    Http1Response,
    UpstreamConnectionError,
    _Connection,
)

__all__ = ["Http1Client", "Http1Response", "UpstreamConnectionError"]

_USER_AGENT = "luthien-lab"
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class _Origin:
    __slots__ = ("host", "host_header", "key", "port", "tls")

    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"upstream URL scheme must be http or https, got {scheme!r}")
        self.tls = scheme == "https"
        default = 443 if self.tls else 80
        self.host = host
        self.port = port or default
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if self.port == default else f"{shown}:{self.port}"
        self.key = (scheme, host, self.port)


class _Slots:
    """At most ``size`` requests at once; one more waits for a slot, in turn.
    ``asyncio.Semaphore`` does the same in some ten Python calls per request (its
    ``acquire`` a coroutine, ``locked`` a generator); this takes a free slot in one
    call and gives it back in one (the caller waits only when none is free)."""

    __slots__ = ("_waiting", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiting: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a free slot (True); False when there is none, or requests wait for one
        (then :meth:`wait` for it)."""
        if self.free and not self._waiting:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait until a slot is handed over (after :meth:`take` said none was free)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.give()  # handed a slot, then cancelled before it ran: passed on
            raise

    def give(self) -> None:
        """A slot is free again: handed to the first request still waiting, else kept."""
        waiting = self._waiting
        while waiting:
            future = waiting.popleft()
            if not future.done():  # not cancelled while it waited
                future.set_result(None)
                return
        self.free += 1


class _Post:
    """``async with client.post(...) as response``."""

    __slots__ = ("_args", "_client", "_response")

    def __init__(self, client: Http1Client, args: tuple[Any, ...]) -> None:
        self._client = client
        self._args = args
        self._response: Http1Response | None = None

    async def __aenter__(self) -> Http1Response:
        self._response = await self._client.request(*self._args)
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        response = self._response
        if response is not None:
            response.release()


class Http1Client:
    """Pooled HTTP/1.1 connections of one event loop (see the module doc); ``headers``
    go with every request (a request's own headers win)."""

    def __init__(self, max_connections: int = 256, headers: dict[str, str] | None = None) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._slots = _Slots(max_connections)
        self._headers = {name.lower(): value for name, value in (headers or {}).items()}
        self._origins: dict[str, tuple[_Origin, str]] = {}
        self._tls: ssl.SSLContext | None = None
        self.closed = False

    def post(self, url: str, *, data: bytes, headers: dict[str, str] | None = None) -> _Post:
        return _Post(self, ("POST", url, data, headers))

    async def request(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str] | None
    ) -> Http1Response:
        """Send the request; returns once the response's status and headers are in."""
        origin, target = self._origin(url)
        head = self._head(method, target, origin, data, headers)
        message = head + data if data else head
        loop = asyncio.get_running_loop()
        slots = self._slots
        while True:
            if not slots.take():
                await slots.wait()
            try:
                connection = self._pooled(origin) or await self._connect(origin)
            except BaseException:
                slots.give()
                raise
            response = Http1Response(connection, loop, slots.give)
            connection.start(response)
            try:
                connection.transport.write(message)
                await response._head
            except UpstreamConnectionError:
                if connection.served and not response.received:
                    continue  # a pooled connection the upstream had closed: a new one
                raise
            except BaseException:
                response.release()
                raise
            return response

    def _pooled(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin.key)
        while idle:
            connection = idle.pop()
            if not connection.closed and not connection.transport.is_closing():
                return connection
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.tls:
            tls = self._tls = self._tls or ssl.create_default_context()
        _transport, connection = await loop.create_connection(
            lambda: _Connection(self, origin),
            origin.host,
            origin.port,
            ssl=tls,
            server_hostname=origin.host if tls else None,
        )
        self._open.add(connection)
        return connection

    def _idle_again(self, connection: _Connection) -> None:
        if self.closed:
            connection.close()
            return
        self._idle.setdefault(connection.origin.key, []).append(connection)

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.origin.key)
        if idle and connection in idle:
            idle.remove(connection)

    def _origin(self, url: str) -> tuple[_Origin, str]:
        known = self._origins.get(url)
        if known is None:
            parts = urlsplit(url)
            if not parts.hostname:
                raise ValueError(f"upstream URL has no host: {url!r}")
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            known = (_Origin(parts.scheme, parts.hostname, parts.port), target)
            if len(self._origins) < 64:
                self._origins[url] = known
        return known

    def _head(
        self,
        method: str,
        target: str,
        origin: _Origin,
        data: bytes | None,
        headers: dict[str, str] | None,
    ) -> bytes:
        merged = dict(self._headers)
        for name, value in (headers or {}).items():
            merged[name.lower()] = value
        merged.setdefault("user-agent", _USER_AGENT)
        merged.setdefault("accept", "*/*")
        lines = [f"{method} {target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
        for name, value in merged.items():
            if name in _OWN_HEADERS:
                continue
            if (
                "\r" in value
                or "\n" in value
                or not (name.isascii() and name.isprintable())  # no CR, LF, controls
                or ":" in name
                or " " in name
            ):
                raise ValueError(f"invalid upstream header {name!r}: {value!r}")
            if not value.isascii():
                try:
                    value.encode("latin-1")
                except UnicodeEncodeError:
                    raise ValueError(
                        f"upstream header {name!r} holds characters HTTP cannot carry: {value!r}"
                    ) from None
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"content-length: {len(data) if data else 0}\r\n\r\n")
        return "".join(lines).encode("latin-1")

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection (those of an event loop that is gone included)."""
        self.closed = True
        for connection in list(self._open):
            connection.closed = True
            transport = connection.transport
            try:
                transport.abort()
            except RuntimeError:  # its event loop is closed
                _close_orphan(transport)
            except Exception:
                pass
        self._open.clear()
        self._idle.clear()


def _close_orphan(transport: Any) -> None:
    """Close the socket of a transport whose event loop is closed: ``abort()`` leaves
    that to a callback of the loop, which will never run it (the upstream would keep
    the connection, the socket would stay open until collected)."""
    ssl_protocol = getattr(transport, "_ssl_protocol", None)  # TLS: the socket's transport
    inner = getattr(ssl_protocol, "_transport", None) or transport
    with contextlib.suppress(Exception):
        inner._call_connection_lost(None)  # what abort() schedules: closes the socket
