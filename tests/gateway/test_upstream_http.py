"""The lean upstream client (``gateway.upstream.client: http``, aiohttp)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest

from luthien_lab import NoOpPolicy, Request
from luthien_lab.errors import UpstreamError
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.gateway._upstream import OpenAIHTTPClient, native_chat_body
from luthien_lab.gateway._wire import bind_wire
from luthien_lab.provider import ScriptedResponse
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(30)


def _chunk_event(i: int) -> bytes:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"piece {i} "}}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


@contextlib.asynccontextmanager
async def slow_sse_server(events: list[bytes], delay: float):
    """A raw HTTP server streaming ``events`` ``delay`` s apart; yields (api_base,
    state) where state["closed"] is set once the client has closed the connection."""
    state: dict[str, asyncio.Event] = {"closed": asyncio.Event()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            for event in events:
                writer.write(event)
                await writer.drain()
                await asyncio.sleep(delay)
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
            await reader.read()  # until the client closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            state["closed"].set()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", state
    finally:
        server.close()
        await server.wait_closed()


def request(text: str = "hi", **extra) -> Request:
    return Request(model="openai/m", messages=[{"role": "user", "content": text}], **extra)


async def test_closing_the_stream_closes_the_upstream_connection():
    events = [_chunk_event(i) for i in range(100)]
    async with slow_sse_server(events, delay=0.05) as (base, state):
        client = OpenAIHTTPClient(base)
        try:
            stream = client.stream(request())
            got = [await stream.__anext__() for _ in range(3)]
            assert got[2].choices[0].delta.content == "piece 2 "
            assert not state["closed"].is_set()
            await stream.aclose()  # type: ignore[attr-defined]
            await asyncio.wait_for(state["closed"].wait(), 5)
        finally:
            await client.aclose()


async def test_gateway_client_disconnect_closes_the_upstream_connection():
    # The gateway runs in another thread and loop: the server's close is seen there.
    events = [_chunk_event(i) for i in range(200)]
    async with slow_sse_server(events, delay=0.02) as (base, state):
        settings = GatewaySettings(upstream=UpstreamSettings(api_base=base, client="http"))
        with serve(create_app(NoOpPolicy(), settings=settings)) as url:
            async with (
                httpx.AsyncClient(timeout=10) as h,
                h.stream(
                    "POST",
                    f"{url}/v1/chat/completions",
                    json={
                        "model": "m",
                        "stream": True,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                ) as response,
            ):
                assert response.status_code == 200
                received = 0
                async for line in response.aiter_lines():
                    received += line.startswith("data:")
                    if received >= 3:
                        break
            assert not state["closed"].is_set(), "upstream closed before the client left"
            await asyncio.wait_for(state["closed"].wait(), 5)


async def test_one_huge_event_and_the_full_response(provider):
    big = "word " * 60_000  # one 300 kB SSE event: beyond aiohttp's readline limit
    provider.add_case("huge event", ScriptedResponse(text=big, chunk_size=len(big)))
    client = OpenAIHTTPClient(provider.openai_base)
    try:
        chunks = [c async for c in client.stream(request("huge event"))]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        full = await client.complete(request("huge event"))
    finally:
        await client.aclose()
    assert text == full.choices[0].message.content == big
    assert chunks[-1].usage is not None, "the usage trailer was asked for"


async def test_http_errors_and_malformed_events_are_upstream_errors(provider):
    provider.add_case("fail please", ScriptedResponse(fault="http_429"))
    client = OpenAIHTTPClient(provider.openai_base)
    try:
        with pytest.raises(UpstreamError) as caught:
            await client.complete(request("fail please"))
        assert caught.value.status_code == 429
        with pytest.raises(UpstreamError) as caught:
            [c async for c in client.stream(request("fail please"))]
        assert caught.value.status_code == 429
    finally:
        await client.aclose()
    async with slow_sse_server([b"data: {not json\n\n"], delay=0) as (base, _state):
        client = OpenAIHTTPClient(base)
        try:
            with pytest.raises(UpstreamError, match="malformed SSE event"):
                [c async for c in client.stream(request())]
        finally:
            await client.aclose()


def _bound(raw: bytes, usage: bool):
    body = json.loads(raw)
    request = Request(**body)
    wire = bind_wire(request, "chat", body, None, {}, {"client_usage": usage})
    wire.raw = raw
    return wire, request


def test_an_unchanged_stream_request_is_the_clients_bytes_asking_for_usage():
    # Odd spacing, key order and an unknown field: all kept byte for byte.
    raw = b'{ "stream" : true,"messages":[{"role":"user","content":"hi \\u2603"}],\n "model":"gpt-4o-mini", "x_new": [1, {"a": null}] }\n'
    wire, request = _bound(raw, usage=False)
    sent = native_chat_body(wire, request, True)
    assert (
        sent
        == raw[: raw.rindex(b"}")].rstrip() + b',"stream_options":{"include_usage":true}' + b"}\n"
    )
    assert json.loads(sent) == {**json.loads(raw), "stream_options": {"include_usage": True}}
    # Asked by the client already: its own bytes.
    asked = raw.replace(b'"x_new"', b'"stream_options":{"include_usage":true}, "x_new"')
    wire, request = _bound(asked, usage=True)
    assert native_chat_body(wire, request, True) is asked


def test_a_changed_request_is_written_again():
    raw = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    wire, request = _bound(raw, usage=False)
    request.temperature = 0.5
    sent = json.loads(native_chat_body(wire, request, True))
    assert sent["temperature"] == 0.5
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
