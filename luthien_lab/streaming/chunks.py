"""Chunk builders: every chunk a policy emits is a well-formed litellm stream chunk
(``object: "chat.completion.chunk"``, one streaming choice with a delta).

Pass ``template`` (usually the stream's first ingress chunk) so that built chunks
carry the same ``id``, ``model`` and ``created`` as the provider's.

A built chunk is litellm's ``ModelResponseStream`` when litellm is imported already
or the template is one, else the litellm-free equivalent of
:mod:`luthien_lab.streaming.lite` (same fields, same dump): building a chunk never
imports litellm by itself.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from luthien_lab.clients._litellm import litellm_types
from luthien_lab.streaming import lite
from luthien_lab.streaming.lite import use_litellm

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
    "replace_delta",
]


def _usage(usage: Any, litellm: bool) -> Any:
    if isinstance(usage, dict):
        if litellm:
            return litellm_types().Usage(**usage)
        # litellm's Usage fields first, in its order, missing counts 0.
        fields: dict[str, Any] = {
            "completion_tokens": usage.get("completion_tokens") or 0,
            "prompt_tokens": usage.get("prompt_tokens") or 0,
            "total_tokens": usage.get("total_tokens") or 0,
            "completion_tokens_details": usage.get("completion_tokens_details"),
            "prompt_tokens_details": usage.get("prompt_tokens_details"),
        }
        fields.update((key, value) for key, value in usage.items() if key not in fields)
        return lite.Usage(**fields)
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
    if use_litellm(template):
        types = litellm_types()
        delta_fields: dict[str, Any] = {"content": content, "role": role, "tool_calls": tool_calls}
        if reasoning_content is not None:
            delta_fields["reasoning_content"] = reasoning_content
        if refusal is not None:
            delta_fields["refusal"] = refusal
        choice = types.StreamingChoices(
            index=0, delta=types.Delta(**delta_fields), finish_reason=finish_reason
        )
        chunk = types.ModelResponseStream(choices=[choice], **_header(template))
        if usage is not None:
            chunk.usage = _usage(usage, True)
        return chunk
    # The same fields, in the same order, as litellm's chunk dumps.
    fields: dict[str, Any] = {}
    if reasoning_content is not None:
        fields["reasoning_content"] = reasoning_content
    fields.update(content=content, role=role, function_call=None, tool_calls=tool_calls)
    fields["audio"] = None
    if refusal is not None:
        fields["refusal"] = refusal
    built = lite.Chunk(
        **_header(template),
        object="chat.completion.chunk",
        choices=[
            lite.StreamChoice(
                finish_reason=finish_reason, index=0, delta=lite.Delta(**fields), logprobs=None
            )
        ],
        provider_specific_fields=None,
    )
    if usage is not None:
        setattr(built, "usage", _usage(usage, False))  # noqa: B010 (no declared field)
    return cast("ModelResponseStream", built)


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
    if use_litellm(template):
        chunk = litellm_types().ModelResponseStream(choices=[], **_header(template))
        chunk.usage = _usage(usage, True)
        return chunk
    built = lite.Chunk(
        **_header(template),
        object="chat.completion.chunk",
        choices=[],
        provider_specific_fields=None,
        usage=_usage(usage, False),
    )
    return cast("ModelResponseStream", built)


_new = object.__new__
_setattr = object.__setattr__


# pydantic ``BaseModel``'s slot setters, called directly: cheaper than
# ``object.__setattr__`` (no attribute lookup), and they refuse (TypeError) an object
# that is not a pydantic one, which sends it to the generic path.
_slots = vars(BaseModel)
_set_dict = _slots["__dict__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def _clone(obj: Any) -> Any:
    """A shallow copy of a pydantic object: ``model_copy()`` without its overhead.
    The field and extra dicts are copied (a field set on the copy stays on the copy);
    the set of field names given at construction is shared, as only a pydantic
    assignment to a declared field adds to it (and a chunk's are set already): one
    allocation fewer per object, which the garbage collector notices on a long
    stream. Raises AttributeError or TypeError for anything else."""
    new = _new(type(obj))
    _set_dict(new, obj.__dict__.copy())
    extra = obj.__pydantic_extra__
    _set_extra(new, None if extra is None else extra.copy())
    _set_fields_set(new, obj.__pydantic_fields_set__)
    private = obj.__pydantic_private__
    _set_private(new, None if private is None else private.copy())
    return new


def _replace_pydantic(chunk: Any, fields: dict[str, Any]) -> Any:
    """``replace_delta`` for litellm's chunk: the chunk, its first choice and that
    choice's delta cloned (:func:`_clone`), nothing else copied."""
    new = _clone(chunk)
    values = new.__dict__
    choices = values["choices"]
    choice = _clone(choices[0])
    holder = choice.__pydantic_extra__
    if not holder or "delta" not in holder:
        holder = choice.__dict__
    delta = holder["delta"] = _clone(holder["delta"])
    extra = delta.__pydantic_extra__
    own = delta.__dict__
    for name, value in fields.items():
        if extra is not None and name in extra:  # litellm keeps most delta fields here
            extra[name] = value
        elif name in own:
            own[name] = value
        else:
            setattr(delta, name, value)
    # One choice nearly always: no slice (a list of its own) to unpack.
    values["choices"] = [choice] if len(choices) == 1 else [choice, *choices[1:]]
    return new


def _replace_lite(chunk: Any, fields: dict[str, Any]) -> Any:
    """``replace_delta`` for a :mod:`~luthien_lab.streaming.lite` chunk: three new
    objects over copies of the three field dicts (a new field goes last, as
    ``setattr`` would put it); None when the choice or delta is not a lite object."""
    values = chunk.__dict__.copy()
    choices = values["choices"]
    old_choice = choices[0]
    choice_fields = old_choice.__dict__.copy()
    old_delta = choice_fields["delta"]
    if not (isinstance(old_choice, lite.LiteObject) and isinstance(old_delta, lite.LiteObject)):
        return None
    delta_fields = old_delta.__dict__.copy()
    delta_fields.update(fields)
    delta = _new(old_delta.__class__)
    _setattr(delta, "__dict__", delta_fields)
    choice_fields["delta"] = delta
    choice = _new(old_choice.__class__)
    _setattr(choice, "__dict__", choice_fields)
    values["choices"] = [choice, *choices[1:]]
    new = _new(chunk.__class__)
    _setattr(new, "__dict__", values)
    return new


def replace_delta(chunk: ModelResponseStream, **fields: Any) -> ModelResponseStream:
    """A copy of ``chunk`` whose first choice's delta has ``fields`` changed
    (``replace_delta(chunk, content="...")``); the original is left as it was.

    Only the chunk, its first choice and its delta are copied (everything else is
    shared, as with a shallow ``model_copy``): several times cheaper than
    ``model_copy(deep=True)`` on a hot path. A policy that rewrites chunks calls it
    per rewritten chunk, so both families get a path that builds the three objects
    directly; anything else takes ``model_copy``."""
    try:
        if isinstance(chunk, lite.LiteObject):
            new = _replace_lite(chunk, fields)
            if new is not None:
                return cast("ModelResponseStream", new)
        else:
            return cast("ModelResponseStream", _replace_pydantic(chunk, fields))
    except (AttributeError, KeyError, IndexError, TypeError):
        pass
    new = chunk.model_copy()
    choice = new.choices[0].model_copy()
    delta = choice.delta.model_copy()
    for name, value in fields.items():
        setattr(delta, name, value)
    choice.delta = delta
    new.choices = [choice, *new.choices[1:]]
    return new
