"""``POST /v1/messages``: the Anthropic Messages API on the gateway.

An Anthropic request is converted to the OpenAI-format :class:`~luthien_lab.Request`
the orchestrator runs (same policy, same upstream client as ``/v1/chat/completions``);
the answer is converted back (``_anthropic_stream``). Errors use Anthropic's format
``{"type": "error", "error": {"type", "message"}}``; an error after the stream
started is sent as an ``event: error`` SSE event.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from pydantic import ValidationError

from luthien_lab.config import protocol_for_model
from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._anthropic_stream import (
    AnthropicStreamConverter,
    sse_event,
    to_anthropic_message,
)
from luthien_lab.gateway._errors import GatewayError, classify
from luthien_lab.gateway._sse import SSEResponse, first_chunk
from luthien_lab.request import Request

if TYPE_CHECKING:
    from fastapi import FastAPI

    from luthien_lab.gateway._app import Gateway

__all__ = ["ANTHROPIC_REQUEST_FIELDS", "add_messages_route", "anthropic_error", "to_request"]

_log = logging.getLogger("luthien_lab.gateway")

# What a client may send (as with the OpenAI route, anything else is refused: litellm
# would treat unknown fields as instructions). Top-level ``cache_control`` (automatic
# prompt caching) is accepted and dropped: it changes cost, never the answer.
ANTHROPIC_REQUEST_FIELDS = frozenset(
    {
        "model", "max_tokens", "system", "messages", "tools", "tool_choice", "stream",
        "temperature", "top_p", "top_k", "stop_sequences", "metadata", "thinking",
        "cache_control",
    }
)  # fmt: skip

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error")


# ----- errors -----


def anthropic_error(error: BaseException) -> tuple[int, dict[str, Any]]:
    """``(status, body)`` of Anthropic's error format for any pipeline exception."""
    failure = classify(error)
    status = failure.status
    if isinstance(error, UpstreamError) and error.status_code in (503, 529):
        status = 529  # Anthropic's "overloaded": clients retry it with backoff
    kind = _ERROR_TYPES.get(status, "api_error")
    return status, {"type": "error", "error": {"type": kind, "message": failure.message}}


# ----- request conversion -----


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{where}.text: a text block needs a string 'text'")
    return text


def _text_part(block: dict[str, Any], where: str, keep_cache: bool) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": _text(block, where)}
    # cache_control means something only to Anthropic upstreams; OpenAI ones refuse it.
    if keep_cache and block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    url: Any
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = source.get("url")
    else:
        raise _bad(f"{where}.source: image source type must be 'base64' or 'url'")
    return {"type": "image_url", "image_url": {"url": url}}


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise _bad(f"{where}: content must be a string or a list of content blocks")
    return content


def _tool_result_text(block: dict[str, Any], where: str) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(_blocks(content, f"{where}.content")):
        if part.get("type") != "text":
            raise _bad(
                f"{where}.content.{i}: only text is supported inside a tool_result "
                f"(got {part.get('type')!r})"
            )
        parts.append(_text(part, f"{where}.content.{i}"))
    return "\n".join(parts)


def _user_messages(content: Any, where: str, keep_cache: bool) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(_blocks(content, where)):
        kind, at = block.get("type"), f"{where}.{i}"
        if kind == "tool_result":
            tool_id = block.get("tool_use_id")
            if not isinstance(tool_id, str) or not tool_id:
                raise _bad(f"{at}.tool_use_id: a tool_result needs the id of its tool_use")
            # OpenAI tool messages must directly follow the assistant's tool calls, as
            # Anthropic's tool_result blocks lead the user turn.
            result = {"role": "tool", "tool_call_id": tool_id}
            out.append(result | {"content": _tool_result_text(block, at)})
        elif kind == "text":
            parts.append(_text_part(block, at, keep_cache))
        elif kind == "image":
            parts.append(_image_part(block, at))
        else:
            raise _bad(f"{at}.type: unsupported user content block {kind!r} (text, image, "
                       "tool_result)")  # fmt: skip
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(_blocks(content, where)):
        kind, at = block.get("type"), f"{where}.{i}"
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            if not block.get("id") or not block.get("name"):
                raise _bad(f"{at}: a tool_use block needs 'id' and 'name'")
            arguments = json.dumps(block.get("input") or {})
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block["id"], "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            # litellm sends thinking_blocks back to Anthropic with their signatures,
            # which Anthropic requires for thinking across tool use.
            thinking.append(block)
        else:
            raise _bad(f"{at}.type: unsupported assistant content block {kind!r} (text, "
                       "tool_use, thinking)")  # fmt: skip
    message: dict[str, Any] = {"role": "assistant"}
    if texts or not calls:
        message["content"] = "\n".join(texts)
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise _bad(f"{where}: a tool needs a 'name'")
    if tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise _bad(
            f"{where}: only client tools with an 'input_schema' are supported "
            f"(got type {tool.get('type')!r}); server tools cannot be routed"
        )
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice: use {'type': 'auto' | 'any' | 'none'} or "
                   "{'type': 'tool', 'name': ...}")  # fmt: skip
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _thinking(thinking: Any, model: str, out: dict[str, Any]) -> None:
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        raise _bad("thinking: use {'type': 'enabled', 'budget_tokens': N} or {'type': 'disabled'}")
    if thinking["type"] == "disabled":
        return
    if protocol_for_model(model) == "anthropic":
        out["thinking"] = thinking
        return
    # OpenAI-protocol models take an effort level, not a token budget.
    budget = thinking.get("budget_tokens") or 0
    out["reasoning_effort"] = "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def upstream_model(gateway: Gateway, model: str) -> str:
    """The model name sent upstream: the same mapping as the OpenAI route."""
    model = gateway.model_map.get(model, model)
    if gateway.prefix and "/" not in model:
        model = f"{gateway.prefix}/{model}"
    return model


