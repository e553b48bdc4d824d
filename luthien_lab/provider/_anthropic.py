"""Anthropic Messages wire format for a :class:`ScriptedResponse`, and the bodies of the
Messages API's side endpoints (``count_tokens``, ``models``).

The shapes follow the anthropic SDK's types (``anthropic.types``): the tests parse every
stream with ``messages.stream(...).get_final_message()``, so a shape the SDK would not
accumulate shows up there.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.provider._frames import Frame, sse
from luthien_lab.provider._script import ScriptedResponse, split_text

__all__ = [
    "count_tokens",
    "error_body",
    "model_info",
    "models_page",
    "render_json",
    "render_stream",
]

# an epoch-like, fixed release date: model listings are deterministic
_CREATED_AT = "2025-01-01T00:00:00Z"


def _ev(kind: str, **payload: Any) -> bytes:
    return sse({"type": kind, **payload}, event=kind)


def _server_tool_use(script: ScriptedResponse) -> dict[str, int] | None:
    # the SDK's ServerToolUsage requires both counters
    if script.web_search is None:
        return None
    return {"web_search_requests": 1, "web_fetch_requests": 0}


def _content_events(script: ScriptedResponse) -> list[Frame]:
    """The ``content_block_*`` events of ``script``, in wire order, without pings."""
    frames: list[Frame] = []
    index = 0

    def block(
        start: dict[str, Any],
        deltas: list[dict[str, Any]],
        *,
        whole: bool,
        tail: dict[str, Any] | None = None,
    ) -> None:
        # whole: the start event carries content (a complete block, or a tool's name);
        # tail: a last delta that is not content (a signature), so faults skip it
        nonlocal index
        frames.append(Frame(_ev("content_block_start", index=index, content_block=start), whole))
        for delta in deltas:
            frames.append(Frame(_ev("content_block_delta", index=index, delta=delta), True))
        if tail is not None:
            frames.append(Frame(_ev("content_block_delta", index=index, delta=tail)))
        frames.append(Frame(_ev("content_block_stop", index=index)))
        index += 1

    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    thinking = script.thinking_parts()
    if thinking:
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": part} for part in thinking]
        sig = {"type": "signature_delta", "signature": script.thinking_signature()}
        block(start, deltas, whole=False, tail=sig)
    for data in script.redacted_thinking:
        block({"type": "redacted_thinking", "data": data}, [], whole=True)
    search = script.web_search
    if search is not None:
        start = {
            "type": "server_tool_use",
            "id": search.tool_use_id(),
            "name": "web_search",
            "input": {},
        }
        fragments = [
            {"type": "input_json_delta", "partial_json": frag}
            for frag in split_text(search.input_json(), script.chunk_size)
        ]
        block(start, fragments, whole=False)
        result = {
            "type": "web_search_tool_result",
            "tool_use_id": search.tool_use_id(),
            "content": [r.block() for r in search.results],
        }
        block(result, [], whole=True)
    text = script.text_parts() + script.refusal_parts()
    if text or script.citations:
        start = {"type": "text", "text": ""}
        deltas = []
        if script.citations:
            start["citations"] = []
            deltas += [{"type": "citations_delta", "citation": c.block()} for c in script.citations]
        deltas += [{"type": "text_delta", "text": part} for part in text]
        block(start, deltas, whole=False)
    for i, call in enumerate(script.tool_calls):
        start = {
            "type": "tool_use",
            "id": script.tool_call_id(i, "anthropic"),
            "name": call.name,
            "input": {},
        }
        fragments = [
            {"type": "input_json_delta", "partial_json": frag}
            for frag in call.fragments(script.chunk_size)
        ]
        block(start, fragments, whole=True)
    return frames


def _with_pings(body: list[Frame], pings: int) -> list[Frame]:
    """``body`` with ``pings`` ping events spread evenly over the gaps between its
    events (all after it when it has no gap), as a slow real stream interleaves them."""
    if pings <= 0:
        return body
    gaps = len(body) - 1
    at = [1 + (k * gaps) // pings if gaps > 0 else len(body) for k in range(pings)]
    out: list[Frame] = []
    for i, frame in enumerate(body):
        out += [Frame(_ev("ping")) for _ in range(at.count(i))]
        out.append(frame)
    out += [Frame(_ev("ping")) for _ in range(at.count(len(body)))]
    return out


def render_stream(
    script: ScriptedResponse,
    *,
    model: str,
    response_id: str,
    prompt_words: int,
    empty: bool = False,
) -> list[Frame]:
    usage = script.usage_for(prompt_words)
    start: dict[str, Any] = {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": 1},
    }
    frames = [Frame(_ev("message_start", message=start)), Frame(_ev("ping"))]
    if not empty:
        frames += _with_pings(_content_events(script), script.pings)
    final_usage: dict[str, Any] = {"output_tokens": usage["completion_tokens"] if not empty else 0}
    server_tools = _server_tool_use(script)
    if server_tools is not None and not empty:
        final_usage["server_tool_use"] = server_tools
    delta = {
        "stop_reason": script.anthropic_stop_reason(),
        "stop_sequence": script.anthropic_stop_sequence(),
    }
    frames.append(Frame(_ev("message_delta", delta=delta, usage=final_usage)))
    frames.append(Frame(_ev("message_stop")))
    return frames


def render_json(
    script: ScriptedResponse, *, model: str, response_id: str, prompt_words: int
) -> dict[str, Any]:
    usage = script.usage_for(prompt_words)
    content: list[dict[str, Any]] = []
    if script.full_thinking():
        content.append(
            {
                "type": "thinking",
                "thinking": script.full_thinking(),
                "signature": script.thinking_signature(),
            }
        )
    content += [{"type": "redacted_thinking", "data": data} for data in script.redacted_thinking]
    search = script.web_search
    if search is not None:
        content.append(
            {
                "type": "server_tool_use",
                "id": search.tool_use_id(),
                "name": "web_search",
                "input": {"query": search.query},
            }
        )
        content.append(
            {
                "type": "web_search_tool_result",
                "tool_use_id": search.tool_use_id(),
                "content": [r.block() for r in search.results],
            }
        )
    text = script.full_text() + (script.refusal or "")
    if text or script.citations:
        text_block: dict[str, Any] = {"type": "text", "text": text}
        if script.citations:
            text_block["citations"] = [c.block() for c in script.citations]
        content.append(text_block)
    for i, call in enumerate(script.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": script.tool_call_id(i, "anthropic"),
                "name": call.name,
                "input": call.arguments_dict(),
            }
        )
    out_usage: dict[str, Any] = {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
    }
    server_tools = _server_tool_use(script)
    if server_tools is not None:
        out_usage["server_tool_use"] = server_tools
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": script.anthropic_stop_reason(),
        "stop_sequence": script.anthropic_stop_sequence(),
        "usage": out_usage,
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    kinds = {
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
        400: "invalid_request_error",
        404: "not_found_error",
        405: "invalid_request_error",
    }
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}


# -- side endpoints -------------------------------------------------------------------
def _words(value: Any) -> int:
    """Words in the text a message carries: strings, ``text`` / ``thinking`` fields,
    nested ``content`` (tool results) and tool ``input`` as JSON. Images count 0."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if not isinstance(value, dict):
        return 0
    n = sum(_words(value.get(key)) for key in ("text", "thinking", "content"))
    if "input" in value:
        n += len(json.dumps(value["input"], separators=(",", ":")).split())
    return n


