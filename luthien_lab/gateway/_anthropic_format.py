"""Anthropic Messages wire details shared by the stream writer and the message
builder: stop reasons both ways, SSE framing, usage, tool input, thinking blocks."""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "anthropic_stop_reason",
    "finish_reason_for",
    "get",
    "sse_event",
    "thinking_blocks",
    "tool_input",
    "usage_of",
]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason_for(stop_reason: str | None) -> str | None:
    """OpenAI's finish reason for an Anthropic stop reason."""
    if stop_reason is None:
        return None
    return _FINISH.get(stop_reason, "stop")


def anthropic_stop_reason(finish_reason: str | None, has_tool_use: bool) -> str:
    """Anthropic's ``stop_reason`` for an OpenAI ``finish_reason``.

    ``tool_calls`` without any ``tool_use`` block (a policy removed every call but
    left the finish reason) becomes ``end_turn``: an Anthropic client seeing
    ``tool_use`` would look for a call to run.
    """
    reason = _STOP_REASONS.get(finish_reason or "stop", "end_turn")
    if reason == "tool_use" and not has_tool_use:
        return "end_turn"
    return reason


def sse_event(event: dict[str, Any] | bytes) -> bytes:
    """One Anthropic SSE event: ``event: <type>`` then ``data: <json>`` (raw bytes of a
    native event are already that)."""
    if isinstance(event, bytes):
        return event
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as Anthropic's ``input`` object. Arguments that are not
    a JSON object are kept under ``_raw`` rather than dropped, so the client sees what
    the model sent."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def usage_of(usage: Any) -> dict[str, int]:
    out = {
        "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }
    # litellm copies Anthropic's cache counters onto the usage object.
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        value = getattr(usage, name, None)
        if isinstance(value, int):
            out[name] = value
    return out


def get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def thinking_blocks(message: Any) -> list[dict[str, Any]]:
    blocks = []
    for block in get(message, "thinking_blocks") or []:
        if get(block, "type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": get(block, "data") or ""})
        elif get(block, "thinking"):
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": get(block, "thinking"),
                    "signature": get(block, "signature") or "",
                }
            )
    if not blocks and get(message, "reasoning_content"):
        # An OpenAI-protocol upstream has reasoning but no signature to pass on.
        blocks.append({"type": "thinking", "thinking": message.reasoning_content, "signature": ""})
    return blocks
