"""What a trace is made of: chunk and hook records, and the payloads read out of live
chunks and stored responses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta

__all__ = [
    "CHUNK_COLUMNS",
    "HOOK_COLUMNS",
    "ChunkRecord",
    "HookRecord",
    "as_dict",
    "chunk_payload",
    "messages_of",
    "summarize_response",
]

HOOK_COLUMNS = (
    "transaction_id",
    "seq",
    "hook",
    "chunk_index",
    "block_kind",
    "block_id",
    "tool_index",
    "start_offset_ns",
    "duration_ns",
    "egress_start",
    "egress_end",
)
CHUNK_COLUMNS = (
    "transaction_id",
    "direction",
    "chunk_index",
    "offset_ns",
    "content",
    "reasoning",
    "tool_calls",
    "finish_reason",
)


@dataclass(slots=True)
class ChunkRecord:
    """What a chunk carried, copied out of the live litellm object."""

    index: int
    offset_ns: int
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None

    def describe(self) -> str:
        """A short human description: the text delta, tool args or finish reason."""
        parts = []
        if self.reasoning:
            parts.append(f"thinking: {self.reasoning!r}")
        if self.content:
            parts.append(f"text: {self.content!r}")
        for call in self.tool_calls or []:
            name = call.get("name") or ""
            parts.append(f"tool[{call.get('index')}] {name}{call.get('arguments') or ''}".strip())
        if self.finish_reason:
            parts.append(f"finish: {self.finish_reason}")
        return "; ".join(parts) or "(empty)"


@dataclass(slots=True)
class HookRecord:
    """One hook firing, with times as offsets from the transaction's start."""

    seq: int
    hook: str
    chunk_index: int
    block_kind: str | None
    block_id: str | None
    tool_index: int | None
    start_offset_ns: int
    duration_ns: int
    egress_start: int
    egress_end: int


def chunk_payload(chunk: Any) -> tuple[str | None, str | None, list[dict[str, Any]] | None, Any]:
    """``(content, reasoning, tool_calls, finish_reason)`` of a litellm stream chunk.

    Runs for every chunk of a live run, so it reads fields the way the assembler does
    (:mod:`luthien_lab.streaming.fields`), not through pydantic's slow ``getattr``.
    """
    _usage, delta, finish_reason = read_chunk(chunk)
    if delta is NO_CHOICES:
        return None, None, None, None
    if delta is None:
        return None, None, None, finish_reason
    reasoning, content, raw_calls = read_delta(delta)
    calls = None
    if raw_calls:
        calls = []
        for call in raw_calls:
            function = field_of(call, "function")
            index = field_of(call, "index")
            calls.append(
                {
                    "index": 0 if index is None else index,
                    "id": field_of(call, "id"),
                    "name": field_of(function, "name") if function is not None else None,
                    "arguments": field_of(function, "arguments") if function is not None else None,
                }
            )
    return content, reasoning, calls, finish_reason


def as_dict(obj: Any) -> Any:
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if isinstance(obj, str):
        return json.loads(obj)
    return dict(obj)


def summarize_response(response: Any) -> dict[str, Any] | None:
    """Text, reasoning, tool calls, finish reason and refusal of a full response
    (a litellm ``ModelResponse`` or its JSON form as the store keeps it)."""
    data = as_dict(response)
    if not data or not data.get("choices"):
        return None
    choice = data["choices"][0]
    message = choice.get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append(
            {
                "id": call.get("id"),
                "name": function.get("name") or "",
                "arguments": function.get("arguments") or "",
            }
        )
    return {
        "text": message.get("content") or "",
        "reasoning": message.get("reasoning_content") or "",
        "tool_calls": calls,
        "finish_reason": choice.get("finish_reason"),
        "refusal": message.get("refusal"),
    }


def messages_of(request: Any) -> list[dict[str, Any]]:
    data = as_dict(request)
    return list((data or {}).get("messages") or [])
