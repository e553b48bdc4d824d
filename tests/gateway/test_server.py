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
