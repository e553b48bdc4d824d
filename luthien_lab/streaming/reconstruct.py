"""Rebuild a full ``ModelResponse`` from stream chunks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
        chunk_usage = getattr(chunk, "usage", None)
        if chunk_usage is not None:
            usage = chunk_usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        if delta is not None:
            if delta.content:
                content.append(delta.content)
            text = getattr(delta, "reasoning_content", None)
            if text:
                reasoning.append(text)
            text = getattr(delta, "refusal", None)
            if text:
                refusal.append(text)
            for call in delta.tool_calls or ():
                slot = tools.setdefault(
                    call.index if call.index is not None else len(tools),
                    {"id": None, "name": None, "arguments": []},
                )
                if call.id:
                    slot["id"] = call.id
                function = call.function
                if function is not None:
                    if function.name:
                        slot["name"] = function.name
                    if function.arguments:
                        slot["arguments"].append(function.arguments)
        if choice.finish_reason:
            finish_reason = choice.finish_reason
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
