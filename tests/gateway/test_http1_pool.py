"""The gateway's own HTTP/1.1 client (``gateway._http1``): leaving a response early,
cancellation, its ``max_connections`` slots, backpressure, TLS, the session pool, and
the lean OpenAI client streaming through it; against raw servers (``http1_upstream``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
from datetime import UTC, datetime, timedelta

import pytest

from luthien_lab import Request
from luthien_lab.gateway import _http1_connection
from luthien_lab.gateway._http1 import Http1Client, _Slots
from luthien_lab.gateway._native_http import SessionPool
from luthien_lab.gateway._upstream import OpenAIHTTPClient, native_chat_body
from luthien_lab.gateway._wire import bind_wire
from luthien_lab.streaming.lazy import original
from tests.gateway.http1_upstream import (
    Conn,
    Upstream,
    all_slots_proceed,
    answer,
    chunk,
    chunked_body,
    chunked_head,
    clean_loop,  # noqa: F401  (autouse)
    iter_body,
    keep_alive,
    post,
    settle,
    until,
)
from tests.gateway.test_upstream_http import _chunk_event

pytestmark = pytest.mark.timeout(30)


# ----- leaving early, cancellation, slots -----


async def _streaming_handler(conn: Conn) -> None:
    """Answers with a body that never ends (until the client closes)."""
    while await conn.request() is not None:
        await conn.send(chunked_head() + chunk(b"part-1") + chunk(b"part-2"))
        await conn.until_closed()


@pytest.mark.parametrize("leave", ["break", "raise", "unread"])
async def test_leaving_the_block_early_closes_the_connection_and_frees_the_slot(leave):
    async with Upstream(_streaming_handler) as up:
        client = Http1Client(max_connections=1)
        try:
            with contextlib.suppress(KeyError):
                async with client.post(up.url, data=b"{}") as response:
                    if leave == "raise":
                        raise KeyError("inside the block")
                    if leave == "break":
                        async for part in response.content.iter_any():
                            assert part.startswith(b"part-1")
                            break
            await until(lambda: 0 in up.closed_by_client)
            # The next request opens a new connection, in the only slot.
            async with client.post(up.url, data=b"{}") as response:
                assert response.status == 200
            await until(lambda: 1 in up.closed_by_client)
            await all_slots_proceed(client, 1)
        finally:
            client.close()
    assert up.connections == 2


@pytest.mark.parametrize("waiting_for", ["head", "body"])
async def test_cancellation_closes_the_connection_and_frees_the_slot(waiting_for):
    async def handle(conn: Conn) -> None:
        await conn.request()
        if waiting_for == "body":
            await conn.send(chunked_head())
        await conn.until_closed()  # never answers (more)

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            task = asyncio.create_task(post(client, up.url))
            await until(lambda: len(up.requests) == 1)
            await settle()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: 0 in up.closed_by_client)
            await all_slots_proceed(client, 1)
        finally:
            client.close()


async def test_a_third_request_waits_for_one_of_two_connections():
    release: dict[bytes, asyncio.Event] = {}

    async def handle(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            await release.setdefault(req.body, asyncio.Event()).wait()
            await conn.send(answer(req.body))

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=2)
        try:
            tasks = {name: asyncio.create_task(post(client, up.url, name)) for name in (b"a", b"b")}
            await until(lambda: len(up.requests) == 2)
            tasks[b"c"] = asyncio.create_task(post(client, up.url, b"c"))
            await settle()
            assert [req.body for req in up.requests] == [b"a", b"b"], "the third waits"
            assert up.connections == 2 and not tasks[b"c"].done()
            release.setdefault(b"b", asyncio.Event()).set()
            assert await tasks[b"b"] == (200, b"b")
            await until(lambda: len(up.requests) == 3)
            third = up.requests[2]
            assert third.body == b"c" and third.conn == up.requests[1].conn  # b's, reused
            release.setdefault(b"c", asyncio.Event()).set()
            release.setdefault(b"a", asyncio.Event()).set()
            assert await tasks[b"c"] == (200, b"c")
            assert await tasks[b"a"] == (200, b"a")
        finally:
            client.close()
    assert up.connections == 2


async def test_every_slot_comes_back_after_success_failure_and_cancellation():
    modes = ["ok", "500", "broken", "stream", "malformed", "br"]

    async def handle(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            mode = req.body.decode()
            if mode == "ok":
                await conn.send(answer(b"fine"))
            elif mode == "500":
                await conn.send(answer(b'{"error":1}', status=500))
            elif mode == "broken":
                await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc")
                return
            elif mode == "malformed":
                await conn.send(b"HTTP/1.1 2x0\r\n\r\n")
            elif mode == "br":
                await conn.send(answer(b"??", headers="content-encoding: br\r\n"))
            else:  # stream, never: the client leaves first
                if mode == "stream":
                    await conn.send(chunked_head() + chunk(b"s"))
                await conn.until_closed()
                return

    async def one(mode: str) -> object:
        async with client.post(up.url, data=mode.encode()) as response:
            if mode == "stream":
                async for _part in response.content.iter_any():
                    break
                return "left"
            return await response.read()

    def never_seen() -> int:
        return sum(req.body == b"never" for req in up.requests)

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=2)
        try:
            for round_ in range(3):
                results = await asyncio.gather(
                    *(one(mode) for mode in modes * 3), return_exceptions=True
                )
                kinds = [type(result).__name__ for result in results]
                assert (
                    kinds
                    == ["bytes", "bytes", "UpstreamConnectionError", "str"]
                    + ["UpstreamConnectionError"] * 2
                    + kinds[:6] * 2
                    and kinds[:6] == kinds[6:12]
                )
                # Two requests never answered hold both slots; a third waits for one.
                never = [asyncio.create_task(one("never")) for _ in range(2)]
                await until(lambda r=round_: never_seen() == 2 * (r + 1))
                queued = asyncio.create_task(one("ok"))
                await settle()
                assert not queued.done() and never_seen() == 2 * (round_ + 1)
                for task in [*never, queued]:
                    task.cancel()
                cancelled = await asyncio.gather(*never, queued, return_exceptions=True)
                assert all(isinstance(c, asyncio.CancelledError) for c in cancelled)
            await all_slots_proceed(client, 2)
        finally:
            client.close()
    assert len(up.requests) == 3 * (len(modes) * 3 + 2)


async def test_a_request_cancelled_while_waiting_for_a_slot_frees_nothing_twice():
    async def handle(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            await until(lambda: gate.is_set())
            await conn.send(answer(req.body))

    gate = asyncio.Event()
    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            first = asyncio.create_task(post(client, up.url, b"1"))
            await until(lambda: len(up.requests) == 1)
            queued = asyncio.create_task(post(client, up.url, b"2"))
            await settle()
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            gate.set()
            assert await first == (200, b"1")
            await all_slots_proceed(client, 1)
            # One slot, not two: a second concurrent request still waits.
            gate.clear()
            tasks = [asyncio.create_task(post(client, up.url, b"%d" % i)) for i in (3, 4)]
            await until(lambda: len(up.requests) == 2)
            await settle()
            assert len(up.requests) == 2, "the second waits for the slot"
            gate.set()
            assert await asyncio.gather(*tasks) == [(200, b"3"), (200, b"4")]
        finally:
            client.close()
    assert [req.body for req in up.requests] == [b"1", b"3", b"4"]


async def test_slots_go_in_turn_and_one_handed_to_a_cancelled_request_is_passed_on():
    slots = _Slots(1)
    assert slots.take() and not slots.take()
    first, second, third = (asyncio.create_task(slots.wait()) for _ in range(3))
    await settle()
    assert not (first.done() or second.done() or third.done())
    second.cancel()  # while it waits: nothing to give back
    slots.give()  # to the first still waiting
    await first
    assert not third.done() and not slots.take()
    slots.give()  # the cancelled second is passed over: the third's turn
    await third
    # A slot handed over to a request cancelled before it ran is passed on, not lost.
    late = asyncio.create_task(slots.wait())
    await settle()
    slots.give()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert slots.free == 1 and slots.take() and not slots.take()
    slots.give()
    assert slots.free == 1


# ----- backpressure -----


async def test_a_large_body_read_slowly_pauses_and_resumes_reading(monkeypatch):
    monkeypatch.setattr(_http1_connection, "_HIGH_WATER", 4096)
    body = b"".join(b"%08d" % i for i in range(250_000))  # 2 MB, every byte checkable
    states: list[tuple[bool, bool]] = []  # (paused, transport reading) after each change
    original = _http1_connection._Connection.pause

    def pause(self, on: bool) -> None:
        before = self.paused
        original(self, on)
        if self.paused != before:
            states.append((self.paused, self.transport.is_reading()))

    monkeypatch.setattr(_http1_connection._Connection, "pause", pause)

    async def handle(conn: Conn) -> None:
        while await conn.request() is not None:
            wire = chunked_head() + chunked_body(body, 65536)
            await conn.send(*(wire[i : i + 100_000] for i in range(0, len(wire), 100_000)))

    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            received = []
            async with client.post(up.url, data=b"{}") as response:
                async for part in response.content.iter_any():
                    received.append(part)
                    await asyncio.sleep(0.002)  # a slow reader
            assert b"".join(received) == body
            assert await post(client, up.url) == (200, body)
        finally:
            client.close()
    assert up.connections == 1
    assert (True, False) in states and (False, True) in states
    assert all(paused != reading for paused, reading in states)


# ----- TLS -----


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(the server's context, a client context trusting it): a self-signed
    certificate for 127.0.0.1."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "luthien test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_https_keeps_alive_and_verifies_the_certificate(certificate):
    server_tls, trusting = certificate
    async with Upstream(keep_alive(lambda req: answer(b"re:" + req.body)), server_tls) as up:
        assert up.url.startswith("https://")
        client = Http1Client(max_connections=1)
        try:
            # The system's trust store: a self-signed certificate is refused.
            with pytest.raises(ssl.SSLCertVerificationError):
                await post(client, up.url)
            client._tls = trusting  # the context the client made, trusting this one
            for i in range(3):
                assert await post(client, up.url, b"%d" % i) == (200, b"re:%d" % i)
            _parts, joined = await iter_body(client, up.url)
            assert joined == b"re:{}"
        finally:
            client.close()
    assert [req.conn for req in up.requests] == [0, 0, 0, 0]
    assert up.connections == 1, "the refused handshake never reached the handler"


# ----- the session pool -----


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_pool_keeps_one_client_per_event_loop_and_closes_the_old_one(scheme, request):
    server_tls, trusting = (
        request.getfixturevalue("certificate") if scheme == "https" else (None, None)
    )
    async with Upstream(keep_alive(lambda req: answer(req.body)), server_tls) as up:
        pool = SessionPool(4)

        async def in_another_loop() -> Http1Client:
            client = pool.client()
            client._tls = trusting
            assert pool.client() is client
            assert await post(client, up.url, b"old") == (200, b"old")
            return client  # its connection stays open, idle, when this loop ends

        old = await asyncio.to_thread(asyncio.run, in_another_loop())
        assert isinstance(old, Http1Client) and not old.closed
        assert up.connections == 1 and not up.closed_by_client
        new = pool.client()
        assert new is not old and old.closed
        await until(lambda: 0 in up.closed_by_client)  # the old loop's connection
        assert pool.client() is new
        new._tls = trusting
        assert await post(new, up.url, b"new") == (200, b"new")
        await pool.aclose()
        assert new.closed
        await until(lambda: 1 in up.closed_by_client)
        after = pool.client()
        assert after is not new and not after.closed
        await pool.aclose()
    assert up.connections == 2


# ----- end to end: the lean OpenAI client's stream -----


async def test_the_openai_client_streams_events_split_anywhere_with_their_raw_bytes():
    frames = [_chunk_event(i).replace(b"\n", b"\r\n") for i in range(6)]
    stream = b"".join(frames) + b"data: [DONE]\r\n\r\n"
    # Cuts inside "data:", between \r and \n, inside the JSON, several events per piece.
    one = len(frames[0])
    cuts = [0, 3, one - 3, one - 1, one + 60, one + 61, 4 * one + 2, len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(cuts)]

    async def handle(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(
                chunked_head("content-type: text/event-stream\r\n"),
                *(chunk(piece) for piece in pieces[:-1]),
                chunk(pieces[-1]) + b"0\r\n\r\n",  # the end with [DONE]: kept alive
                pause=0.003,
            )

    raw = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    body = json.loads(raw)
    request = Request(**body)
    wire = bind_wire(request, "chat", body, None, {"x-client": "c"}, {"client_usage": False})
    wire.raw = raw
    async with Upstream(handle) as up:
        client = OpenAIHTTPClient(up.url.split("?")[0].removesuffix("/x"), "key")
        try:
            chunks = [c async for c in client.stream(request)]
            again = [c async for c in client.stream(request)]
        finally:
            await client.aclose()
    expected = [f.replace(b"\r\n", b"\n") for f in frames]
    assert [original(c) for c in chunks] == expected  # as they came, not looked into yet
    assert [c.choices[0].delta.content for c in chunks] == [f"piece {i} " for i in range(6)]
    assert [original(c) for c in chunks] == expected  # looked into, still unchanged
    assert len(again) == 6
    sent = up.requests[0]
    assert sent.target == "/v1/chat/completions"
    assert sent.body == native_chat_body(wire, request, True)
    assert sent.header("authorization") == ["Bearer key"]
    assert sent.header("x-client") == ["c"]
    assert sent.header("content-type") == ["application/json"]
    assert up.connections == 1


# ----- the end of a stream after [DONE] -----


def _sse_stream(events: int) -> bytes:
    return b"".join(_chunk_event(i) for i in range(events)) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("late", [b"0\r\n\r\n", chunk(b": trailing comment\n\n") + b"0\r\n\r\n"])
async def test_a_body_end_after_done_is_read_and_the_connection_reused(late):
    async def handle(conn: Conn) -> None:
        while await conn.request() is not None:
            # [DONE] in one read, the body's end (maybe more bytes) in a later one.
            await conn.send(chunked_head() + chunk(_sse_stream(3)), late, pause=0.02)

    async with Upstream(handle) as up:
        client = OpenAIHTTPClient(up.url.split("?")[0].removesuffix("/x"))
        request = Request(model="m", messages=[{"role": "user", "content": "hi"}])
        try:
            for _ in range(3):
                chunks = [c async for c in client.stream(request)]
                assert [c.choices[0].delta.content for c in chunks] == [
                    f"piece {i} " for i in range(3)
                ]
                # Back in the pool once the body's end came in (closed, it never would).
                idle = client._pool.client()._idle
                await until(lambda idle=idle: sum(map(len, idle.values())) == 1)
        finally:
            await client.aclose()
    assert up.connections == 1
    assert len(up.requests) == 3


async def test_a_body_that_does_not_end_after_done_is_given_up(monkeypatch):
    monkeypatch.setattr(_http1_connection, "_DRAIN_SECONDS", 0.05)

    async def handle(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(chunked_head() + chunk(_sse_stream(2)))
            await conn.until_closed()  # never ends the body

    async with Upstream(handle) as up:
        client = OpenAIHTTPClient(up.url.split("?")[0].removesuffix("/x"))
        request = Request(model="m", messages=[{"role": "user", "content": "hi"}])
        try:
            for _ in range(2):
                assert len([c async for c in client.stream(request)]) == 2
                await until(lambda: len(up.closed_by_client) == up.connections)
        finally:
            await client.aclose()
    # Each connection was closed by the client once the wait ran out, and not reused.
    assert up.connections == 2
    assert up.closed_by_client == {0, 1}


async def test_without_httptools_the_pool_posts_with_aiohttp(monkeypatch):
    import aiohttp

    from luthien_lab.gateway import _native_http

    monkeypatch.setattr(_native_http, "_http1_client", lambda: None)
    pool = SessionPool()
    try:
        client = pool.client()
        assert isinstance(client, aiohttp.ClientSession)
        assert pool.client() is client is pool.session()
    finally:
        await pool.aclose()
