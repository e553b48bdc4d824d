"""Responses API objects: output items, status, usage, the response object, and the
policy's final non-streaming response as one.

With a Responses upstream the transaction's :class:`WireContext` holds the upstream's
own response object. A response the policy returned as it got it is that object;
otherwise its items are kept wherever the policy left their content alone (reasoning
with its ``encrypted_content``, hosted tool calls, the calls it kept) and only what it
changed is rebuilt: the text (in place of the first message's text) and the calls it
changed, removed or added. With a Chat Completions upstream the object is built from
the chat answer, as the stream writer builds it from chunks.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any

from luthien_lab.clients._litellm import import_litellm

if TYPE_CHECKING:
    from luthien_lab.gateway._wire import WireContext

__all__ = [
    "CALL_ITEMS",
    "base_response",
    "call_item",
    "chat_usage",
    "custom_tool_names",
    "finish_for",
    "litellm_transformation",
    "message_item",
    "reasoning_item",
    "responses_usage",
    "status_for",
    "to_response",
]

CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}


def status_for(finish: str | None) -> tuple[str, dict[str, str] | None]:
    """``(status, incomplete_details)`` of a response whose chat finish reason is
    ``finish``: a cut answer is ``incomplete``, as the API reports it."""
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def finish_for(response: dict[str, Any]) -> str:
    """The chat finish reason of a Responses response object."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details") or {}
        return "content_filter" if details.get("reason") == "content_filter" else "length"
    if any(item.get("type") in CALL_ITEMS for item in response.get("output") or []):
        return "tool_calls"
    return "stop"


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def responses_usage(usage: Any) -> dict[str, Any] | None:
    """A chat usage (object or dict) in the Responses API's shape."""
    if usage is None:
        return None
    prompt = int(_get(usage, "prompt_tokens") or 0)
    completion = int(_get(usage, "completion_tokens") or 0)
    cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens") or 0
    reasoning = _get(_get(usage, "completion_tokens_details"), "reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": prompt + completion,
    }


def chat_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """A Responses usage in chat shape (what the pipeline records)."""
    usage = usage or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def custom_tool_names(body: dict[str, Any]) -> set[str]:
    """Names of the request's ``custom`` (freeform) tools: a chat upstream calls them as
    function tools, and the client must get them back as custom tool calls."""
    return {
        tool["name"]
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        and tool.get("type") == "custom"
        and isinstance(tool.get("name"), str)
    }


def unwrap_custom(arguments: str) -> str:
    """The freeform input of a custom tool a chat upstream called as a function."""
    return litellm_transformation("custom_tools").unwrap_custom_tool_arguments(arguments)


