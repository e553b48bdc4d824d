"""Chunk and response objects that do not need litellm.

Importing litellm takes seconds, so a process that never calls a provider through
litellm (replaying recordings with ``luthien-lab eval``, say) works on these instead
of litellm's ``ModelResponseStream`` / ``ModelResponse``. They have the same shape:
the same attributes (``chunk.choices[0].delta.content``,
``response.choices[0].message.tool_calls[0].function.name``...), ``model_dump()``,
``model_dump_json()``, ``model_copy()``, equality by value, and the same fields
litellm's objects dump for the same data (an object built from a dict dumps that
dict). Fields are plain instance attributes (``__dict__``), so the fast field readers
of :mod:`luthien_lab.streaming.fields` read them directly.

Which family the builders (``to_chunk``, ``create_chunk``,
``reconstruct_full_response``, ``ToolCallStreamBlock.tool_call``) return: litellm's,
unless the process opted in with :func:`prefer_lite` (or ``LUTHIEN_LAB_LITE_CHUNKS=1``)
and litellm is not imported yet; a builder that copies a template follows the
template's family. Every reader in luthien-lab takes either.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from typing import Any, ClassVar

__all__ = [
    "Chunk",
    "Delta",
    "Function",
    "LiteObject",
    "Message",
    "Response",
    "ResponseChoice",
    "StreamChoice",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "is_lite",
    "prefer_lite",
    "use_litellm",
]

LITE_ENV = "LUTHIEN_LAB_LITE_CHUNKS"
_prefer = os.environ.get(LITE_ENV, "").strip().lower() in ("1", "true", "yes")


def prefer_lite(on: bool = True) -> bool:
    """Build litellm-free objects in this process for as long as litellm is not
    imported (a process that only replays recordings never needs litellm); returns
    the previous setting."""
    global _prefer
    previous, _prefer = _prefer, on
    return previous


def use_litellm(template: Any = None) -> bool:
    """Whether builders should make litellm objects: yes when ``template`` is a litellm
    (pydantic) object, no when it is a lite one; otherwise yes unless the process
    prefers lite objects and litellm is not imported."""
    if template is not None:
        if isinstance(template, LiteObject):
            return False
        if getattr(template, "__pydantic_extra__", False) is not False:
            return True
    return not _prefer or "litellm" in sys.modules


def is_lite(obj: Any) -> bool:
    return isinstance(obj, LiteObject)


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, LiteObject):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dump(item, exclude_none) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item, exclude_none) for key, item in value.items()}
    if hasattr(value, "model_dump"):  # a litellm object inside a lite one
        return value.model_dump(exclude_none=exclude_none)
    return value


class LiteObject:
    """Base: fields in ``__dict__``, in the order litellm dumps them.

    ``_nested``: field name -> class that a dict (or each dict of a list) in that field
    becomes. ``_optional``: names that read as None when absent (as litellm's do)."""

    __pydantic_extra__: ClassVar[None] = None
    _nested: ClassVar[dict[str, type[LiteObject]]] = {}
    _optional: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **fields: Any) -> None:
        values = self.__dict__
        nested = self._nested
        for name, value in fields.items():
            kind = nested.get(name)
            if kind is not None and value is not None:
                value = kind._convert(value)
            values[name] = value

    @classmethod
    def _convert(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, list):
            return [cls.from_dict(item) if isinstance(item, dict) else item for item in value]
        return value

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """An object holding exactly ``data``'s fields (nested dicts converted)."""
        obj = cls.__new__(cls)
        values = obj.__dict__
        values.update(data)  # in C, then only the (one or two) nested fields in Python
        for name, kind in cls._nested.items():
            value = values.get(name)
            if value is not None:
                values[name] = kind._convert(value)
        return obj

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # An optional field the object does not hold reads as None from the class:
        # a ``__getattr__`` doing it made every attribute read of every lightweight
        # object (``__dict__`` included) go through Python's slower lookup hook.
        super().__init_subclass__(**kwargs)
        for name in cls.__dict__.get("_optional", ()):
            if getattr(cls, name, None) is not None:
                raise TypeError(f"{cls.__name__}: optional field {name!r} hides an attribute")
            setattr(cls, name, None)

    # ----- pydantic-compatible API -----

    def model_dump(self, *, exclude_none: bool = False, **_options: Any) -> dict[str, Any]:
        """The fields as a dict (``mode``, ``by_alias``... are accepted and ignored:
        the values are JSON types already)."""
        out = {}
        for name, value in self.__dict__.items():
            if value is None and exclude_none:
                continue
            out[name] = _dump(value, exclude_none)
        return out

    def model_dump_json(self, *, exclude_none: bool = False, indent: int | None = None,
                        **_options: Any) -> str:  # fmt: skip
        return json.dumps(
            self.model_dump(exclude_none=exclude_none),
            ensure_ascii=False,
            indent=indent,
            separators=(",", ":") if indent is None else None,
        )

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:
        new = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            new.__dict__.update(update)
        return new

    def __copy__(self) -> Any:
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        return new

    def __iter__(self) -> Any:
        return iter(self.__dict__.items())

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LiteObject):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


class Record(LiteObject):
    """Any other nested object (token details, say): its keys as attributes."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class Function(LiteObject):
    """A tool call's function: ``name`` and ``arguments`` (JSON text)."""

    _optional = frozenset({"name", "arguments"})


