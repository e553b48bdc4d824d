"""Chunk builders: every chunk a policy emits is a well-formed litellm stream chunk
(``object: "chat.completion.chunk"``, one streaming choice with a delta).

Pass ``template`` (usually the stream's first ingress chunk) so that built chunks
carry the same ``id``, ``model`` and ``created`` as the provider's.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

__all__ = [
    "create_chunk",
    "create_finish_chunk",
    "create_role_chunk",
    "create_text_chunk",
    "create_thinking_chunk",
    "create_tool_call_chunk",
    "create_usage_chunk",
]


def _usage(usage: Any) -> Any:
    if isinstance(usage, dict):
        from litellm.types.utils import Usage

        return Usage(**usage)
    return usage


def _header(template: Any) -> dict[str, Any]:
    if template is None:
        return {"id": "chatcmpl-luthien", "model": None, "created": int(time.time())}
    return {"id": template.id, "model": template.model, "created": template.created}


def create_chunk(
    template: Any = None,
    *,
    content: str | None = None,
    role: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning_content: str | None = None,
    finish_reason: str | None = None,
    usage: Any = None,
    refusal: str | None = None,
) -> ModelResponseStream:
    """Build one stream chunk with the given delta fields."""
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    delta_fields: dict[str, Any] = {"content": content, "role": role, "tool_calls": tool_calls}
    if reasoning_content is not None:
        delta_fields["reasoning_content"] = reasoning_content
    if refusal is not None:
        delta_fields["refusal"] = refusal
    choice = StreamingChoices(index=0, delta=Delta(**delta_fields), finish_reason=finish_reason)
    chunk = ModelResponseStream(choices=[choice], **_header(template))
    if usage is not None:
        chunk.usage = _usage(usage)  # type: ignore[attr-defined]
    return chunk


def create_text_chunk(
    text: str, template: Any = None, *, role: str | None = None, finish_reason: str | None = None
) -> ModelResponseStream:
    """A chunk carrying ``text`` as a content delta."""
    return create_chunk(template, content=text, role=role, finish_reason=finish_reason)


def create_thinking_chunk(text: str, template: Any = None) -> ModelResponseStream:
    """A chunk carrying ``text`` as a reasoning (thinking) delta."""
    return create_chunk(template, reasoning_content=text)


def create_role_chunk(template: Any = None, role: str = "assistant") -> ModelResponseStream:
    """The opening chunk: ``role`` and empty content."""
    return create_chunk(template, role=role, content="")


def tool_call_delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    """One entry of ``delta.tool_calls`` in OpenAI's streaming shape."""
    return {
        "index": index,
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def create_tool_call_chunk(
    tool_call: Any, template: Any = None, *, index: int = 0
) -> ModelResponseStream:
    """A chunk carrying one complete tool call (id, name and all arguments).

    ``tool_call`` is a litellm ``ChatCompletionMessageToolCall``, a
    ``ToolCallStreamBlock`` or a dict in OpenAI's shape; dict arguments are JSON-encoded.
    """
    if isinstance(tool_call, dict):
        function = tool_call.get("function", tool_call)
        call_id, name, arguments = (
            tool_call.get("id"),
            function.get("name"),
            function.get("arguments"),
        )
    elif hasattr(tool_call, "function"):
        call_id, name, arguments = (
            tool_call.id,
            tool_call.function.name,
            tool_call.function.arguments,
        )
    else:  # ToolCallStreamBlock
        call_id, name, arguments = tool_call.id, tool_call.name, tool_call.arguments
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return create_chunk(
        template,
        tool_calls=[tool_call_delta(index, id=call_id, name=name, arguments=arguments or "")],
    )


def create_finish_chunk(
    finish_reason: str, template: Any = None, usage: Any = None
) -> ModelResponseStream:
    """The closing chunk: an empty delta with ``finish_reason``."""
    return create_chunk(template, finish_reason=finish_reason, usage=usage)


def create_usage_chunk(usage: Any, template: Any = None) -> ModelResponseStream:
    """OpenAI's ``include_usage`` trailer: usage and no choices."""
    from litellm.types.utils import ModelResponseStream

    chunk = ModelResponseStream(choices=[], **_header(template))
    chunk.usage = _usage(usage)  # type: ignore[attr-defined]
    return chunk
