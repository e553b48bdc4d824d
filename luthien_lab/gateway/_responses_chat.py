"""A Responses request as a Chat Completions request, for upstreams that speak only that.

The translation is litellm's own (``LiteLLMCompletionResponsesConfig``, the bridge its
``litellm.responses()`` uses for chat-only providers): it already covers the corners
of the Responses input (reasoning items, consecutive function calls, tool outputs as
parts, custom and namespace tools, ``text.format`` -> ``response_format``, reasoning
effort, tool choices in their many shapes), and importing it costs nothing beyond the
litellm import the gateway pays anyway (litellm imports it at startup). It runs before
the policy, so the policy sees (and edits) the chat request that is sent; nothing has
to be translated back.

Around it, this module owns what litellm leaves to its caller: refusing what a chat
upstream cannot serve (``previous_response_id``, stored conversations, background
runs, prompt templates: a 400 naming the field), refusing fields it has never heard of
(as OpenAI does), and keeping litellm's own routing hints (``custom_llm_provider``,
``extra_headers``) out of what is sent.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.gateway._responses_checks import bad
from luthien_lab.gateway._responses_request import upstream_name
from luthien_lab.provider import protocol_for_model

__all__ = ["chat_request"]

# Fields of the Responses API that need the server to keep state, which a chat upstream
# does not: refused with a 400 naming the field.
_STATEFUL = {
    "previous_response_id": "previous_response_id continues a conversation the upstream "
    "stored, and this gateway's upstream speaks only Chat Completions, which stores none: "
    "send the whole conversation in 'input' instead (or use a Responses-capable upstream: "
    "gateway.upstream.responses_api: native)",
    "conversation": "conversation needs a Responses-capable upstream that stores "
    "conversations; send the whole conversation in 'input' instead",
    "prompt": "prompt templates are stored by a Responses-capable upstream; this gateway's "
    "upstream speaks only Chat Completions",
}
# Fields with no Chat Completions meaning that change nothing about the answer (storage,
# what to echo, cache and tier hints): accepted, not sent.
_DROPPED = frozenset(
    {"store", "include", "metadata", "truncation", "background", "top_logprobs",
     "max_tool_calls", "stream_options", "client_metadata"}
)  # fmt: skip
_TRANSLATED = frozenset(
    {"model", "input", "instructions", "stream", "tools", "tool_choice", "parallel_tool_calls",
     "max_output_tokens", "temperature", "top_p", "text", "reasoning", "user",
     "safety_identifier", "prompt_cache_key", "service_tier", *_STATEFUL}
)  # fmt: skip
# What a chat request may carry: litellm's routing hints and fields meant for other
# providers are never sent.
_SENT = frozenset(
    {"model", "messages", "stream", "stream_options", "tools", "tool_choice",
     "parallel_tool_calls", "temperature", "top_p", "max_tokens", "user", "response_format",
     "reasoning_effort", "web_search_options", "prompt_cache_key", "verbosity",
     "safety_identifier", "service_tier"}
)  # fmt: skip


def _plain(value: Any) -> Any:
    """litellm's messages mix dicts and pydantic objects: plain JSON values."""
    return json.loads(json.dumps(value, default=lambda o: o.model_dump(exclude_none=True)))


def _clean_messages(messages: list[dict[str, Any]], keep_thinking: bool) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if v is not None or k == "content"}
        if not keep_thinking:
            # An OpenAI-protocol upstream gets the request as is: no litellm-only fields.
            message.pop("thinking_blocks", None)
            message.pop("reasoning_content", None)
        for call in message.get("tool_calls") or []:
            call.pop("index", None)
        out.append(message)
    return out


def chat_request(body: dict[str, Any], model: str, prefix: str | None) -> dict[str, Any]:
    """The Chat Completions request (the policy's view) for a Responses ``body``, with
    ``model`` already mapped."""
    for name, message in _STATEFUL.items():
        if body.get(name) is not None:
            raise bad(message, name, "unsupported_parameter")
    if body.get("background") is True:
        raise bad("background runs need a Responses-capable upstream", "background")
    unknown = sorted(set(body) - _TRANSLATED - _DROPPED)
    if unknown:
        raise bad(
            f"{unknown[0]}: this field has no equivalent on a Chat Completions upstream",
            unknown[0],
            "unknown_parameter",
        )
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    openai = protocol_for_model(model) == "openai"
    params = {k: v for k, v in body.items() if k not in ("model", "input", "stream")}
    try:
        out = LiteLLMCompletionResponsesConfig.transform_responses_api_request_to_chat_completion_request(
            model=upstream_name(model, prefix) if openai else model,
            input=body.get("input") or [],
            responses_api_request=params,  # type: ignore[arg-type]
            custom_llm_provider="openai" if openai else None,
            stream=body.get("stream") is True,
        )
    except Exception as error:  # litellm's BadRequestError, or a shape it cannot read
        raise bad(f"input: {getattr(error, 'message', None) or error}", "input") from None
    out = {k: v for k, v in _plain(out).items() if k in _SENT}
    out["model"] = model
    out["messages"] = _clean_messages(out.get("messages") or [], keep_thinking=not openai)
    if not out["messages"]:
        raise bad("input: a Chat Completions upstream needs at least one message", "input")
    text = body.get("text")
    if isinstance(text, dict) and text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    if body.get("prompt_cache_key") is not None:
        out["prompt_cache_key"] = body["prompt_cache_key"]
    if body.get("stream") is not True:
        out.pop("stream_options", None)
    return out
