"""OpenAI-format responses → Anthropic Messages responses.

:func:`to_anthropic_message` converts the orchestrator's final ``ModelResponse``;
:class:`AnthropicStreamConverter` turns its egress chunks into Anthropic's SSE events
(``message_start``, content blocks, ``message_delta``, ``message_stop``).

OpenAI chunks carry no block structure: a chunk is text, reasoning or a fragment of
tool call ``index``. The converter opens a new Anthropic content block whenever that
kind (or the tool index) changes and closes the previous one, so any sequence a
policy emits (text after tool calls, several tool calls, a tool call sent whole in
one chunk) becomes a valid block sequence.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AnthropicStreamConverter",
    "anthropic_stop_reason",
    "sse_event",
    "to_anthropic_message",
]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


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


def sse_event(event: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: ``event: <type>`` then ``data: <json>``."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _tool_input(arguments: Any) -> dict[str, Any]:
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


def _usage(usage: Any) -> dict[str, int]:
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


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _thinking_blocks(message: Any) -> list[dict[str, Any]]:
    blocks = []
    for block in _get(message, "thinking_blocks") or []:
        if _get(block, "type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": _get(block, "data") or ""})
        elif _get(block, "thinking"):
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": _get(block, "thinking"),
                    "signature": _get(block, "signature") or "",
                }
            )
    if not blocks and _get(message, "reasoning_content"):
        # An OpenAI-protocol upstream has reasoning but no signature to pass on.
        blocks.append({"type": "thinking", "thinking": message.reasoning_content, "signature": ""})
    return blocks


def to_anthropic_message(response: Any, message_id: str, model: str) -> dict[str, Any]:
    """The Anthropic ``message`` object for a litellm ``ModelResponse``."""
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice is not None else None
    content: list[dict[str, Any]] = []
    if message is not None:
        content.extend(_thinking_blocks(message))
        text = message.content or getattr(message, "refusal", None)
        if text:
            content.append({"type": "text", "text": text})
        for call in message.tool_calls or []:
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.function.name,
                    "input": _tool_input(call.function.arguments),
                }
            )
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    finish = choice.finish_reason if choice is not None else None
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(finish, has_tool_use),
        "stop_sequence": None,
        "usage": _usage(getattr(response, "usage", None)),
    }


class AnthropicStreamConverter:
    """Stateful: feed egress chunks in order with :meth:`feed`, then call
    :meth:`finish`; each returns the Anthropic events (dicts) to send, in order."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.started = False
        self.finished = False
        self.finish_reason: str | None = None
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self._block: tuple[str, int] | None = None  # (kind, tool index) of the open block
        self._next_index = 0
        self._has_tool_use = False
        self._unnamed_tools = 0

    # ----- blocks -----

    def _close(self, events: list[dict[str, Any]]) -> None:
        if self._block is not None:
            events.append({"type": "content_block_stop", "index": self._next_index - 1})
            self._block = None

    def _open(
        self, events: list[dict[str, Any]], key: tuple[str, int], block: dict[str, Any]
    ) -> int:
        self._close(events)
        index = self._next_index
        self._next_index += 1
        self._block = key
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        return index

    def _ensure(self, events: list[dict[str, Any]], kind: str, block: dict[str, Any]) -> int:
        if self._block == (kind, -1):
            return self._next_index - 1
        return self._open(events, (kind, -1), block)

    def _delta(self, events: list[dict[str, Any]], index: int, delta: dict[str, Any]) -> None:
        events.append({"type": "content_block_delta", "index": index, "delta": delta})

    # ----- chunks -----

    def start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": dict(self.usage),
        }
        return [{"type": "message_start", "message": message}]

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        events = self.start()
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage.update(_usage(usage))
        for choice in (getattr(chunk, "choices", None) or [])[:1]:
            self._feed_delta(events, choice.delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return events

    def _feed_delta(self, events: list[dict[str, Any]], delta: Any) -> None:
        if delta is None:
            return
        reasoning = getattr(delta, "reasoning_content", None)
        if reasoning:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            index = self._ensure(events, "thinking", block)
            self._delta(events, index, {"type": "thinking_delta", "thinking": reasoning})
        for block in getattr(delta, "thinking_blocks", None) or []:
            signature = _get(block, "signature")
            # Anthropic upstreams send the signature last, while the block is open.
            if signature and self._block == ("thinking", -1):
                self._delta(
                    events,
                    self._next_index - 1,
                    {"type": "signature_delta", "signature": signature},
                )
        for text in (delta.content, getattr(delta, "refusal", None)):
            if text:
                index = self._ensure(events, "text", {"type": "text", "text": ""})
                self._delta(events, index, {"type": "text_delta", "text": text})
        for call in getattr(delta, "tool_calls", None) or []:
            self._feed_tool_call(events, call)

    def _feed_tool_call(self, events: list[dict[str, Any]], call: Any) -> None:
        position = _get(call, "index")
        key = ("tool_use", position if isinstance(position, int) else 0)
        function = _get(call, "function")
        if self._block == key:
            index = self._next_index - 1
        else:
            call_id = _get(call, "id")
            if not call_id:
                self._unnamed_tools += 1
                call_id = f"toolu_{self.message_id}_{self._unnamed_tools}"
            name = _get(function, "name") or ""
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            index = self._open(events, key, block)
            self._has_tool_use = True
        arguments = _get(function, "arguments")
        if arguments:
            self._delta(events, index, {"type": "input_json_delta", "partial_json": arguments})

    def finish(self) -> list[dict[str, Any]]:
        """Close the open block and end the message (once)."""
        if self.finished:
            return []
        self.finished = True
        events = self.start()
        self._close(events)
        events.append(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": anthropic_stop_reason(self.finish_reason, self._has_tool_use),
                    "stop_sequence": None,
                },
                "usage": dict(self.usage),
            }
        )
        events.append({"type": "message_stop"})
        return events
