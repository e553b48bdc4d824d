"""``OpenAIHTTPClient``: a lean upstream client for OpenAI-compatible providers.

``LiteLLMClient`` supports every provider but costs several milliseconds of CPU per
request (routing, logging, response re-wrapping). When the upstream already speaks
the OpenAI protocol (``gateway.upstream.client: http``), this client posts the
request as is with one shared httpx connection pool and parses each SSE event into a
litellm chunk, which is all the orchestrator needs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from luthien_lab.clients import LLMClient
from luthien_lab.clients._base import set_stream_mode
from luthien_lab.errors import UpstreamError

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["OpenAIHTTPClient"]


class OpenAIHTTPClient(LLMClient):
    """Posts to ``{api_base}/chat/completions``; ``provider/`` model prefixes are
    stripped (``openai/gpt-4o`` is sent as ``gpt-4o``)."""

    def __init__(self, api_base: str, api_key: str = "", *, max_connections: int = 256) -> None:
        self.url = api_base.rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
        # Timeouts are the orchestrator's (chunk_timeout); none here.
        self._http = httpx.AsyncClient(headers=headers, limits=limits, timeout=None)

    def _body(self, request: Request, stream: bool) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True)
        model = body["model"]
        if "/" in model:
            body["model"] = model.split("/", 1)[1]
        return set_stream_mode(body, stream)

    @staticmethod
    async def _fail(response: httpx.Response) -> UpstreamError:
        text = (await response.aread()).decode(errors="replace")[:500]
        return UpstreamError(
            f"the provider answered HTTP {response.status_code}: {text}",
            provider="openai-http",
            status_code=response.status_code,
        )

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        from litellm.types.utils import ModelResponseStream

        async with self._http.stream("POST", self.url, json=self._body(request, True)) as response:
            if response.status_code >= 400:
                raise await self._fail(response)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError as error:
                    raise UpstreamError(
                        f"malformed SSE event from the provider: {data[:200]!r}"
                    ) from error
                if "error" in event:
                    raise UpstreamError(f"the provider sent an error mid-stream: {event['error']}")
                yield ModelResponseStream(**event)

    async def complete(self, request: Request) -> Any:
        from litellm.types.utils import ModelResponse

        response = await self._http.post(self.url, json=self._body(request, False))
        if response.status_code >= 400:
            raise await self._fail(response)
        try:
            return ModelResponse(**response.json())
        except ValueError as error:
            raise UpstreamError(f"malformed JSON from the provider: {error}") from error

    def provider_for(self, request: Request) -> str:
        return "openai-http"

    async def aclose(self) -> None:
        await self._http.aclose()
