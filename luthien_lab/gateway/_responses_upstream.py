"""``ResponsesNativeClient``: the OpenAI Responses API upstream, lossless.

Used for requests that came through the gateway's ``/v1/responses`` dialect and go to a
Responses-capable upstream (OpenAI's API, the local provider, a compatible server). It
sends the body :func:`native_body` builds (the client's own fields wherever the policy
changed nothing) with the client's ``openai-*`` headers, and turns each SSE event into
one normalized chunk, registering the event with the transaction's
:class:`WireContext` so that the dialect can send it on unchanged:

- ``response.output_text.delta`` -> ``content``; ``response.reasoning_summary_text.delta``
  -> ``reasoning_content``;
- a function call (or custom tool call) item -> ``tool_calls`` with one index per call:
  its head (id, name) when the item is added, then its argument (input) deltas;
- ``response.completed`` / ``response.incomplete`` -> the finish reason and usage;
- every other event -> a chunk with an empty delta: passed through, never dropped.

``previous_response_id`` and every other field go upstream as they are: the upstream
keeps the conversation state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._native_client import ChunkMaker, NativeClient
from luthien_lab.gateway._responses_object import CALL_ITEMS, chat_usage, finish_for
from luthien_lab.gateway._responses_request import native_body

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["OPENAI_API", "ResponsesNativeClient", "ResponsesStreamFailed", "to_model_response"]

OPENAI_API = "https://api.openai.com/v1"
_PROVIDER = "openai-responses"


class ResponsesStreamFailed(UpstreamError):
    """The upstream ended its stream with ``error`` or ``response.failed``; ``event`` is
    that event (the dialect tells the client what the upstream said)."""

    def __init__(self, event: dict[str, Any]) -> None:
        error = event.get("error") or (event.get("response") or {}).get("error") or event
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        status = 429 if code == "rate_limit_exceeded" else 502
        super().__init__(
            f"the provider sent {event.get('type')} mid-stream: {code}: {message}",
            provider=_PROVIDER,
            status_code=status,
        )
        self.event = event


class ResponsesNativeClient(NativeClient):
    """Posts to ``{base}/responses``: the local provider offline, OpenAI's API with a
    key, or the configured ``api_base``."""

    api = "responses"
    provider = _PROVIDER
    remote_base = OPENAI_API
    key_env = "OPENAI_API_KEY"

    def local_base(self, provider: Any) -> str:
        return str(provider.openai_base)

    def _call(self, request: Request, stream: bool) -> tuple[str, dict[str, str], bytes]:
        wire = self.wire(request)
        final = request.model_dump(exclude_none=False)
        body = native_body(wire, final, wire.extra.get("prefix"))
        same = (
            not wire.changed_fields(final)
            and body["model"] == wire.body["model"]
            and (wire.body.get("stream") is True) == stream
        )
        if stream or body.get("stream") is not None:
            body["stream"] = stream
        base, key = self.target(request.model)
        headers = {"content-type": "application/json", **wire.headers}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return f"{base}/responses", headers, self.payload(wire, body, same)

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        url, headers, data = self._call(request, stream=True)
        normalizer = _Normalizer(ChunkMaker(self._chunk, request.model, "resp_unknown"))
        async for chunk in self.post_stream(
            self.wire(request), url, headers, data, normalizer.chunk_for
        ):
            yield chunk
        if not normalizer.ended:
            raise UpstreamError(
                "the provider closed the stream before response.completed", provider=_PROVIDER
            )

    async def complete(self, request: Request) -> Any:
        url, headers, data = self._call(request, stream=False)
        obj, raw = await self.post_json(url, headers, data)
        result = to_model_response(self._response, obj, request.model)
        wire = self.wire(request)
        wire.response = (result, obj)
        wire.extra["response_raw"] = raw
        return result


class _Normalizer:
    """One stream's native events -> normalized chunks (one chunk per event)."""

    __slots__ = ("ended", "maker", "tools")

    def __init__(self, maker: ChunkMaker) -> None:
        self.maker = maker
        self.ended = False
        self.tools: dict[int, int] = {}  # the upstream's output_index -> tool call index

    def chunk_for(self, event: dict[str, Any]) -> Any:
        kind = event.get("type")
        if kind in ("error", "response.failed"):
            raise ResponsesStreamFailed(event)
        self.ended = self.ended or kind in ("response.completed", "response.incomplete")
        if kind == "response.output_text.delta":
            return self.maker.make({"content": event.get("delta") or ""})
        if kind == "response.reasoning_summary_text.delta":
            return self.maker.make({"reasoning_content": event.get("delta") or ""})
        if kind in (
            "response.function_call_arguments.delta",
            "response.custom_tool_call_input.delta",
        ):
            position = self.tools.get(event.get("output_index", -1))
            if position is None:
                return self.maker.make({})
            call = {"index": position, "function": {"arguments": event.get("delta") or ""}}
            return self.maker.make({"tool_calls": [call]})
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            field = CALL_ITEMS.get(item.get("type", ""))
            if field is None:
                return self.maker.make({})
            position = self.tools[event.get("output_index", -1)] = len(self.tools)
            function = {"name": item.get("name"), "arguments": item.get(field) or ""}
            call = {"index": position, "id": item.get("call_id"), "type": "function"}
            return self.maker.make({"tool_calls": [{**call, "function": function}]})
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            return self.maker.make({}, finish_for(response), chat_usage(response.get("usage")))
        if kind == "response.created":
            self.maker.id = (event.get("response") or {}).get("id") or self.maker.id
            return self.maker.make({"role": "assistant", "content": ""})
        return self.maker.make({})


def to_model_response(factory: Any, obj: dict[str, Any], model: str) -> Any:
    """A litellm ``ModelResponse`` for a Responses API response object."""
    texts: list[str] = []
    summaries: list[str] = []
    calls: list[dict[str, Any]] = []
    has_message = False
    for item in obj.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            has_message = True
            texts.extend(
                p.get("text", "")
                for p in item.get("content") or []
                if p.get("type") == "output_text"
            )
        elif kind == "reasoning":
            summaries.extend(p.get("text", "") for p in item.get("summary") or [])
        elif kind in CALL_ITEMS:
            function = {"name": item.get("name"), "arguments": item.get(CALL_ITEMS[kind]) or ""}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if has_message else None,
    }
    if calls:
        message["tool_calls"] = calls
    if summaries:
        message["reasoning_content"] = "\n\n".join(summaries)
    return factory(
        id=obj.get("id"),
        model=model,
        object="chat.completion",
        created=obj.get("created_at") or int(time.time()),
        choices=[{"index": 0, "message": message, "finish_reason": finish_for(obj)}],
        usage=chat_usage(obj.get("usage")),
    )
