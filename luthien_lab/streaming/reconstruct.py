"""Rebuild a full ``ModelResponse`` from stream chunks (litellm's when the chunks are
litellm's or litellm is imported, else the litellm-free equivalent: see
:mod:`luthien_lab.streaming.lite`)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from luthien_lab.clients._litellm import litellm_types
from luthien_lab.streaming import lite
from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta
from luthien_lab.streaming.lite import use_litellm

__all__ = ["reconstruct_full_response"]


def reconstruct_full_response(chunks: Iterable[Any]) -> Any:
    """One ``ModelResponse`` from chunks: content, reasoning, tool calls (merged by
    index, arguments concatenated), finish reason, usage, id/model/created.

    Content is None when no chunk carried text; tool calls are None when none did.
    """
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
    calls = [
        (slot["id"] or f"call_{index}", slot["name"] or "", "".join(slot["arguments"]))
        for index, slot in sorted(tools.items())
    ]
    text = "".join(content) if content else None
    finish = finish_reason or "stop"
    if use_litellm(header):
        response = _litellm_response(header, text, calls, finish)
    else:
        response = _lite_response(header, text, calls, finish)
    if reasoning:
        response.choices[0].message.reasoning_content = "".join(reasoning)
    if refusal:
        response.choices[0].message.refusal = "".join(refusal)
    if usage is not None:
        response.usage = usage
    return response


def _litellm_response(header: Any, text: str | None, calls: list[Any], finish: str) -> Any:
    types = litellm_types()
    tool_calls = [
        types.ChatCompletionMessageToolCall(
            id=call_id, type="function", function=types.Function(name=name, arguments=arguments)
        )
        for call_id, name, arguments in calls
    ]
    message = types.Message(role="assistant", content=text, tool_calls=tool_calls or None)
    fields: dict[str, Any] = {
        "choices": [types.Choices(index=0, message=message, finish_reason=finish)]
    }
    if header is not None:
        fields.update(id=header.id, model=header.model, created=header.created)
    return types.ModelResponse(**fields)


def _lite_response(header: Any, text: str | None, calls: list[Any], finish: str) -> Any:
    tool_calls = [
        lite.ToolCall(
            function=lite.Function(arguments=arguments, name=name), id=call_id, type="function"
        )
        for call_id, name, arguments in calls
    ]
    message = lite.Message(
        content=text, role="assistant", tool_calls=tool_calls or None, function_call=None
    )
    fields: dict[str, Any] = {"id": "chatcmpl-luthien", "created": int(time.time()), "model": None}
    if header is not None:
        fields.update(id=header.id, created=header.created, model=header.model)
    return lite.Response(
        **fields,
        object="chat.completion",
        choices=[lite.ResponseChoice(finish_reason=finish, index=0, message=message)],
    )
