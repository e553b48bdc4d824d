"""``WireContext``: what a gateway dialect keeps of the client's own wire request.

The pipeline works on one normalized form (an OpenAI-format :class:`Request`, litellm
stream chunks), so that one policy serves every API. Normalizing is lossy: no common
form holds every field and event of every API, and each API keeps growing. So the
gateway does not rebuild what the policy left alone, it re-sends it:

- the request: the dialect keeps the client's body and headers, and the view it gave
  the policy (``snapshot``). The native upstream client compares the policy's final
  request with that view, field by field, and sends the client's own value for every
  field the policy did not change (unknown fields included);
- the response: a chunk that reaches the egress unchanged (the same object, with the
  same payload) is written to the client as the native event it was made from;
  anything else is rebuilt from the chunk. The chat dialect's chunks are the events
  themselves, lazy (:mod:`luthien_lab.streaming.lazy`: each holds its raw bytes, and is
  as it came while nothing has looked inside it); the other dialects' are
  translations, and their native upstream clients register here, for each one, the
  native event it was made from and a snapshot of it.

Both hold by construction: nothing needs a list of known fields or events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from luthien_lab.streaming.lazy import snapshot as _snapshot
from luthien_lab.streaming.lazy import unchanged

__all__ = ["NativeEvent", "WireContext", "bind_wire", "wire_attr", "wire_of"]


class NativeEvent(NamedTuple):
    """The native event (parsed, and its raw SSE bytes) a normalized chunk came from;
    ``payload``: what tells whether the chunk was changed since
    (``streaming.lazy.snapshot``)."""

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
        return native if unchanged(chunk, native.payload) else None

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