def base_response(body: dict[str, Any], response_id: str, created_at: int) -> dict[str, Any]:
    """The response object (in progress, no output) for a Responses request, echoing
    its parameters as the API does."""
    reasoning: dict[str, Any] = body.get("reasoning") or {}
    text: dict[str, Any] = body.get("text") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": body.get("background") is True,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None, **reasoning},
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [text_part(text)] if status == "completed" else []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(item_id: str, text: str | None, encrypted: str | None = None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text is not None else []
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def call_item(
    item_id: str,
    call_id: str,
    name: str,
    value: str,
    kind: str = "function_call",
    status: str = "completed",
) -> dict[str, Any]:
    item = {"id": item_id, "type": kind, "status": status, "call_id": call_id, "name": name}
    item[CALL_ITEMS[kind]] = value
    return item


def encrypted_reasoning(message: Any, body: dict[str, Any]) -> str | None:
    """The reasoning item's ``encrypted_content`` for a chat answer's signed thinking
    blocks, when the client asked for it: litellm's encoding, which its chat
    translation decodes back into thinking blocks on the next turn."""
    if "reasoning.encrypted_content" not in (body.get("include") or []):
        return None
    blocks = [
        b if isinstance(b, dict) else b.model_dump() for b in _get(message, "thinking_blocks") or []
    ]
    return litellm_transformation("reasoning_items").encode_thinking_blocks(blocks)


# ----- the whole response, non-streaming -----


def _parts(response: Any) -> tuple[Any, str, list[Any], str | None]:
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice is not None else None
    text = (message.content or "") if message is not None else ""
    calls = list(message.tool_calls or []) if message is not None else []
    return message, text, calls, choice.finish_reason if choice is not None else None


def to_response(
    response: Any, response_id: str, body: dict[str, Any], wire: WireContext | None = None
) -> dict[str, Any] | bytes:
    """The Responses API response object for the policy's final ``ModelResponse``: the
    upstream's own bytes when the policy returned the response it got."""
    native = wire.response if wire is not None else None
    if native is not None and wire is not None:
        original, obj = native
        if response is original:
            raw = wire.extra.get("response_raw")
            return raw if isinstance(raw, bytes) else obj
        return _merged(response, original, obj)
    return _rebuilt(response, response_id, body)


def _call(call: Any, item_id: str, custom: set[str], status: str = "completed") -> dict[str, Any]:
    name = call.function.name or ""
    arguments = call.function.arguments or ""
    if name in custom:
        return call_item(
            item_id, call.id, name, unwrap_custom(arguments), "custom_tool_call", status
        )
    return call_item(item_id, call.id, name, arguments, status=status)


def _rebuilt(response: Any, response_id: str, body: dict[str, Any]) -> dict[str, Any]:
    message, text, calls, finish = _parts(response)
    suffix = response_id.removeprefix("resp_")
    output: list[dict[str, Any]] = []
    reasoning = _get(message, "reasoning_content") if message is not None else None
    encrypted = encrypted_reasoning(message, body) if message is not None else None
    if reasoning or encrypted:
        output.append(reasoning_item(f"rs_{suffix}_0", reasoning or None, encrypted))
    if text or not calls:
        output.append(message_item(f"msg_{suffix}_{len(output)}", text))
    custom = custom_tool_names(body)
    for call in calls:
        output.append(_call(call, f"fc_{suffix}_{len(output)}", custom))
    status, details = status_for(finish)
    out = base_response(body, response_id, int(time.time()))
    out.update(status=status, incomplete_details=details, output=output)
    out["completed_at"] = out["created_at"] if status == "completed" else None
    out["usage"] = responses_usage(getattr(response, "usage", None))
    return out


def _same_call(item: dict[str, Any], call: Any) -> bool:
    field = CALL_ITEMS[item["type"]]
    return bool(
        call.function.name == item.get("name") and call.function.arguments == item.get(field)
    )


def _merged(response: Any, original: Any, obj: dict[str, Any]) -> dict[str, Any]:
    _, text, calls, finish = _parts(response)
    _, original_text, _, original_finish = _parts(original)
    remaining = {call.id: call for call in calls}
    text_changed = text != original_text
    text_placed = False
    output: list[dict[str, Any]] = []
    for item in obj.get("output") or []:
        kind = item.get("type")
        if kind == "message" and text_changed:
            kept = [p for p in item.get("content") or [] if p.get("type") != "output_text"]
            if not text_placed and text:
                # The upstream's annotations point into the text it wrote: not this one.
                kept.insert(0, {**_first_text(item), "text": text, "annotations": []})
            text_placed = True
            if kept:
                output.append({**item, "content": kept})
        elif kind in CALL_ITEMS:
            call = remaining.pop(item.get("call_id"), None)
            if call is not None:
                field = CALL_ITEMS[kind]
                same = _same_call(item, call)
                output.append(
                    item
                    if same
                    else {**item, "name": call.function.name, field: call.function.arguments or ""}
                )
        else:
            output.append(item)
    suffix = str(obj.get("id", "")).removeprefix("resp_")
    if text_changed and not text_placed and text:
        output.append(message_item(f"msg_{suffix}_{len(output)}", text))
    for call in remaining.values():
        output.append(_call(call, f"fc_{suffix}_{len(output)}", set()))
    out = dict(obj)
    out["output"] = output
    if finish != original_finish and not (finish == "stop" and original_finish == "tool_calls"):
        status, details = status_for(finish)
        out.update(status=status, incomplete_details=details)
    return out


def _first_text(item: dict[str, Any]) -> dict[str, Any]:
    for part in item.get("content") or []:
        if part.get("type") == "output_text":
            return dict(part)
    return text_part("")


def litellm_transformation(name: str) -> Any:
    """litellm's Responses <-> chat module ``name``
    (``litellm.responses.litellm_completion_transformation.<name>``), through the one
    door to litellm (:func:`luthien_lab.clients._litellm.import_litellm`)."""
    import_litellm()
    return importlib.import_module(f"litellm.responses.litellm_completion_transformation.{name}")