class ToolCallDelta(LiteObject):
    """One entry of ``delta.tool_calls`` (litellm ``ChatCompletionDeltaToolCall``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"function": Function}
    _optional = frozenset({"id", "function", "type", "index"})


class ToolCall(LiteObject):
    """A complete tool call (litellm ``ChatCompletionMessageToolCall``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"function": Function}
    _optional = frozenset({"id", "function", "type"})


class Delta(LiteObject):
    """A stream chunk's delta (litellm ``Delta``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"tool_calls": ToolCallDelta}
    _optional = frozenset(
        {
            "content",
            "role",
            "tool_calls",
            "function_call",
            "audio",
            "reasoning_content",
            "thinking_blocks",
            "refusal",
            "provider_specific_fields",
            "annotations",
            "images",
        }
    )


class StreamChoice(LiteObject):
    """A stream chunk's choice (litellm ``StreamingChoices``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"delta": Delta}
    _optional = frozenset({"finish_reason", "index", "delta", "logprobs"})


class Usage(LiteObject):
    """Token counts (litellm ``Usage``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {
        "completion_tokens_details": Record,
        "prompt_tokens_details": Record,
    }
    _optional = frozenset(
        {
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "completion_tokens_details",
            "prompt_tokens_details",
        }
    )


class Chunk(LiteObject):
    """A stream chunk (litellm ``ModelResponseStream``)."""

    # The gateway's record of the upstream event a chunk was made from (see
    # ``streaming.lazy``): not part of the chunk's value, so neither copied nor pickled.
    __slots__ = ("_origin", "_snapshot")

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"choices": StreamChoice, "usage": Usage}
    _optional = frozenset(
        {
            "id",
            "created",
            "model",
            "object",
            "system_fingerprint",
            "choices",
            "usage",
            "provider_specific_fields",
            "citations",
            "service_tier",
        }
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        # LiteObject.from_dict, unrolled for the shape of a stream chunk (the gateway
        # builds one per upstream event: the generic walk cost as much as the JSON
        # parse); the same objects.
        if cls is not Chunk:
            return super().from_dict(data)
        obj = _new(Chunk)
        obj.__dict__.update(data)
        _convert_chunk(obj.__dict__, False)
        return obj

    @classmethod
    def adopt(cls, data: dict[str, Any]) -> Chunk:
        """``Chunk.from_dict(data)`` that takes ``data`` over instead of copying it:
        ``data`` (and the dicts of its choices and deltas) become the objects' own
        field dicts, so the caller must not use it afterwards. For a freshly parsed
        event (the gateway builds one chunk per upstream event): three dicts fewer to
        allocate and fill per event."""
        obj = _new(Chunk)
        obj.__dict__ = data
        adopt_fields(data)
        return obj

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__


def adopt_fields(data: dict[str, Any]) -> None:
    """A chunk's field dict ``data``, its nested dicts made objects in place (theirs
    become the objects' field dicts): :meth:`Chunk.adopt`'s work."""
    choices = data.get("choices")
    if type(choices) is list and len(choices) == 1 and data.get("usage") is None:
        # Nearly every event: one choice, no usage; the general walk's list
        # comprehension and its checks cost as much as building the choice.
        only = choices[0]
        if type(only) is dict:
            data["choices"] = [_stream_choice(only, True)]
            return
    _convert_chunk(data, True)


_new = object.__new__


def _convert_chunk(values: dict[str, Any], own: bool) -> None:
    """A chunk's nested fields (choices, usage) made objects, in ``values``."""
    choices = values.get("choices")
    if choices is not None:
        if type(choices) is list:
            values["choices"] = [
                _stream_choice(item, own) if type(item) is dict else item for item in choices
            ]
        else:
            values["choices"] = StreamChoice._convert(choices)
    usage = values.get("usage")
    if usage is not None:
        values["usage"] = Usage._convert(usage)


def _stream_choice(data: dict[str, Any], own: bool) -> StreamChoice:
    """``StreamChoice.from_dict(data)``, unrolled (see ``Chunk.from_dict``); with
    ``own``, ``data`` and its delta's dict become the objects' field dicts."""
    choice = _new(StreamChoice)
    if own:
        choice.__dict__ = values = data
    else:
        values = choice.__dict__
        values.update(data)
    delta = values.get("delta")
    if delta is not None:
        if type(delta) is dict:
            new = _new(Delta)
            if own:
                new.__dict__ = fields = delta
            else:
                fields = new.__dict__
                fields.update(delta)
            tool_calls = fields.get("tool_calls")
            if tool_calls is not None:
                fields["tool_calls"] = ToolCallDelta._convert(tool_calls)
            values["delta"] = new
        else:
            values["delta"] = Delta._convert(delta)
    return choice


class Message(LiteObject):
    """A response's message (litellm ``Message``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"tool_calls": ToolCall}
    _optional = frozenset(
        {
            "content",
            "role",
            "tool_calls",
            "function_call",
            "reasoning_content",
            "thinking_blocks",
            "refusal",
            "provider_specific_fields",
            "annotations",
            "audio",
            "images",
        }
    )


class ResponseChoice(LiteObject):
    """A response's choice (litellm ``Choices``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"message": Message}
    _optional = frozenset({"finish_reason", "index", "message", "logprobs"})


class Response(LiteObject):
    """A full response (litellm ``ModelResponse``)."""

    _nested: ClassVar[dict[str, type[LiteObject]]] = {"choices": ResponseChoice, "usage": Usage}
    _optional = frozenset(
        {
            "id",
            "created",
            "model",
            "object",
            "system_fingerprint",
            "choices",
            "usage",
            "provider_specific_fields",
            "citations",
            "service_tier",
        }
    )
