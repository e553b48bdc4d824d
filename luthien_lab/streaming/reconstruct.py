"""Rebuild a full ``ModelResponse`` from stream chunks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta

__all__ = ["reconstruct_full_response"]


def reconstruct_full_response(chunks: Iterable[Any]) -> Any:
    """One ``ModelResponse`` from chunks: content, reasoning, tool calls (merged by
    index, arguments concatenated), finish reason, usage, id/model/created.

    Content is None when no chunk carried text; tool calls are None when none did.
    """
    from litellm.types.utils import (
        ChatCompletionMessageToolCall,
        Choices,
        Function,
        Message,
        ModelResponse,
    )

    content: list[str] = []
    reasoning: list[str] = []
    refusal: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish_reason: str | None = None
    usage: Any = None
    header: Any = None
    for chunk in chunks:
        if header is None:
            header = chunk
        chunk_usage, delta, finish = read_chunk(chunk)
        if chunk_usage is not None:
            usage = chunk_usage
        if delta is NO_CHOICES:
            continue
        if delta is not None:
            thinking, text, calls = read_delta(delta)
            if text:
                content.append(text)
            if thinking:
                reasoning.append(thinking)
            text = field_of(delta, "refusal")
            if text:
                refusal.append(text)
            for call in calls or ():
                call_index = field_of(call, "index")
                slot = tools.setdefault(
                    call_index if call_index is not None else len(tools),
                    {"id": None, "name": None, "arguments": []},
                )
                call_id = field_of(call, "id")
                if call_id:
                    slot["id"] = call_id
                function = field_of(call, "function")
                if function is not None:
                    name = field_of(function, "name")
                    if name:
                        slot["name"] = name
                    arguments = field_of(function, "arguments")
                    if arguments:
                        slot["arguments"].append(arguments)
        if finish:
            finish_reason = finish
    tool_calls = [
        ChatCompletionMessageToolCall(
            id=slot["id"] or f"call_{index}",
            type="function",
            function=Function(name=slot["name"] or "", arguments="".join(slot["arguments"])),
        )
        for index, slot in sorted(tools.items())
    ]
    message = Message(
        role="assistant",
        content="".join(content) if content else None,
        tool_calls=tool_calls or None,
    )
    if reasoning:
        message.reasoning_content = "".join(reasoning)
    if refusal:
        message.refusal = "".join(refusal)  # type: ignore[attr-defined]
    fields: dict[str, Any] = {
        "choices": [Choices(index=0, message=message, finish_reason=finish_reason or "stop")]
    }
    if header is not None:
        fields.update(id=header.id, model=header.model, created=header.created)
    response = ModelResponse(**fields)
    if usage is not None:
        response.usage = usage  # type: ignore[attr-defined]
    return response
