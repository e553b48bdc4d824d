"""``NativeClient``: what the native upstream clients share (one per wire API: Messages,
Responses). Each sends the body its dialect's ``native_body`` builds (the client's own
bytes when the policy changed nothing), turns every SSE event into one normalized
chunk (a lightweight one, :mod:`luthien_lab.streaming.lite`) registered with the transaction's :class:`WireContext`, and keeps the
upstream's own non-streaming answer beside the normalized one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from luthien_lab.clients import LLMClient
from luthien_lab.clients._litellm import import_litellm
from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._native_http import SessionPool, fail, forward, sse_batches
from luthien_lab.gateway._wire import WireContext, wire_of
from luthien_lab.streaming.lite import Chunk, Response

if TYPE_CHECKING:
    from luthien_lab.provider import LocalProvider
    from luthien_lab.request import Request

__all__ = ["ChunkMaker", "NativeClient"]


class ChunkMaker:
    """Builds one stream's normalized chunks, all with the stream's id, time and model."""

    __slots__ = ("created", "factory", "id", "model")

    def __init__(self, factory: Any, model: str, stream_id: str) -> None:
        self.factory = factory
        self.id = stream_id
        self.model = model
        self.created = int(time.time())

    def make(self, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Any:
        fields: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "model": self.model,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            fields["usage"] = usage
        return self.factory(**fields)

    def trailer(self) -> Any:
        """A chunk with no choices (the end of the message)."""
        return self.factory(id=self.id, created=self.created, model=self.model, choices=[])


class NativeClient(LLMClient):
    """Base of the native clients. ``api_base`` None: the local provider when
    :func:`luthien_lab.provider.target_is_local` says so, else the provider's public API;
    ``api_key`` None: ``$<key_env>``, else the client's own key (forwarded)."""

    api: ClassVar[str]
    provider: ClassVar[str]
    remote_base: ClassVar[str]
    key_env: ClassVar[str]

    def __init__(self, api_base: str | None = None, api_key: str | None = None) -> None:
        self.api_base = api_base.rstrip("/") if api_base else None
        self.api_key = api_key
        self._pool = SessionPool()
        # Lightweight objects (litellm's shape without its per-field validation, which
        # cost more than the rest of the gateway's work on a passed-through chunk).
        self._chunk = Chunk
        self._response = Response
        import_litellm()  # now (seconds), not on the first request

    def local_base(self, provider: LocalProvider) -> str:
        """The local provider's base URL for this API."""
        raise NotImplementedError

    def target(self, model: str) -> tuple[str, str | None]:
        """(base URL, key) for ``model``."""
        if self.api_base:
            return self.api_base, self.api_key
        from luthien_lab.provider._routing import target_is_local

        if target_is_local(model):
            from luthien_lab.provider._routing import shared_local_provider

            return self.local_base(shared_local_provider()), "sk-local"
        return self.remote_base, self.api_key or os.environ.get(self.key_env)

    def wire(self, request: Request) -> WireContext:
        wire = wire_of(request, self.api)
        if wire is None:
            raise TypeError(f"{type(self).__name__} serves requests from the {self.api} dialect")
        return wire

    @staticmethod
    def payload(wire: WireContext, body: dict[str, Any], same: bool) -> bytes:
        """The client's own bytes when nothing changed, not a re-encoding of them."""
        if same and wire.raw is not None:
            return wire.raw
        return json.dumps(body, ensure_ascii=False).encode()

    async def forward(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, bytes, str]:
        """A request that is not a transaction, passed on: (status, body, type)."""
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        return await forward(self._pool, method, url, headers, data)

    async def post_stream(
        self, wire: WireContext, url: str, headers: dict[str, str], data: bytes, normalize: Any
    ) -> AsyncIterator[Any]:
        """POST, then one normalized chunk per SSE event (``normalize(event)``, which
        may raise for an error event), each registered on ``wire``."""
        session = self._pool.client()
        async with session.post(url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await fail(response, self.provider)
            async for batch in sse_batches(response, self.provider):
                for event, raw in batch:
                    chunk = normalize(event)
                    wire.register(chunk, event, raw)
                    yield chunk

    async def post_json(
        self, url: str, headers: dict[str, str], data: bytes
    ) -> tuple[dict[str, Any], bytes]:
        """POST, then the upstream's JSON object and its raw bytes."""
        session = self._pool.client()
        async with session.post(url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await fail(response, self.provider)
            raw = await response.read()
        try:
            obj = json.loads(raw)
        except ValueError as error:
            raise UpstreamError(
                f"malformed JSON from the provider: {error}", provider=self.provider
            ) from error
        if not isinstance(obj, dict):
            raise UpstreamError(
                "the provider's answer is not a JSON object", provider=self.provider
            )
        return obj, raw

    def provider_for(self, request: Request) -> str:
        return self.provider

    async def aclose(self) -> None:
        await self._pool.aclose()
