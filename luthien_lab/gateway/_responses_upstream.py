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

import json
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.clients import LLMClient
from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._native_http import SessionPool, fail, sse_frames
from luthien_lab.gateway._responses_object import CALL_ITEMS, chat_usage, finish_for
from luthien_lab.gateway._responses_request import native_body
from luthien_lab.gateway._wire import wire_of

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


class ResponsesNativeClient(LLMClient):
    """Posts to ``{base}/responses``. ``api_base`` None: the local provider when
    :func:`luthien_lab.config.target_is_local` says so, else OpenAI's API.
    ``api_key`` None: ``$OPENAI_API_KEY``, else the client's own key."""

    def __init__(self, api_base: str | None = None, api_key: str | None = None) -> None:
        self.api_base = api_base.rstrip("/") if api_base else None
        self.api_key = api_key
        self._pool = SessionPool()
        # Imported now (seconds), not on the first request.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from litellm.types.utils import ModelResponse, ModelResponseStream

        self._chunk = ModelResponseStream
        self._response = ModelResponse

    def _target(self, request: Request) -> tuple[str, str | None]:
        if self.api_base:
            return self.api_base, self.api_key
        from luthien_lab.config import target_is_local

        if target_is_local(request.model):
            from luthien_lab.config import shared_local_provider

            return shared_local_provider().openai_base, "sk-local"
        return OPENAI_API, self.api_key or os.environ.get("OPENAI_API_KEY")

    def _call(self, request: Request, stream: bool) -> tuple[str, dict[str, str], bytes]:
        wire = wire_of(request, "responses")
        if wire is None:
            raise TypeError("ResponsesNativeClient serves requests from the /v1/responses dialect")
        final = request.model_dump(exclude_none=False)
        body = native_body(wire, final, wire.extra.get("prefix"))
        same = (
            not wire.changed_fields(final)
            and body["model"] == wire.body["model"]
            and (wire.body.get("stream") is True) == stream
        )
        if stream or body.get("stream") is not None:
            body["stream"] = stream
        base, key = self._target(request)
        headers = {"content-type": "application/json", **wire.headers}
        if key:
            headers["authorization"] = f"Bearer {key}"
        # Nothing changed: the client's own bytes, not a re-encoding of them.
        data = (
            wire.raw
            if same and wire.raw is not None
            else json.dumps(body, ensure_ascii=False).encode()
        )
        return f"{base}/responses", headers, data

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        url, headers, data = self._call(request, stream=True)
        wire = wire_of(request, "responses")
        assert wire is not None
        normalizer = _Normalizer(self._chunk, request.model)
        session = self._pool.session()
        async with session.post(url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await fail(response, _PROVIDER)
            ended = False
            async for event, raw in sse_frames(response, _PROVIDER):
                kind = event.get("type")
                if kind in ("error", "response.failed"):
                    raise ResponsesStreamFailed(event)
                ended = ended or kind in ("response.completed", "response.incomplete")
                chunk = normalizer.chunk_for(event)
                wire.register(chunk, event, raw)
                yield chunk
            if not ended:
                raise UpstreamError(
                    "the provider closed the stream before response.completed", provider=_PROVIDER
                )

    async def complete(self, request: Request) -> Any:
        url, headers, data = self._call(request, stream=False)
        wire = wire_of(request, "responses")
        assert wire is not None
        session = self._pool.session()
        async with session.post(url, data=data, headers=headers) as response:
            if response.status >= 400:
                raise await fail(response, _PROVIDER)
            raw = await response.read()
        try:
            obj = json.loads(raw)
        except ValueError as error:
            raise UpstreamError(
                f"malformed JSON from the provider: {error}", provider=_PROVIDER
            ) from error
        if not isinstance(obj, dict):
            raise UpstreamError("the provider's response is not a JSON object", provider=_PROVIDER)
        result = to_model_response(self._response, obj, request.model)
        wire.response = (result, obj)
        wire.extra["response_raw"] = raw
        return result

    def provider_for(self, request: Request) -> str:
        return _PROVIDER

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Normalizer:
    """One stream's native events -> normalized chunks (one chunk per event)."""

    __slots__ = ("created", "factory", "id", "model", "tools")

    def __init__(self, factory: Any, model: str) -> None:
        self.factory = factory
        self.id = "resp_unknown"
        self.model = model
        self.created = int(time.time())
        self.tools: dict[int, int] = {}  # the upstream's output_index -> tool call index

    def _make(self, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Any:
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

    def chunk_for(self, event: dict[str, Any]) -> Any:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return self._make({"content": event.get("delta") or ""})
        if kind == "response.reasoning_summary_text.delta":
            return self._make({"reasoning_content": event.get("delta") or ""})
        if kind in (
            "response.function_call_arguments.delta",
            "response.custom_tool_call_input.delta",
        ):
            position = self.tools.get(event.get("output_index", -1))
            if position is None:
                return self._make({})
            call = {"index": position, "function": {"arguments": event.get("delta") or ""}}
            return self._make({"tool_calls": [call]})
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            field = CALL_ITEMS.get(item.get("type", ""))
            if field is None:
                return self._make({})
            position = self.tools[event.get("output_index", -1)] = len(self.tools)
            function = {"name": item.get("name"), "arguments": item.get(field) or ""}
            call = {"index": position, "id": item.get("call_id"), "type": "function"}
            return self._make({"tool_calls": [{**call, "function": function}]})
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            return self._make({}, finish_for(response), chat_usage(response.get("usage")))
        if kind == "response.created":
            self.id = (event.get("response") or {}).get("id") or self.id
            return self._make({"role": "assistant", "content": ""})
        return self._make({})


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
