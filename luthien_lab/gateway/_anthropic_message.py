"""The policy's final non-streaming response as an Anthropic ``message`` object.

With an Anthropic upstream the transaction's :class:`WireContext` holds the
upstream's own message. A response the policy returned as it got it is that message;
otherwise its blocks are kept wherever the policy left their content alone (thinking
with signatures, server tool blocks, citations, tool calls it kept) and only what it
changed is rebuilt: the text (one block in place of the first text block) and the
tool calls it changed, removed or added.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from luthien_lab.gateway._anthropic_format import (
    anthropic_stop_reason,
    thinking_blocks,
    tool_input,
    usage_of,
)

if TYPE_CHECKING:
    from luthien_lab.gateway._wire import WireContext

__all__ = ["to_anthropic_message"]


def to_anthropic_message(
    response: Any, message_id: str, model: str, wire: WireContext | None = None
) -> dict[str, Any]:
    """The Anthropic ``message`` object for a litellm ``ModelResponse``."""
    native = wire.response if wire is not None else None
    if native is not None:
        original, message = native
        if response is original:
            return message
        return _merged(response, original, message)
    return _rebuilt(response, message_id, model)


def _parts(response: Any) -> tuple[Any, str, list[Any], str | None]:
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice is not None else None
    text = (message.content or getattr(message, "refusal", None) or "") if message else ""
    calls = list(message.tool_calls or []) if message is not None else []
    return message, text, calls, choice.finish_reason if choice is not None else None


def _rebuilt(response: Any, message_id: str, model: str) -> dict[str, Any]:
    message, text, calls, finish = _parts(response)
    content: list[dict[str, Any]] = []
    if message is not None:
        content.extend(thinking_blocks(message))
    if text:
        content.append({"type": "text", "text": text})
    content.extend(_tool_use(call) for call in calls)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(finish, bool(calls)),
        "stop_sequence": None,
        "usage": usage_of(getattr(response, "usage", None)),
    }


def _tool_use(call: Any) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.function.name,
        "input": tool_input(call.function.arguments),
    }


def _same_call(block: dict[str, Any], call: Any) -> bool:
    if call.function.name != block.get("name"):
        return False
    try:
        return json.loads(call.function.arguments or "{}") == (block.get("input") or {})
    except ValueError:
        return False


def _merged(response: Any, original: Any, message: dict[str, Any]) -> dict[str, Any]:
    _, text, calls, finish = _parts(response)
    _, original_text, _, original_finish = _parts(original)
    remaining = {call.id: call for call in calls}
    text_changed = text != original_text
    text_placed = False
    content: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text" and text_changed:
            if not text_placed and text:
                content.append({"type": "text", "text": text})
            text_placed = True
        elif kind == "tool_use":
            call = remaining.pop(block.get("id"), None)
            if call is not None:
                content.append(block if _same_call(block, call) else _tool_use(call))
        else:
            content.append(block)
    if text_changed and not text_placed and text:
        content.append({"type": "text", "text": text})
    content.extend(_tool_use(call) for call in remaining.values())
    has_tool_use = any(block.get("type") == "tool_use" for block in content)
    out = dict(message)
    out["content"] = content
    stop = message.get("stop_reason")
    if finish != original_finish or (stop == "tool_use" and not has_tool_use):
        out["stop_reason"] = anthropic_stop_reason(finish, has_tool_use)
        out["stop_sequence"] = None
    return out