def count_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for ``/v1/messages/count_tokens``: the words of
    ``system`` and ``messages`` plus a quarter of the compact JSON length of ``tools``.
    Not a tokenizer: tests can compute the expected number by hand."""
    n = _words(body.get("system")) + _words(body.get("messages"))
    tools = body.get("tools")
    if tools:
        n += len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False)) // 4
    return n


def _display_name(model_id: str) -> str:
    # "claude-sonnet-4-5" -> "Claude Sonnet 4.5"
    words: list[str] = []
    version: list[str] = []
    for part in model_id.split("-"):
        if part.isdigit() and len(part) <= 2:
            version.append(part)
            continue
        if version:
            words.append(".".join(version))
            version = []
        words.append(part.capitalize())
    if version:
        words.append(".".join(version))
    return " ".join(w for w in words if w)


def model_info(model_id: str) -> dict[str, Any]:
    """An Anthropic ``ModelInfo`` for ``model_id`` (any id: the provider serves any model)."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": _display_name(model_id),
        "created_at": _CREATED_AT,
        "lifecycle": "active",
    }


def models_page(model_ids: list[str]) -> dict[str, Any]:
    """An Anthropic ``GET /v1/models`` page holding every model in one page."""
    return {
        "data": [model_info(m) for m in model_ids],
        "has_more": False,
        "first_id": model_ids[0] if model_ids else None,
        "last_id": model_ids[-1] if model_ids else None,
    }
