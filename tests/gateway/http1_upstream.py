"""A raw HTTP/1.1 upstream scripted by each test of the gateway's own client
(``gateway._http1``): it counts its connections and records every request as sent.
``clean_loop`` (autouse where imported) fails a test on what asyncio only reports."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from luthien_lab.gateway._http1 import Http1Client


@dataclass
class Req:
    conn: int  # the index of the connection it came on (0: the first accepted)
    method: str
    target: str
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


class Conn:
    """One accepted connection, as the handler sees it."""

    def __init__(self, upstream: Upstream, index: int, reader, writer) -> None:
        self.upstream = upstream
        self.index = index
        self.reader = reader
        self.writer = writer

    async def request(self) -> Req | None:
        """The next request on this connection; None once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.upstream.closed_by_client.add(self.index)
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ")
        headers = []
        for line in lines[1:]:
            if line:
                name, value = line.split(":", 1)
                headers.append((name, value.strip()))
        length = [v for k, v in headers if k.lower() == "content-length"]
        body = await self.reader.readexactly(int(length[0]) if length else 0)
        req = Req(self.index, method, target, headers, body)
        self.upstream.requests.append(req)
        return req

    async def send(self, *parts: bytes, pause: float = 0) -> None:
        """Each part in its own write (``pause`` s apart: separate TCP reads)."""
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            if pause:
                await asyncio.sleep(pause)

    async def until_closed(self) -> None:
        """Wait until the client closes the connection."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass
        self.upstream.closed_by_client.add(self.index)


Handler = Callable[[Conn], Awaitable[None]]


class Upstream:
    """``async with Upstream(handler) as up``: ``up.url``, ``up.connections`` (accepted
    so far), ``up.requests`` (every request, in order), ``up.closed_by_client`` (the
    connections the client closed). The connection closes when the handler returns."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[Req] = []
        self.closed_by_client: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._errors: list[BaseException] = []

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/v1/x?q=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        if self._errors and exc[0] is None:
            raise self._errors[0]

    async def _serve(self, reader, writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(self, self.connections, reader, writer)
        self.connections += 1
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client.add(conn.index)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # reported by __aexit__
            self._errors.append(error)
        finally:
            writer.close()
            self._tasks.discard(task)

    def on(self, conn: int) -> list[Req]:
        return [req for req in self.requests if req.conn == conn]


def answer(body: bytes = b"ok", status: int = 200, headers: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode() + body


def chunked_head(headers: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n{headers}\r\n".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked_body(data: bytes, size: int) -> bytes:
    """``data`` as chunks of ``size`` bytes, and the last chunk."""
    return b"".join(chunk(data[i : i + size]) for i in range(0, len(data), size)) + b"0\r\n\r\n"


TEXT = b"".join(b"line %04d of the body\n" % i for i in range(400))


def keep_alive(reply: Callable[[Req], bytes]) -> Handler:
    """A handler answering every request on the connection with ``reply(request)``."""

    async def handle(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            await conn.send(reply(req))

    return handle


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition()`` (the file's timeout is the bound)."""
    while not condition():
        await asyncio.sleep(0.001)


async def settle() -> None:
    """Let every ready callback and loopback byte be handled (not a time bound: a few
    loop turns with a little real time for the kernel)."""
    for _ in range(5):
        await asyncio.sleep(0.01)


async def post(client: Http1Client, url: str, data: bytes = b"{}", **kw) -> tuple[int, bytes]:
    async with client.post(url, data=data, **kw) as response:
        return response.status, await response.read()


async def iter_body(client: Http1Client, url: str) -> tuple[list[bytes], bytes]:
    async with client.post(url, data=b"{}") as response:
        parts = [part async for part in response.content.iter_any()]
        return parts, b"".join(parts)


async def all_slots_proceed(client: Http1Client, n: int) -> None:
    """``n`` concurrent requests all reach an upstream that answers none until all
    arrived: the client's ``n`` slots are all free (a leaked one would keep a request
    waiting, and this wait would fail)."""

    async def handle(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            await until(lambda: len(up.requests) >= n)
            await conn.send(answer(req.body))

    async with Upstream(handle) as up:
        tasks = [asyncio.create_task(post(client, up.url, b"%d" % i)) for i in range(n)]
        done, _pending = await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert len(up.requests) == n, f"only {len(up.requests)} of {n} requests were sent"
        assert sorted(task.result() for task in done) == [(200, b"%d" % i) for i in range(n)]


@pytest.fixture(autouse=True)
async def clean_loop():
    """Fail on what asyncio reports instead of raising (a callback's exception, a future
    exception never retrieved) and on unclosed transports or sockets."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    # What earlier tests (in this process) left to the collector is theirs, not this one's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        await asyncio.sleep(0.01)
        gc.collect()
        await asyncio.sleep(0)
    loop.set_exception_handler(None)
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not reported, reported
    assert not leaks, leaks
