"""``OpenAIHTTPClient``: a lean upstream client for OpenAI-compatible providers.

``LiteLLMClient`` supports every provider but costs several milliseconds of CPU per
request (routing, logging, response re-wrapping). When the upstream already speaks
the OpenAI protocol (``gateway.upstream.client: http``), this client posts the
request as is over one shared connection pool and turns each SSE event into a
lightweight chunk (:mod:`luthien_lab.streaming.lite`, litellm's shape without its
per-field validation), which is all the orchestrator needs.

The requests go through the gateway's own HTTP/1.1 client (:mod:`._http1`, see
there why); not httpx, whose pool checks every idle connection with syscalls
(``getpeername`` + ``poll``) each time a request takes or returns a connection: with
50 concurrent requests it spent ~60% of the gateway's CPU in pool bookkeeping.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.clients import LLMClient
from luthien_lab.clients._base import ChunkBatches, set_stream_mode
from luthien_lab.clients._litellm import import_litellm
from luthien_lab.errors import ConfigError, UpstreamError
from luthien_lab.gateway._native_http import SessionPool, fail, sse_batches
from luthien_lab.gateway._wire import WireContext, wire_attr, wire_of
from luthien_lab.streaming.lazy import lazy_all
from luthien_lab.streaming.lite import Chunk, Response

if TYPE_CHECKING:
    import aiohttp

    from luthien_lab.request import Request

__all__ = [
    "OpenAIHTTPClient",
    "ProtocolRouter",
    "WireRouter",
    "build_upstream",
    "native_chat_body",
]

_PROVIDER = "openai-http"


class OpenAIHTTPClient(LLMClient):
    """Posts to ``{api_base}/chat/completions``; ``provider/`` model prefixes are
    stripped (``openai/gpt-4o`` is sent as ``gpt-4o``).

    Its HTTP client comes from a :class:`SessionPool` (one per event loop);
    ``aclose()`` closes it.
    """

    def __init__(self, api_base: str, api_key: str = "", *, max_connections: int = 256) -> None:
        self.url = api_base.rstrip("/") + "/chat/completions"
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._pool = SessionPool(max_connections, headers)
        # litellm is imported now, not on the first request (seconds, during which a
        # serving event loop would answer nothing); the gateway uses it for other
        # upstreams and its Responses translation.
        import_litellm()

    def _client(self) -> Any:
        return self._pool.client()

    def _body(self, request: Request, stream: bool) -> tuple[bytes, dict[str, str] | None]:
        """The body to post, and the client headers to forward (None: no wire)."""
        wire = wire_of(request, "chat")
        if wire is not None:
            return native_chat_body(wire, request, stream), wire.headers
        body = request.model_dump(exclude_none=True)
        model = body["model"]
        if "/" in model:
            body["model"] = model.split("/", 1)[1]
        return json.dumps(set_stream_mode(body, stream)).encode(), None

    @staticmethod
    async def _fail(response: aiohttp.ClientResponse) -> UpstreamError:
        return await fail(response, _PROVIDER)

    def stream(self, request: Request) -> AsyncIterator[Any]:
        # The events of one read of the answer go to the pipeline as one group: one
        # step of each iterator per read, not per event.
        return ChunkBatches(self._batches(request))

    async def _batches(self, request: Request) -> AsyncGenerator[list[Any], None]:
        # Lightweight chunks (``streaming.lite``), made of the event's own dicts: a
        # litellm ``ModelResponseStream`` cost more CPU than the rest of the gateway's
        # work on a chunk the policy passes through (validation of every field). From
        # the chat dialect, lazy ones (``streaming.lazy``): each holds its event and raw
        # bytes, and is made objects only if something looks inside it; the dialect
        # re-sends the bytes of those nothing changed.
        session = self._client()
        native = wire_of(request, "chat") is not None
        data, headers = self._body(request, True)
        async with session.post(self.url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await self._fail(response)
            # Frames are split by sse_batches rather than aiohttp's readline, which
            # refuses lines over its buffer size (a large tool-call argument can be one
            # event); each keeps its raw bytes, re-sent as they are when unchanged.
            async for batch in sse_batches(response, _PROVIDER):
                for event, _raw in batch:
                    if "error" in event:
                        raise UpstreamError(
                            f"the provider sent an error mid-stream: {event['error']}",
                            provider=_PROVIDER,
                        )
                yield lazy_all(batch) if native else [Chunk.adopt(event) for event, _ in batch]

    async def complete(self, request: Request) -> Any:
        session = self._client()
        data, headers = self._body(request, False)
        async with session.post(self.url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await self._fail(response)
            raw = await response.read()
        try:
            obj = json.loads(raw)
        except ValueError as error:
            raise UpstreamError(
                f"malformed JSON from the provider: {error}", provider=_PROVIDER
            ) from error
        if not isinstance(obj, dict):
            raise UpstreamError("the provider's answer is not a JSON object", provider=_PROVIDER)
        result = Response.from_dict(obj)
        wire = wire_of(request, "chat")
        if wire is not None:
            wire.response = (result, raw)
        return result

    def provider_for(self, request: Request) -> str:
        return _PROVIDER

    async def aclose(self) -> None:
        await self._pool.aclose()


def native_chat_body(wire: WireContext, request: Request, stream: bool) -> bytes:
    """The client's body with what the policy changed (top-level fields) replaced; the
    client's own bytes when it changed nothing. A stream always asks for the usage
    trailer (recordings keep it); the dialect does not pass it on unasked."""
    final = request.model_dump() if wire.snapshot is not None else {}
    changed = wire.changed_fields(final) - {"model", "stream"}
    model = request.model.split("/", 1)[1] if "/" in request.model else request.model
    if not changed and model == wire.body["model"] and wire.raw is not None:
        if not stream or wire.extra.get("client_usage"):
            return wire.raw
        if wire.body.get("stream") is True and "stream_options" not in wire.body:
            # The client's bytes with the usage trailer asked for, rather than the
            # body parsed and written again: cheaper, and nothing else differs.
            return _asking_usage(wire.raw)
    body = dict(wire.body)
    for key in changed:
        if final.get(key) is None:
            body.pop(key, None)
        else:
            body[key] = final[key]
    body["model"] = model
    return json.dumps(set_stream_mode(body, stream), ensure_ascii=False).encode()


def _asking_usage(raw: bytes) -> bytes:
    """A JSON object's bytes with ``"stream_options":{"include_usage":true}`` added as
    its last member (the caller knows it has no ``stream_options`` and is not empty)."""
    end = raw.rindex(b"}")
    return raw[:end].rstrip() + b',"stream_options":{"include_usage":true}' + raw[end:]


class _Router(LLMClient):
    """An upstream that hands each request to one of its clients (``_pick``)."""

    def _pick(self, request: Request) -> LLMClient:
        raise NotImplementedError

    def _clients(self) -> tuple[LLMClient, ...]:
        raise NotImplementedError

    def stream(self, request: Request) -> AsyncIterator[Any]:
        return self._pick(request).stream(request)

    async def complete(self, request: Request) -> Any:
        return await self._pick(request).complete(request)

    def provider_for(self, request: Request) -> str:
        return self._pick(request).provider_for(request)

    async def aclose(self) -> None:
        for client in self._clients():
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()


class ProtocolRouter(_Router):
    """The gateway's ``auto`` upstream: OpenAI-protocol models go through the lean
    ``openai`` client, every other model (``anthropic/...``, ``claude...``) through
    ``other`` (litellm, which speaks that provider's protocol)."""

    def __init__(self, openai: LLMClient, other: LLMClient) -> None:
        self.openai = openai
        self.other = other

    def _pick(self, request: Request) -> LLMClient:
        from luthien_lab.provider._protocol import protocol_for_model

        return self.openai if protocol_for_model(request.model) == "openai" else self.other

    def _clients(self) -> tuple[LLMClient, ...]:
        return (self.openai, self.other)


class WireRouter(_Router):
    """Requests that came through a gateway dialect whose API the upstream speaks go to
    that API's native client (lossless, see ``_wire``); every other request to
    ``default``."""

    def __init__(self, default: LLMClient, natives: dict[str, LLMClient]) -> None:
        self.default = default
        self.natives = natives

    def _pick(self, request: Request) -> LLMClient:
        wire = wire_attr(request)
        api = getattr(wire, "api", None)
        if api is not None:
            native = self.natives.get(api)
            if native is not None:
                return native
        return self.default

    def _clients(self) -> tuple[LLMClient, ...]:
        return (self.default, *self.natives.values())


def _default_client(upstream: Any, key: str) -> LLMClient:
    """The client ``gateway.upstream.client`` asks for. ``auto`` (the default): with an
    OpenAI-compatible ``api_base``, OpenAI-protocol models go through the lean HTTP
    client and the rest through litellm; with no ``api_base``, litellm alone."""
    from luthien_lab.clients import LiteLLMClient

    defaults: dict[str, Any] = {"max_retries": 0}
    if upstream.api_base:
        defaults["api_base"] = upstream.api_base
        defaults["api_key"] = key or "sk-none"
    if upstream.client == "litellm":
        return LiteLLMClient(**defaults)
    if not upstream.api_base:
        if upstream.client == "http":
            raise ConfigError("gateway.upstream.client 'http' needs gateway.upstream.api_base")
        return LiteLLMClient(**defaults)
    lean = OpenAIHTTPClient(upstream.api_base, key)
    if upstream.client == "http":
        return lean
    if upstream.provider not in (None, "openai"):
        return LiteLLMClient(**defaults)
    return ProtocolRouter(lean, LiteLLMClient(**defaults))


def build_upstream(upstream: Any, key: str) -> tuple[LLMClient, dict[str, Any]]:
    """The gateway's upstream client for its settings, and the APIs it serves natively.

    Anthropic Messages requests go natively to an Anthropic upstream: one named by
    ``provider: anthropic`` (with its ``api_base``), or, with no ``api_base``, the
    local provider offline and Anthropic's API with a key. OpenAI Responses requests go
    natively per ``responses_api`` (below); otherwise they are translated to chat."""
    default = _default_client(upstream, key)
    natives: dict[str, LLMClient] = {}
    lean = default.openai if isinstance(default, ProtocolRouter) else default
    if isinstance(lean, OpenAIHTTPClient):
        natives["chat"] = lean
    if upstream.provider == "anthropic" or not upstream.api_base:
        from luthien_lab.gateway._anthropic_upstream import AnthropicNativeClient

        base = upstream.api_base if upstream.provider == "anthropic" else None
        natives["anthropic"] = AnthropicNativeClient(base, key or None)
    mode = getattr(upstream, "responses_api", "auto")
    if mode == "native" or (mode == "auto" and not upstream.api_base):
        # OpenAI Responses requests go natively to a Responses upstream: ``api_base``'s
        # ``/responses``, or with none the local provider offline and OpenAI's API.
        from luthien_lab.gateway._responses_upstream import ResponsesNativeClient

        natives["responses"] = ResponsesNativeClient(upstream.api_base, key or None)
    if not natives:
        return default, {}
    return WireRouter(default, natives), natives