def to_request(body: dict[str, Any], gateway: Gateway) -> Request:
    """The OpenAI-format request for an Anthropic Messages ``body`` (400 on a bad one)."""
    unknown = sorted(set(body) - ANTHROPIC_REQUEST_FIELDS)
    if unknown:
        raise _bad(f"{', '.join(unknown)}: Extra inputs are not permitted")
    for field, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if not isinstance(body.get(field), kind) or isinstance(body.get(field), bool):
            raise _bad(f"{field}: Field required ({kind.__name__})")
    model = body["model"]
    if not model:
        raise _bad("model: must not be empty")
    target = upstream_model(gateway, model)
    keep_cache = protocol_for_model(target) == "anthropic"
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        else:
            parts = [
                _text_part(block, f"system.{i}", keep_cache)
                for i, block in enumerate(_blocks(system, "system"))
            ]
            messages.append({"role": "system", "content": parts})
    for i, message in enumerate(body["messages"]):
        where = f"messages.{i}"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            messages.extend(_user_messages(message.get("content"), f"{where}.content", keep_cache))
        elif role == "assistant":
            messages.append(_assistant_message(message.get("content"), f"{where}.content"))
        else:
            raise _bad(f"{where}.role: must be 'user' or 'assistant', not {role!r}")
    out: dict[str, Any] = {"model": target, "messages": messages}
    out["max_tokens"] = body["max_tokens"]
    out["stream"] = bool(body.get("stream"))
    for field in ("temperature", "top_p", "top_k"):
        if body.get(field) is not None:
            out[field] = body[field]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        out["user"] = user_id  # litellm sends it back as Anthropic's metadata.user_id
    if body.get("tools"):
        out["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], out)
    if body.get("thinking") is not None:
        _thinking(body["thinking"], target, out)
    try:
        return Request(**out)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise _bad(f"{where}: {problem['msg']}") from None


# ----- the route -----


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(obj).encode(), status_code=status, media_type="application/json",
        headers=headers,
    )  # fmt: skip


async def _events(
    chunks: AsyncIterator[Any], first: Any, converter: AnthropicStreamConverter
) -> AsyncIterator[bytes]:
    try:
        for event in converter.start():
            yield sse_event(event)
        if first is not None:
            for event in converter.feed(first):
                yield sse_event(event)
            async for chunk in chunks:
                for event in converter.feed(chunk):
                    yield sse_event(event)
        for event in converter.finish():
            yield sse_event(event)
    except Exception as error:
        _status, body = anthropic_error(error)
        _log.warning("stream failed after it started: %s", body["error"]["message"])
        yield sse_event(body)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _stream(gateway: Gateway, request: Request, tid: str, model: str) -> Response:
    chunks = gateway.orchestrator.process_streaming_response(request, tid)
    first = await first_chunk(chunks)
    converter = AnthropicStreamConverter(f"msg_{tid}", model)
    headers = [(b"x-luthien-transaction-id", tid.encode())]
    return SSEResponse(_events(chunks, first, converter), headers)


async def handle_messages(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/messages``."""
    try:
        gateway.check_key(http)
        body = await gateway.read_body(http)
        request = to_request(body, gateway)
        tid = uuid.uuid4().hex
        if request.stream:
            return await _stream(gateway, request, tid, body["model"])
        response = await gateway.orchestrator.process_full_response(request, tid)
        message = to_anthropic_message(response, f"msg_{tid}", body["model"])
        return _json(message, headers={"x-luthien-transaction-id": tid})
    except Exception as error:
        status, payload = anthropic_error(error)
        if status >= 500:
            _log.warning("request failed: %s", payload["error"]["message"])
        return _json(payload, status)


def add_messages_route(app: FastAPI, gateway: Gateway) -> None:
    """Register ``POST /v1/messages`` on ``app``."""

    async def messages(http: HTTPRequest) -> Response:
        return await handle_messages(gateway, http)

    app.add_api_route("/v1/messages", messages, methods=["POST"])
