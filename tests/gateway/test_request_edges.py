"""The edges of one request at the gateway: its body read from ASGI's ``receive``
(in parts, or cut short by the client), and the watch for the client hanging up,
which listens only once a request has run for a while (``WATCH_AFTER``)."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any

import pytest

from luthien_lab import NoOpPolicy, ScriptedLLMClient
from luthien_lab.gateway import _sse, create_app
from luthien_lab.gateway._sse import ClientDisconnected, DisconnectWatch, unless_disconnected
from tests.support import text_stream

ROUTES = {
    "/v1/chat/completions": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/messages/count_tokens": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "m", "input": "hi"},
}


async def _call(app: Any, path: str, messages: list[dict[str, Any]]) -> tuple[int, bytes]:
    """One POST through the app, the request's ASGI messages as given; then the
    client stays (no disconnect) unless the messages end with one."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    pending = list(messages)
    never = asyncio.get_running_loop().create_future()
    status: list[int] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await never

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return status[0], b"".join(body)


def _app() -> Any:
    return create_app(NoOpPolicy(), llm_client=ScriptedLLMClient(text_stream("hello")))


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_a_body_in_parts_is_read_whole(path):
    raw = json.dumps(ROUTES[path]).encode()
    cuts = [raw[:7], raw[7:20], raw[20:]]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(cuts) - 1}
        for i, part in enumerate(cuts)
    ]
    whole = await _call(_app(), path, [{"type": "http.request", "body": raw}])
    parted = await _call(_app(), path, messages)
    assert whole[0] == parted[0] == 200, (whole, parted)
    assert len(parted[1]) > 0


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_a_client_gone_before_its_body_is_whole_gets_499_not_an_error(path, caplog):
    raw = json.dumps(ROUTES[path]).encode()
    messages = [
        {"type": "http.request", "body": raw[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    status, body = await _call(_app(), path, messages)
    assert status == 499, body
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


async def test_a_request_done_before_the_watch_starts_never_listens():
    calls: list[str] = []

    async def receive() -> dict[str, Any]:
        calls.append("receive")
        return {"type": "http.disconnect"}

    http = types.SimpleNamespace(receive=receive)
    assert await unless_disconnected(http, asyncio.sleep(0, "answer")) == "answer"
    await asyncio.sleep(_sse.WATCH_AFTER * 3)
    assert calls == []


async def test_a_client_gone_early_is_noticed_once_the_watch_starts(monkeypatch):
    monkeypatch.setattr(_sse, "WATCH_AFTER", 0.01)
    calls: list[str] = []
    upstream: list[str] = []

    async def receive() -> dict[str, Any]:
        calls.append("receive")
        return {"type": "http.disconnect"}  # the client left before anyone asked

    async def slow_upstream() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            upstream.append("cancelled")
            raise
        return "never"

    watch = DisconnectWatch(receive)
    with pytest.raises(ClientDisconnected):
        await unless_disconnected(None, slow_upstream(), watch)
    watch.stop()
    assert calls == ["receive"] and upstream == ["cancelled"]
    assert watch.gone == [True]
    current = asyncio.current_task()
    assert current is not None and not current.cancelling()  # the cancel was taken back


async def test_watches_of_many_requests_start_together_and_only_those_still_running(monkeypatch):
    monkeypatch.setattr(_sse, "WATCH_AFTER", 0.01)
    listening: list[int] = []

    def receive_of(number: int) -> Any:
        async def receive() -> dict[str, Any]:
            listening.append(number)
            await asyncio.sleep(30)  # the client stays
            return {"type": "http.disconnect"}

        return receive

    async def request(number: int, seconds: float) -> None:
        watch = DisconnectWatch(receive_of(number))
        try:
            await asyncio.sleep(seconds)
        finally:
            watch.stop()

    # Five short requests end before the first tick; five long ones outlive two.
    await asyncio.gather(
        *(request(n, 0) for n in range(5)), *(request(n, 0.2) for n in range(5, 10))
    )
    assert sorted(listening) == [5, 6, 7, 8, 9]
