"""Fast reads of litellm chunk fields, shared by everything that looks inside chunks.

litellm keeps most delta and choice fields as pydantic *extras*; plain attribute
access then goes through pydantic's ``__getattr__`` (and raises and catches for a
missing field), which costs more than the rest of the pipeline per chunk. These
helpers read the two dicts directly and fall back to ``getattr`` for anything that
is not a pydantic object.
"""

from __future__ import annotations

from typing import Any

from luthien_lab.streaming.lazy import LazyChunk as _Lazy
from luthien_lab.streaming.lazy import raw_fields as _raw_fields
from luthien_lab.streaming.lite import Delta as _LiteDelta
from luthien_lab.streaming.lite import StreamChoice as _LiteChoice

__all__ = [
    "NO_CHOICES",
    "field_of",
    "is_lazy_trailer",
    "read_chunk",
    "read_delta",
    "read_delta_role",
    "read_plain_event",
    "read_signature",
    "read_text_only",
    "read_usage",
]

_MISSING = object()


def field_of(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, fast for litellm's pydantic objects.

    litellm keeps most delta and choice fields as pydantic *extras*; plain attribute
    access then goes through pydantic's ``__getattr__`` (and raises and catches for a
    missing one), which costs more than the rest of the pipeline. Reading the two
    dicts directly is about ten times cheaper.
    """
    try:
        value = obj.__dict__.get(name, _MISSING)
        if value is _MISSING:
            extra = obj.__pydantic_extra__
            return extra.get(name) if extra else None
        return value
    except AttributeError:
        return getattr(obj, name, None)


NO_CHOICES = object()
_EMPTY: dict[str, Any] = {}


def read_chunk(chunk: Any) -> tuple[Any, Any, Any]:
    """(usage, delta, finish_reason) of a chunk; delta is ``NO_CHOICES`` when the
    chunk has no choices. Same dict-reading shortcut as :func:`field_of`, inlined
    because this runs for every chunk; an object without pydantic extras (a
    lightweight chunk, or a litellm one with none) is read from ``__dict__`` alone."""
    try:
        fields = chunk.__dict__
        extra = chunk.__pydantic_extra__
        usage = (extra.get("usage") or fields.get("usage")) if extra else fields.get("usage")
        choices = fields["choices"]
        if not choices:
            return usage, NO_CHOICES, None
        choice = choices[0]
        fields = choice.__dict__
        extra = choice.__pydantic_extra__
        if not extra:
            return usage, fields.get("delta"), fields.get("finish_reason")
        return (
            usage,
            fields.get("delta") or extra.get("delta"),
            fields.get("finish_reason") or extra.get("finish_reason"),
        )
    except (AttributeError, KeyError):
        choices = getattr(chunk, "choices", None)
        if not choices:
            return field_of(chunk, "usage"), NO_CHOICES, None
        return (
            field_of(chunk, "usage"),
            field_of(choices[0], "delta"),
            field_of(choices[0], "finish_reason"),
        )


def read_usage(chunk: Any) -> Any:
    """The chunk's usage, or None (:func:`read_chunk`'s first item, alone)."""
    if type(chunk) is _Lazy and _raw_fields(chunk).get("usage") is None:
        return None  # without waking it (streaming.lazy)
    try:
        extra = chunk.__pydantic_extra__
        if extra:
            return extra.get("usage") or chunk.__dict__.get("usage")
        return chunk.__dict__.get("usage")
    except AttributeError:
        return field_of(chunk, "usage")


def read_delta(delta: Any) -> tuple[Any, Any, Any]:
    """(reasoning_content, content, tool_calls) of a delta."""
    try:
        fields = delta.__dict__
        extra = delta.__pydantic_extra__
        if not extra:
            get = fields.get
            return get("reasoning_content"), get("content"), get("tool_calls")
        content = fields.get("content")
        if content is None:
            content = extra.get("content")
        return (
            fields.get("reasoning_content") or extra.get("reasoning_content"),
            content,
            fields.get("tool_calls") or extra.get("tool_calls"),
        )
    except AttributeError:
        return (
            field_of(delta, "reasoning_content"),
            field_of(delta, "content"),
            field_of(delta, "tool_calls"),
        )


def read_delta_role(delta: Any) -> tuple[Any, Any, Any, Any]:
    """(reasoning_content, content, tool_calls, role) of a delta: :func:`read_delta`
    plus the role, for code that forwards chunks (a role goes out once)."""
    try:
        fields = delta.__dict__
        extra = delta.__pydantic_extra__ or _EMPTY
        content = fields.get("content")
        if content is None:
            content = extra.get("content")
        return (
            fields.get("reasoning_content") or extra.get("reasoning_content"),
            content,
            fields.get("tool_calls") or extra.get("tool_calls"),
            fields.get("role") or extra.get("role"),
        )
    except AttributeError:
        return (
            field_of(delta, "reasoning_content"),
            field_of(delta, "content"),
            field_of(delta, "tool_calls"),
            field_of(delta, "role"),
        )


def read_text_only(chunk: Any) -> tuple[str, Any] | None:
    """(content, role) when the chunk's only payload is text (no reasoning, no tool
    calls, no finish reason), else None: the common chunk, told apart in one step.

    The first try reads litellm's shape directly (a choice and a delta whose fields
    are pydantic extras, ``reasoning_content`` a declared field) or a plain object's
    ``__dict__``, and a lazy chunk's event (:mod:`~luthien_lab.streaming.lazy`)
    without waking it; anything else goes through :func:`read_chunk` and
    :func:`read_delta_role`."""
    try:
        if type(chunk) is _Lazy:
            choices = _raw_fields(chunk).get("choices")
            if not choices:
                return None  # a usage trailer: read_chunk below would wake it
            choice = choices[0]
            delta = choice.get("delta")
            if type(delta) is not dict or choice.get("finish_reason"):
                return None
            content = delta.get("content")
            if not content or delta.get("tool_calls") or delta.get("reasoning_content"):
                return None
            return content, delta.get("role")
        choice = chunk.__dict__["choices"][0]
        if type(choice) is _LiteChoice:
            # A lightweight chunk holds only the fields the provider sent (a missing one
            # reads as None): indexing would raise, and raising costs more than the read.
            cx = choice.__dict__
            delta = cx.get("delta")
            if type(delta) is _LiteDelta and not cx.get("finish_reason"):
                dx = delta.__dict__
                content = dx.get("content")
                if not content or dx.get("tool_calls") or dx.get("reasoning_content"):
                    return None
                return content, dx.get("role")
        cx = choice.__pydantic_extra__ or choice.__dict__
        if cx["finish_reason"]:
            return None
        delta = cx["delta"]
        fields = delta.__dict__
        dx = delta.__pydantic_extra__ or fields
        content = dx["content"]
        if not content or dx["tool_calls"] or fields.get("reasoning_content"):
            return None
        return content, dx["role"]
    except (AttributeError, KeyError, IndexError, TypeError):
        pass
    _usage, delta, finish = read_chunk(chunk)
    if finish or delta is None or delta is NO_CHOICES:
        return None
    reasoning, content, tool_calls, role = read_delta_role(delta)
    if not content or tool_calls or reasoning:
        return None
    return content, role


def read_plain_event(chunk: Any) -> tuple[Any, Any, Any] | None:
    """(finish_reason, reasoning_content, content) of a lazy chunk
    (:mod:`~luthien_lab.streaming.lazy`), read from its event without waking it, when
    they are all of its payload: one choice, and no usage, tool calls or thinking
    blocks (the role, ids and fields no reader looks at aside). None for any other
    chunk: read it with :func:`read_chunk` (which wakes a lazy one, so that changes
    made to the objects it hands out are seen).

    The first chunk of a stream (its role), the finish and reasoning deltas are such
    chunks: read so, they stay lazy and go out as the upstream's own bytes."""
    if type(chunk) is not _Lazy:
        return None
    fields = _raw_fields(chunk)
    choices = fields.get("choices")
    if type(choices) is not list or len(choices) != 1 or fields.get("usage") is not None:
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    delta = choice.get("delta")
    if delta is None:
        return choice.get("finish_reason"), None, None
    if type(delta) is not dict or delta.get("tool_calls") or delta.get("thinking_blocks"):
        return None
    return choice.get("finish_reason"), delta.get("reasoning_content"), delta.get("content")


def is_lazy_trailer(chunk: Any) -> bool:
    """Whether ``chunk`` is a lazy chunk (:mod:`~luthien_lab.streaming.lazy`) that holds
    usage and no choices (OpenAI's ``include_usage`` trailer), told without waking it.
    False for any other chunk: read it with :func:`read_chunk`."""
    if type(chunk) is not _Lazy:
        return False
    fields = _raw_fields(chunk)
    return not fields.get("choices") and fields.get("usage") is not None


def read_signature(delta: Any) -> str | None:
    """The thinking signature a delta carries (Anthropic sends it last, in a delta of
    its own, as litellm's ``thinking_blocks``), or None."""
    blocks = field_of(delta, "thinking_blocks")
    if not blocks:
        return None
    for block in blocks:
        signature = (
            block.get("signature") if isinstance(block, dict) else field_of(block, "signature")
        )
        if signature:
            return str(signature)
    return None
