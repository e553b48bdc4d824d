"""A streamed request leaves nothing for the event loop to finish after it: no async
generator on its path is dropped unfinished. Such a generator is closed by the loop
from a task of its own, scheduled through its cross-thread wake-up (an eventfd write
and one more turn of the loop, per request).

The gateway runs in uvicorn's thread (``serve``); an ASGI wrapper installs, in that
thread, asyncgen hooks that count the generators handed to the loop's finalizer."""

from __future__ import annotations

import sys
import threading

import httpx
import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)


class FinalizerCount:
    """ASGI wrapper: on its first request, wraps the serving thread's asyncgen
    finalizer (the event loop's) so that each call is counted, by generator name."""

    def __init__(self, app) -> None:
        self.app = app
        self.names: list[str] = []
        self.thread: threading.Thread | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.thread is None:
            self.thread = threading.current_thread()
            hooks = sys.get_asyncgen_hooks()
            loop_finalizer = hooks.finalizer
            assert loop_finalizer is not None, "the serving loop installs a finalizer"

            def finalizer(agen) -> None:
                self.names.append(agen.__qualname__)
                loop_finalizer(agen)

            sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
        await self.app(scope, receive, send)


def stream(client: httpx.Client, path: str, body: dict, headers: dict) -> str:
    with client.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return response.read().decode()


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
MESSAGES = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}
RESPONSES = {"model": "gpt-4o-mini", "input": "hi", "stream": True}


@pytest.mark.parametrize(
    ("api", "path", "body", "end"),
    [
        ("chat", "/v1/chat/completions", CHAT, "data: [DONE]"),
        ("messages", "/v1/messages", MESSAGES, "message_stop"),
        ("responses", "/v1/responses", RESPONSES, "response.completed"),
    ],
)
def test_no_async_generator_is_left_to_the_loop_to_finish(provider, api, path, body, end):
    upstream = (
        UpstreamSettings(api_base=provider.url, provider="anthropic")
        if api == "messages"
        else UpstreamSettings(api_base=provider.openai_base, responses_api="native")
    )
    counted = FinalizerCount(create_app(NoOpPolicy(), settings=GatewaySettings(upstream=upstream)))
    headers = {"anthropic-version": "2023-06-01"} if api == "messages" else {}
    with serve(counted) as url, httpx.Client(base_url=url, timeout=30) as client:
        texts = [stream(client, path, body, headers) for _ in range(5)]
        # One more request: whatever the five left runs before it is answered.
        stream(client, path, body, headers)
    assert all(end in text for text in texts)
    assert counted.thread is not None and counted.thread is not threading.current_thread()
    assert counted.names == []
