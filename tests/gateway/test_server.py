"""The gateway is served by uvicorn's compiled pieces: httptools parses HTTP and
uvloop runs the event loop (``SERVER_OPTIONS``, used by ``luthien-lab serve`` and by
the in-process test server)."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn

from luthien_lab import NoOpPolicy, ScriptedLLMClient
from luthien_lab.gateway import create_app
from luthien_lab.gateway.cli import SERVER_OPTIONS
from tests.gateway.conftest import serve
from tests.support import text_stream


def test_server_options_pick_httptools_and_uvloop():
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = uvicorn.Config(lambda *a: None, **SERVER_OPTIONS)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    # The app itself, not wrapped in uvicorn's proxy-headers middleware.
    assert config.loaded_app.__class__.__name__ != "ProxyHeadersMiddleware"
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop"), type(loop)
    finally:
        loop.close()


def test_a_served_request_runs_on_uvloop():
    seen: list[str] = []
    app = create_app(NoOpPolicy(), llm_client=ScriptedLLMClient(text_stream("hi")))

    async def probe(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            seen.append(type(asyncio.get_running_loop()).__module__)
        await app(scope, receive, send)

    with serve(probe) as url:
        response = httpx.get(f"{url}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert len(seen) == 1 and seen[0].startswith("uvloop"), seen


def test_api_calls_skip_fastapi_routing():
    from luthien_lab.gateway._hot_routes import HOT_PATHS, GatewayApp

    app = create_app(NoOpPolicy(), llm_client=ScriptedLLMClient(text_stream("hi")))
    assert isinstance(app, GatewayApp)
    assert set(app.hot_endpoints) == HOT_PATHS


def test_a_hot_route_answers_and_errors_keep_their_format():
    app = create_app(NoOpPolicy(), llm_client=ScriptedLLMClient(text_stream("hi")))
    with serve(app) as url:
        ok = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            timeout=10,
        )
        bad = httpx.post(f"{url}/v1/messages", json={"model": "m"}, timeout=10)
        wrong_method = httpx.get(f"{url}/v1/messages", timeout=10)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "hi"
    assert bad.status_code == 400 and bad.json()["type"] == "error", bad.text
    assert "max_tokens" in bad.json()["error"]["message"]
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
