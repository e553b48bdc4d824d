"""``LazyChunk``: a chunk made of its upstream event, read as objects only when looked into.

The gateway re-sends a chunk the policy passed through unchanged as the upstream's own
bytes. Building each chunk's objects, recording a snapshot of them and comparing it at
the egress cost a third of the gateway's work per event, for the text delta that the
assembler and the policy read through the fast field readers
(:mod:`~luthien_lab.streaming.fields`) and nothing else reads.

A lazy chunk holds the parsed event as it came (its field dict) and the event's raw
bytes. It reads as the :class:`~luthien_lab.streaming.lite.Chunk` that
``Chunk.adopt`` makes of the event: the first look inside it (``choices``, ``usage``,
its ``__dict__``, a comparison, a copy, any attribute set or deleted) makes it that
chunk, in place (:func:`wake`), after taking a snapshot of it. So while it is a
``LazyChunk`` no one has seen or changed its contents, and :func:`original` gives its
raw bytes; once woken, the raw bytes while the snapshot still matches (:func:`unchanged`:
the same choice and delta objects with the same fields; for a chunk with tool calls or
without the usual shape, the same payload, :func:`payload_of`). Only the field readers
read a lazy chunk's event without waking it.
"""

from __future__ import annotations

from typing import Any

from luthien_lab.streaming.lite import Chunk, LiteObject, adopt_fields

__all__ = [
    "LazyChunk",
    "lazy",
    "lazy_all",
    "lazy_origin",
    "original",
    "payload_of",
    "raw_fields",
    "snapshot",
    "unchanged",
    "wake",
]

_new = object.__new__
_set = object.__setattr__
_delete = object.__delattr__
_fields = LiteObject.__dict__["__dict__"]
raw_fields = _fields.__get__
"""A lazy chunk's field dict (the event as parsed), read without waking it."""
_set_fields = _fields.__set__
_origin = Chunk.__dict__["_origin"]
_set_origin = _origin.__set__
lazy_origin = _origin.__get__
"""A lazy chunk's raw bytes (what :func:`original` gives for one), read in one step."""
_set_snapshot = Chunk.__dict__["_snapshot"].__set__


class LazyChunk(Chunk):
    """A chunk not looked into yet (see the module doc); build one with :func:`lazy`."""

    __slots__ = ()

    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        return raw_fields(wake(self))

    @property  # type: ignore[misc]
    def choices(self) -> Any:  # type: ignore[override]
        return wake(self).choices

    @property  # type: ignore[misc]
    def usage(self) -> Any:  # type: ignore[override]
        return wake(self).usage

    def __setattr__(self, name: str, value: Any) -> None:
        _set(wake(self), name, value)

    def __delattr__(self, name: str) -> None:
        _delete(wake(self), name)

    # The base class's methods read the type before the fields: woken first.
    def __eq__(self, other: object) -> bool:
        return wake(self) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(wake(self))

    def __copy__(self) -> Any:
        return wake(self).__copy__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return wake(self).__reduce_ex__(protocol)


def lazy(event: dict[str, Any], raw: bytes) -> Chunk:
    """A lazy chunk of ``event`` (freshly parsed: it becomes the chunk's own field dict,
    as with ``Chunk.adopt``) and its raw bytes."""
    return lazy_all([(event, raw)])[0]


def lazy_all(events: list[tuple[dict[str, Any], bytes]]) -> list[Chunk]:
    """:func:`lazy` of each (event, raw bytes) pair: the chunks of one read of the
    upstream made in one call, not one each."""
    chunks: list[Chunk] = []
    for event, raw in events:
        chunk = _new(LazyChunk)
        _set_fields(chunk, event)
        _set_origin(chunk, raw)
        chunks.append(chunk)
    return chunks


def wake(chunk: Any) -> Any:
    """Make a lazy ``chunk`` the chunk ``Chunk.adopt`` makes of its event, in place,
    and take its snapshot; anything else is returned as it is."""
    if type(chunk) is LazyChunk:
        adopt_fields(raw_fields(chunk))
        _set(chunk, "__class__", Chunk)
        _set_snapshot(chunk, snapshot(chunk))
    return chunk


def original(chunk: Any) -> bytes | None:
    """The raw bytes of the upstream event ``chunk`` was made of (:func:`lazy`), if it
    is still as it came; else None (a chunk made otherwise, a copy, a changed one)."""
    kind = type(chunk)
    if kind is LazyChunk:
        return lazy_origin(chunk)  # type: ignore[no-any-return]
    if kind is Chunk:
        try:
            mark = chunk._snapshot
        except AttributeError:  # not made of an event
            return None
        if unchanged(chunk, mark):
            return chunk._origin  # type: ignore[no-any-return]
    return None


# ----- snapshots: whether a chunk was changed in place since -------------------------

_LITE = ("lite",)
_NO_CHOICES = ("no choices",)


def payload_of(chunk: Any) -> tuple[Any, ...]:
    """What a policy can change in a chunk: finish reason and delta payload (read by
    attribute: the fast field readers know lazy chunks, so they import this module).

    A policy that mutates a chunk in place (instead of sending a copy) changes one of
    these, and the chunk is then no longer sent as its native event."""
    choices = getattr(chunk, "choices", None)
    if not choices:
        return (_NO_CHOICES,)
    choice = choices[0]
    finish = getattr(choice, "finish_reason", None)
    delta = getattr(choice, "delta", None)
    if delta is None:
        return (finish, None, None, None)
    return (
        finish,
        getattr(delta, "reasoning_content", None),
        getattr(delta, "content", None),
        _calls_key(getattr(delta, "tool_calls", None)),
    )


def snapshot(chunk: Any) -> tuple[Any, ...]:
    """What tells later whether ``chunk`` was changed in place (:func:`unchanged`). A
    lightweight chunk without tool calls (nearly every event): its choice and delta
    objects and copies of their fields, compared by identity and value, which is
    cheaper than reading the payload twice; any change to them counts (a change
    :func:`payload_of` would not see only makes the chunk rebuilt, never lost).
    Anything else: :func:`payload_of`."""
    try:
        if chunk.__pydantic_extra__ is None:  # a lightweight chunk
            choices = chunk.__dict__["choices"]
            choice = choices[0]
            delta = choice.__dict__["delta"]
            fields = delta.__dict__
            if not fields.get("tool_calls"):
                return (_LITE, choices, choice, dict(choice.__dict__), delta, dict(fields))
    except (AttributeError, KeyError, IndexError, TypeError):
        pass
    return payload_of(chunk)


def unchanged(chunk: Any, mark: tuple[Any, ...]) -> bool:
    """Whether ``chunk`` is as it was when :func:`snapshot` gave ``mark``."""
    if mark[0] is not _LITE:
        return payload_of(chunk) == mark
    _, choices, choice, choice_fields, delta, delta_fields = mark
    return (
        chunk.__dict__.get("choices") is choices
        and choices  # a policy may have emptied the list in place
        and choices[0] is choice
        and choice.__dict__ == choice_fields
        and delta.__dict__ == delta_fields
    )


def _calls_key(tool_calls: Any) -> Any:
    if not tool_calls:
        return None
    out = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else call.function
        if isinstance(function, dict):
            out.append((function.get("name"), function.get("arguments")))
        else:
            out.append((getattr(function, "name", None), getattr(function, "arguments", None)))
    return tuple(out)
