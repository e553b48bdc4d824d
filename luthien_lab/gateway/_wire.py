"""``WireContext``: what a gateway dialect keeps of the client's own wire request.

The pipeline works on one normalized form (an OpenAI-format :class:`Request`, litellm
stream chunks), so that one policy serves every API. Normalizing is lossy: no common
form holds every field and event of every API, and each API keeps growing. So the
gateway does not rebuild what the policy left alone, it re-sends it:

- the request: the dialect keeps the client's body and headers, and the view it gave
  the policy (``snapshot``). The native upstream client compares the policy's final
  request with that view, field by field, and sends the client's own value for every
  field the policy did not change (unknown fields included);
- the response: the native upstream client registers, for each normalized chunk it
  yields, the native event it was made from. A chunk that reaches the egress unchanged
  (the same object, with the same payload) is written to the client as that native
  event; anything else is rebuilt from the chunk.

Both hold by construction: nothing needs a list of known fields or events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from luthien_lab.streaming.fields import NO_CHOICES, read_chunk, read_delta

__all__ = ["NativeEvent", "WireContext", "bind_wire", "payload_of", "wire_attr", "wire_of"]


def payload_of(chunk: Any) -> tuple[Any, ...]:
    """What a policy can change in a chunk: finish reason and delta payload.

    A policy that mutates an ingress chunk in place (instead of sending a copy) changes
    one of these, and the chunk is then no longer sent as its native event.
    """
    _usage, delta, finish = read_chunk(chunk)
    if delta is NO_CHOICES:
        return (NO_CHOICES,)
    if delta is None:
        return (finish, None, None, None)
    reasoning, content, tool_calls = read_delta(delta)
    return (finish, reasoning, content, _calls_key(tool_calls))


_LITE = ("lite",)


def _snapshot(chunk: Any) -> tuple[Any, ...]:
    """What tells later whether a policy changed ``chunk`` in place. A lightweight
    chunk without tool calls (nearly every event): its choice and delta objects and
    copies of their fields, compared by identity and value at the egress, which is
    cheaper than reading the payload twice; any change to them counts (a change
    :func:`payload_of` would not see only makes the chunk rebuilt, never lost). Anything
    else: :func:`payload_of`."""
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


class NativeEvent(NamedTuple):
    """The native event (parsed, and its raw SSE bytes) a normalized chunk came from;
    ``payload``: what tells whether the chunk was changed since (see ``_snapshot``)."""

    chunk: Any
    payload: tuple[Any, ...]
    event: dict[str, Any]
    raw: bytes


_tuple_new = tuple.__new__


@dataclass(eq=False)
class WireContext:
    """One transaction's native request and response (see the module doc).

    - ``api``: the client's API (``"anthropic"``, ``"responses"``);
    - ``body``: the client's request body, as parsed, and ``raw``, as sent (sent on
      as it is when the policy changed nothing); ``headers``: the client headers to
      forward upstream (lower-case names);
    - ``snapshot``: the normalized request the dialect gave the policy
      (``Request.model_dump()``), to tell what the policy changed; None when no policy
      code sees the request before it is sent (the policy has no ``on_request``);
    - ``natives``: ``id(chunk) -> NativeEvent`` for every chunk the native upstream
      client yielded; ``response``: (the normalized non-streaming response, the
      upstream's own: parsed or bytes), if any.
    """

    api: str
    body: dict[str, Any]
    headers: dict[str, str]
    snapshot: dict[str, Any] | None
    raw: bytes | None = None
    natives: dict[int, NativeEvent] = field(default_factory=dict)
    response: tuple[Any, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def register(self, chunk: Any, event: dict[str, Any], raw: bytes) -> None:
        # NativeEvent(...) without its __new__, a Python call: this runs per event.
        self.natives[id(chunk)] = _tuple_new(NativeEvent, (chunk, _snapshot(chunk), event, raw))

    def native_for(self, chunk: Any) -> NativeEvent | None:
        """The native event of ``chunk`` if it is an ingress chunk the policy passed
        through unchanged, else None."""
        native = self.natives.get(id(chunk))
        if native is None or native.chunk is not chunk:
            return None
        snapshot = native.payload
        if snapshot[0] is not _LITE:
            return native if payload_of(chunk) == snapshot else None
        # _snapshot's lightweight case, compared here: this runs per chunk.
        _, choices, choice, choice_fields, delta, delta_fields = snapshot
        if (
            chunk.__dict__.get("choices") is choices
            and choices  # a policy may have emptied the list in place
            and choices[0] is choice
            and choice.__dict__ == choice_fields
            and delta.__dict__ == delta_fields
        ):
            return native
        return None

    def changed_fields(self, final: dict[str, Any]) -> set[str]:
        """The top-level fields of the normalized request the policy changed (added and
        removed ones included)."""
        before = self.snapshot
        if before is None:
            return set()  # nothing could change it
        keys = set(before) | set(final)
        return {key for key in keys if before.get(key, _ABSENT) != final.get(key, _ABSENT)}


_ABSENT = object()


def wire_attr(request: Any) -> Any:
    """``request._wire`` (None when unset), read from pydantic's private dict: reading a
    private attribute goes through ``BaseModel.__getattr__``, a Python call, and the
    upstream clients ask several times per request."""
    try:
        private = request.__pydantic_private__
    except AttributeError:
        return getattr(request, "_wire", None)
    return private.get("_wire") if private else None


def wire_of(request: Any, api: str) -> WireContext | None:
    """The request's wire context when it came from the ``api`` dialect."""
    wire = wire_attr(request)
    return wire if isinstance(wire, WireContext) and wire.api == api else None


def bind_wire(
    request: Any,
    api: str,
    body: dict[str, Any],
    http: Any,
    headers: dict[str, str],
    extra: dict[str, Any] | None = None,
    *,
    snapshot: bool = True,
) -> WireContext:
    """Bind ``request`` (the policy's view of ``body``) to the client's wire request:
    the snapshot of the view, the raw bytes (kept by the gateway's body reader on
    ``http.state``), the headers to forward. The snapshot is a deep copy, so a policy
    that edits the request in place is still seen to have changed it; ``snapshot``
    False (no policy code will see the request before it is sent) skips it: a deep
    copy of an agent's conversation per request, for nothing."""
    view = request.model_dump() if snapshot else None
    extra = dict(extra or {})
    if view is not None:
        extra["view_messages"] = view["messages"]
    raw = getattr(http.state, "raw_body", None) if http is not None else None
    wire = WireContext(api, body, headers, view, raw=raw, extra=extra)
    request._wire = wire
    return wire
