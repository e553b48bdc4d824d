"""``AnthropicNativeClient``: the Messages API upstream, lossless.

Used for requests that came through the gateway's ``/v1/messages`` dialect and go to
an Anthropic upstream. It sends the body :func:`native_body` builds (the client's own
fields wherever the policy changed nothing) with the client's ``anthropic-*``
headers, and turns each SSE event into one normalized chunk, registering the event
with the transaction's :class:`WireContext` so that the dialect can send it on
unchanged. Content a policy cannot see as text (server tools, citations, redacted
thinking) makes chunks with an empty delta: it is passed through, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._anthropic_format import finish_reason_for
from luthien_lab.gateway._anthropic_request import native_body
from luthien_lab.gateway._native_client import ChunkMaker, NativeClient

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["ANTHROPIC_API", "AnthropicNativeClient", "to_model_response"]

ANTHROPIC_API = "https://api.anthropic.com"
_PROVIDER = "anthropic-native"
_VERSION = "2023-06-01"


class AnthropicNativeClient(NativeClient):
    """Posts to ``{base}/v1/messages``: the local provider offline, Anthropic's API
    with a key, or the configured ``api_base``."""

    api = "anthropic"
    provider = _PROVIDER
    remote_base = ANTHROPIC_API
    key_env = "ANTHROPIC_API_KEY"

    def local_base(self, provider: Any) -> str:
        return str(provider.anthropic_base)

    def _headers(self, forwarded: dict[str, str], key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": _VERSION}
        headers.update(forwarded)
        if key:
            headers.pop("authorization", None)
            headers["x-api-key"] = key
        return headers

    async def forward_path(
        self, method: str, path: str, model: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, bytes, str]:
        """A request that is not a transaction (``count_tokens``, ``models``), sent to
        the upstream ``model`` routes to, with the client's forwarded headers."""
        base, key = self.target(model or "claude")
        return await self.forward(method, base + path, self._headers(headers, key), body)

    def _call(self, request: Request, stream: bool) -> tuple[str, dict[str, str], bytes]:
        wire = self.wire(request)
        body = native_body(wire, request.model_dump(exclude_none=False))
        same = (
            not wire.extra["changed"]
            and body["model"] == wire.body["model"]
            and (wire.body.get("stream") is True) == stream
        )
        if stream:
            body["stream"] = True
        base, key = self.target(request.model)
        query = wire.extra.get("query") or ""
        url = f"{base}/v1/messages" + (f"?{query}" if query else "")
        return url, self._headers(wire.headers, key), self.payload(wire, body, same)

    def stream(self, request: Request) -> AsyncIterator[Any]:
        url, headers, data = self._call(request, stream=True)
        normalizer = _Normalizer(ChunkMaker(self._chunk, request.model, "msg_unknown"))
        return self.post_stream(self.wire(request), url, headers, data, normalizer.chunk_for)

    async def complete(self, request: Request) -> Any:
        url, headers, data = self._call(request, stream=False)
        message, _raw = await self.post_json(url, headers, data)
        result = to_model_response(self._response, message, request.model)
        self.wire(request).response = (result, message)
        return result


def _usage(usage: dict[str, Any] | None, prompt: int = 0) -> dict[str, Any]:
    usage = usage or {}
    prompt = prompt or int(usage.get("input_tokens") or 0) + int(
        usage.get("cache_read_input_tokens") or 0
    ) + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _Normalizer:
    """One stream's native events -> normalized chunks (one chunk per event)."""

    __slots__ = ("kinds", "maker", "prompt", "tool_of", "tools")

    def __init__(self, maker: ChunkMaker) -> None:
        self.maker = maker
        self.prompt = 0
        self.kinds: dict[int, str] = {}
        self.tool_of: dict[int, int] = {}
        self.tools = 0

    def chunk_for(self, event: dict[str, Any]) -> Any:
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") or {}
            raise UpstreamError(
                f"the provider sent an error mid-stream: {error.get('type')}: "
                f"{error.get('message')}",
                provider=_PROVIDER,
                status_code=529 if error.get("type") == "overloaded_error" else 502,
            )
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_start":
            return self._start(event)
        if kind == "message_start":
            message = event.get("message") or {}
            self.maker.id = message.get("id") or self.maker.id
            self.prompt = _usage(message.get("usage"))["prompt_tokens"]
            return self.maker.make({"role": "assistant", "content": ""})
        if kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            return self.maker.make(
                {}, finish_reason_for(stop), _usage(event.get("usage"), self.prompt)
            )
        if kind == "message_stop":
            return self.maker.trailer()
        return self.maker.make({})  # content_block_stop, ping, and events to come

    def _start(self, event: dict[str, Any]) -> Any:
        block = event.get("content_block") or {}
        index = event.get("index", -1)
        kind = block.get("type", "")
        self.kinds[index] = kind
        if kind == "tool_use":
            position = self.tool_of[index] = self.tools
            self.tools += 1
            arguments = json.dumps(block["input"]) if block.get("input") else ""
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": arguments},
            }
            return self.maker.make({"tool_calls": [call]})
        if kind == "text" and block.get("text"):
            return self.maker.make({"content": block["text"]})
        if kind == "thinking" and block.get("thinking"):
            return self.maker.make({"reasoning_content": block["thinking"]})
        return self.maker.make({})

    def _delta(self, event: dict[str, Any]) -> Any:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self.maker.make({"content": delta.get("text", "")})
        if kind == "thinking_delta":
            return self.maker.make({"reasoning_content": delta.get("thinking", "")})
        if kind == "signature_delta":
            block = {"type": "thinking", "thinking": "", "signature": delta.get("signature")}
            return self.maker.make({"thinking_blocks": [block]})
        index = event.get("index", -1)
        if kind == "input_json_delta" and index in self.tool_of:
            call = {
                "index": self.tool_of[index],
                "function": {"arguments": delta.get("partial_json", "")},
            }
            return self.maker.make({"tool_calls": [call]})
        return self.maker.make({})  # server tool input, citations: not text a policy reads


def to_model_response(factory: Any, message: dict[str, Any], model: str) -> Any:
    """A litellm ``ModelResponse`` for an Anthropic ``message`` object."""
    text: list[str] = []
    thinking: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind in ("thinking", "redacted_thinking"):
            thinking_blocks.append(block)
            if kind == "thinking":
                thinking.append(block.get("thinking", ""))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    body: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        body["tool_calls"] = calls
    if thinking_blocks:
        body["thinking_blocks"] = thinking_blocks
        body["reasoning_content"] = "".join(thinking)
    finish = finish_reason_for(message.get("stop_reason")) or "stop"
    return factory(
        id=message.get("id"),
        model=model,
        object="chat.completion",
        choices=[{"index": 0, "message": body, "finish_reason": finish}],
        usage=_usage(message.get("usage")),
    )
