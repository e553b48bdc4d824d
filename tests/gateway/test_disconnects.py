"""A client that hangs up at any point, in either API, cancels the upstream call and
the policy's work, and the transaction is recorded ``cancelled``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from luthien_lab import CallbackListener, NoOpPolicy
from luthien_lab.clients import LLMClient
from luthien_lab.gateway import create_app
from tests.gateway.conftest import serve
from tests.support import text_stream

pytestmark = pytest.mark.timeout(60)


class HangingClient(LLMClient):
    """An upstream that sends ``before`` chunks, then nothing, until cancelled."""

    def __init__(self, before: int) -> None:
        self.before = before
        self.started = 0
        self.cancelled = 0

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        self.started += 1
        try:
            if self.before:
                chunks = text_stream(*[f"piece {i} " for i in range(self.before)])
                for chunk in chunks[:-1]:  # no finish: the answer is still coming
                    yield chunk
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except GeneratorExit:
            self.cancelled += 1
            raise

    async def complete(self, request: Any) -> Any:
        self.started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


ROUTES = {
    "responses": ("/v1/responses", {"model": "m", "input": "x"}),
    "chat": (
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
    ),
    "messages": (
        "/v1/messages",
        {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
    ),
}


@pytest.mark.parametrize("api", sorted(ROUTES))
@pytest.mark.parametrize(
    ("stream", "before"),
    [(False, 0), (True, 0), (True, 3)],
    ids=["non-streaming", "before-first-chunk", "mid-stream"],
)
async def test_disconnect_cancels_and_is_recorded(api, stream, before):
    upstream = HangingClient(before)
    finished: list[str] = []

    def on_event(name: str, _tid: str, payload: dict[str, Any]) -> None:
        if name == "transaction_finished":
            finished.append(payload["result"].status)

    app = create_app(NoOpPolicy(), llm_client=upstream, listeners=[CallbackListener(on_event)])
    path, body = ROUTES[api]
    with serve(app) as url:
        async with httpx.AsyncClient(timeout=10) as client:
            request = client.build_request("POST", url + path, json=body | {"stream": stream})
            task = asyncio.ensure_future(client.send(request, stream=True))
            for _ in range(2000):
                if upstream.started:
                    break
                await asyncio.sleep(0.01)
            if before:
                response = await task
                lines = response.aiter_lines()
                seen = 0
                async for line in lines:
                    seen += line.startswith("data:")
                    if seen >= 2:
                        break
                await response.aclose()
            else:
                await asyncio.sleep(0.2)  # the upstream call is in flight
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        for _ in range(2000):
            if upstream.cancelled and finished:
                break
            await asyncio.sleep(0.01)
    assert upstream.started == 1
    assert upstream.cancelled == 1, "the upstream call was not cancelled"
    assert finished == ["cancelled"]


def test_the_hanging_client_is_a_real_stream():
    """The double above streams what it says (so the test measures the gateway)."""
    client = HangingClient(2)

    async def take() -> list[str]:
        out = []
        iterator = client.stream(None).__aiter__()
        for _ in range(3):
            chunk = await iterator.__anext__()
            out.append(chunk.choices[0].delta.content)
        await iterator.aclose()
        return out

    assert asyncio.run(take()) == ["", "piece 0 ", "piece 1 "]
    assert client.cancelled == 1
