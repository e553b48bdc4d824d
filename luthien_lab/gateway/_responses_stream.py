"""The policy's output as an OpenAI Responses event stream.

:class:`ResponsesStreamWriter` turns egress chunks into Responses SSE events. A chunk the
policy passed through unchanged from a Responses upstream (see ``_wire``) is written as
the upstream's own event, byte for byte (re-serialized only when its ``sequence_number``
or ``output_index`` must change: numbers stay strictly increasing from 0, and items
after one the policy removed move up); any other chunk is rebuilt.

The writer owns the item structure, because a policy decides what goes out and when:

- an upstream message or reasoning item opens when its first content reaches the
  writer (a policy may hold it back past the upstream's ``*.done`` events), or at its
  ``output_item.done`` when it has no content to wait for (encrypted-only reasoning);
  a function call opens with its head; other items (hosted tools) as they come;
- the ``*.done`` events of an item are held until the item closes (the next item
  opens, or the response ends) and then patched with what was really streamed, so
  the text in ``output_text.done`` and in ``response.completed`` is the text the
  client got; items that never opened (a blocked function call, text the policy
  removed) are left out of ``response.completed`` as they were of the stream;
- rebuilt content goes into the open item of its kind, else into the upstream item
  it stands for (a call by its ``call_id``, text by the waiting message item), else
  into a new item.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from luthien_lab.gateway._errors import classify
from luthien_lab.gateway._responses_items import (
    CALL_DONE,
    DELTAS,
    PART_DONE,
    STARTS,
    ClientItem,
    Emit,
    Held,
    UpstreamItem,
    built_item,
    has_content,
)
from luthien_lab.gateway._responses_object import (
    CALL_ITEMS,
    base_response,
    custom_tool_names,
    responses_usage,
    status_for,
)
from luthien_lab.streaming.fields import field_of

if TYPE_CHECKING:
    from luthien_lab.gateway._wire import WireContext

__all__ = ["ResponsesStreamWriter", "sse_event"]

_TERMINAL = ("response.completed", "response.incomplete")
_DONE = frozenset({*PART_DONE, *CALL_DONE.values(), "response.output_item.done"})
_Out = list[bytes | dict[str, Any]]


def sse_event(event: dict[str, Any] | bytes) -> bytes:
    """One Responses SSE event (raw bytes of a native event are already that)."""
    if isinstance(event, bytes):
        return event
    data = json.dumps(event, ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


class ResponsesStreamWriter:
    """Stateful: :meth:`feed` each egress chunk in order, then :meth:`finish` (or
    :meth:`fail`); each returns what to send, in order: event dicts (rebuilt) or bytes
    (native events). ``wire``: the transaction's :class:`WireContext` when the upstream
    was a Responses API (None: every chunk is rebuilt)."""

    def __init__(
        self, response_id: str, body: dict[str, Any], wire: WireContext | None = None
    ) -> None:
        self.body = body
        self.wire = wire
        self.base = base_response(body, response_id, int(time.time()))
        self.suffix = response_id.removeprefix("resp_")
        self.custom = custom_tool_names(body)
        self.started = self.finished = False
        self.finish_reason: str | None = None
        self.usage: Any = None
        self._seq = 0
        self._items: list[ClientItem] = []
        self._open: ClientItem | None = None
        self._up: dict[int, UpstreamItem] = {}
        self._by_call: dict[str, int] = {}
        self._calls: dict[Any, ClientItem] = {}
        self._terminal: Held | None = None
        self._signed: list[Any] = []
        self._lifecycle: set[str] = set()

    # ----- sending -----

    def _send(
        self, out: _Out, event: dict[str, Any], raw: bytes | None = None, **patch: Any
    ) -> None:
        patch["sequence_number"] = self._seq
        self._seq += 1
        changes = {k: v for k, v in patch.items() if event.get(k, _NONE) != v}
        out.append(raw if raw is not None and not changes else {**event, **changes})

    def _emit(self, out: _Out, emits: list[Emit]) -> None:
        for event, raw, patch in emits:
            self._send(out, event, raw, **patch)

    def _native(self, kinds: tuple[str, ...], **match: Any) -> dict[str, Any] | None:
        """The first event of one of ``kinds`` the upstream sent (whether or not the
        policy passed it on) with ``match``'s values (``item_*``: in its item)."""
        for native in self.wire.natives.values() if self.wire is not None else ():
            event = native.event
            item = event.get("item") or {}
            if event.get("type") in kinds and all(
                (item.get(k[5:]) if k.startswith("item_") else event.get(k)) == v
                for k, v in match.items()
            ):
                return event
        return None

    def _response(self) -> dict[str, Any]:
        created = self._native(("response.created",))
        return dict(created["response"]) if created is not None else dict(self.base)

    def start(self, out: _Out) -> None:
        if self.started:
            return
        self.started = True
        response = self._response()
        for kind in ("response.created", "response.in_progress"):
            self._lifecycle.add(kind)
            self._send(out, {"type": kind, "response": response})

    # ----- chunks -----

    def feed(self, chunk: Any) -> _Out:
        out: _Out = []
        native = self.wire.native_for(chunk) if self.wire is not None else None
        usage = field_of(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in (field_of(chunk, "choices") or [])[:1]:
            self.finish_reason = field_of(choice, "finish_reason") or self.finish_reason
            if native is None:
                self.start(out)
                self._feed_delta(out, field_of(choice, "delta"))
        if native is not None:
            self._feed_native(out, native.event, native.raw)
            for call in _calls_of(chunk):  # a call's head, sent as the upstream's own
                if field_of(call, "id") and self._open is not None:
                    self._calls[field_of(call, "index")] = self._open
        return out

    def _feed_delta(self, out: _Out, delta: Any) -> None:
        if delta is None:
            return
        reasoning = field_of(delta, "reasoning_content")
        if reasoning:
            self._text(out, "reasoning", reasoning)
        self._signed.extend(field_of(delta, "thinking_blocks") or [])
        content = field_of(delta, "content")
        if content:
            self._text(out, "message", content)
        for call in field_of(delta, "tool_calls") or []:
            self._tool_call(out, call)

    def _feed_native(self, out: _Out, event: dict[str, Any], raw: bytes) -> None:
        kind = event.get("type", "")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            if kind not in self._lifecycle:  # not when :meth:`start` made it already
                self.started = True
                self._lifecycle.add(kind)
                self._send(out, event, raw)
            return
        self.start(out)
        if kind in _TERMINAL:
            self._terminal = (event, raw)
        elif kind == "response.output_item.added":
            record = self._record(event.get("output_index", -1), (event, raw))
            if record.state == "pending" and record.kind not in ("message", "reasoning"):
                self._open_upstream(out, record)
        elif isinstance(event.get("output_index"), int):
            self._item_event(out, event, raw)
        else:  # an event of the whole response, or one to come: as it is
            self._send(out, event, raw)

    # ----- upstream items -----

    def _record(self, index: int, added: Held | None = None) -> UpstreamItem:
        record = self._up.get(index)
        if record is None:
            record = self._up[index] = UpstreamItem()
        if added is not None and record.added is None:
            record.added = added
            item = added[0].get("item") or {}
            record.kind = str(item.get("type"))
            if record.kind in CALL_ITEMS:
                self._by_call[str(item.get("call_id"))] = index
        return record

    def _open_upstream(self, out: _Out, record: UpstreamItem) -> ClientItem:
        if record.state == "open" and record.client is not None:
            return record.client
        self._close(out)
        if record.added is None:  # its head never reached the writer: the upstream's own
            index = next(i for i, r in self._up.items() if r is record)
            found = self._native(("response.output_item.added",), output_index=index)
            record.added = (found or {"type": "response.output_item.added", "item": {}}, None)
        event, raw = record.added
        item = self._open_item(dict(event.get("item") or {}), record)
        record.state, record.client = "open", item
        self._send(out, event, raw, output_index=item.index)
        for start, start_raw in record.starts:
            self._start_part(out, item, start, start_raw)
        record.starts = []
        return item

    def _item_event(self, out: _Out, event: dict[str, Any], raw: bytes) -> None:
        kind = event.get("type", "")
        record = self._record(event["output_index"])
        if record.state == "closed":
            if DELTAS.get(kind) in ("message", "reasoning"):  # text after its item ended
                self._text(out, DELTAS[kind], event.get("delta") or "")
            return  # any other late event of an item that is out can only be dropped
        if kind in STARTS:
            if record.state == "open" and record.client is not None:
                self._start_part(out, record.client, event, raw)
            else:
                record.starts.append((event, raw))
        elif kind in _DONE:
            record.closes.append((event, raw))
            item = event.get("item") or {}
            if kind == "response.output_item.done":
                record.kind = record.kind or str(item.get("type"))
                if record.state == "pending" and not has_content(item):
                    self._open_upstream(out, record)
                    self._close(out)
        else:
            opened = self._open_upstream(out, record)
            if kind in DELTAS:
                delta = event.get("delta") or ""
                if opened.kind in CALL_ITEMS:
                    opened.args += delta
                else:
                    at = self._ensure_part(
                        out, opened, event.get("content_index", event.get("summary_index", 0))
                    )
                    opened.parts[at] += delta
            self._send(out, event, raw, output_index=opened.index)

    # ----- items -----

    def _open_item(self, item: dict[str, Any], upstream: UpstreamItem | None = None) -> ClientItem:
        opened = ClientItem(len(self._items), item, upstream)
        self._items.append(opened)
        self._open = opened
        return opened

    def _open_built(self, out: _Out, kind: str, call: tuple[str, str] | None = None) -> ClientItem:
        self._close(out)
        item = built_item(kind, self.suffix, len(self._items), call)
        opened = self._open_item(item)
        self._send(
            out, {"type": "response.output_item.added", "output_index": opened.index, "item": item}
        )
        return opened

    def _start_part(
        self, out: _Out, item: ClientItem, event: dict[str, Any], raw: bytes | None
    ) -> None:
        at = event.get("content_index", event.get("summary_index", 0))
        self._close_parts(out, item, before=at)
        item.parts.setdefault(at, "")
        item.part = at
        self._send(out, event, raw, output_index=item.index)

    def _ensure_part(self, out: _Out, item: ClientItem, at: int | None = None) -> int:
        at = item.next_part() if at is None else at
        if at not in item.parts:
            self._start_part(out, item, item.part_added(at), None)
        return at

    def _text(self, out: _Out, kind: str, text: str) -> None:
        item = self._open
        if item is None or item.kind != kind:
            waiting = next(
                (r for r in self._up.values() if r.state == "pending" and r.kind == kind), None
            )
            item = self._open_upstream(out, waiting) if waiting else self._open_built(out, kind)
        at = self._ensure_part(out, item)
        item.parts[at] += text
        self._send(out, item.text_delta(at, text))

    def _tool_call(self, out: _Out, call: Any) -> None:
        position = field_of(call, "index")
        function = field_of(call, "function")
        call_id = field_of(call, "id")
        item = None
        if not call_id:  # more arguments: of the call at that index, else of the open call
            item = self._calls.get(position)
            if item is None and self._open is not None and self._open.kind in CALL_ITEMS:
                item = self._open
        if call_id:
            item = self._calls[position] = self._open_call(out, call_id, field_of(function, "name"))
        if item is None or item is not self._open:
            return  # arguments of a call that is not open (nor known): nothing to attach them to
        arguments = field_of(function, "arguments")
        if arguments:
            item.args += arguments
            if not item.wrapped:
                self._send(out, item.call_delta(arguments))

    def _open_call(self, out: _Out, call_id: str, name: str | None) -> ClientItem:
        """The item of a call's head: the upstream's item of that ``call_id`` (even when
        its head did not come through), else a new one."""
        index = self._by_call.get(call_id)
        if index is None:
            found = self._native(("response.output_item.added",), item_call_id=call_id)
            if found is not None:
                index = found.get("output_index", -1)
                self._record(index, (found, None))
        record = self._up.get(index) if index is not None else None
        head = (record.added[0].get("item") or {}) if record and record.added else {}
        if record is not None and record.state != "closed" and name in (None, head.get("name")):
            return self._open_upstream(out, record)
        custom = name in self.custom
        item = self._open_built(
            out, "custom_tool_call" if custom else "function_call", (call_id, name or "")
        )
        item.wrapped = custom and self.wire is None
        return item

    # ----- closing -----

    def _close_parts(self, out: _Out, item: ClientItem, before: int = 1 << 30) -> None:
        """Send the ``*.done`` events of the item's open parts before part ``before``."""
        for at in sorted(item.parts):
            if at < before and at not in item.closed_parts:
                held = item.upstream.take_closes(at) if item.upstream is not None else {}
                self._emit(out, item.part_done(at, held))

    def _close(self, out: _Out) -> None:
        item = self._open
        if item is None:
            return
        self._open = None
        self._close_parts(out, item)
        record = item.upstream
        held = record.take_closes() if record is not None else {}
        if record is not None:
            record.state = "closed"
        self._emit(out, item.item_done(held, self.body, self._signed))

    # ----- the end -----

    def finish(self) -> _Out:
        """Close the open item and end the response (once)."""
        out: _Out = []
        if self.finished:
            return out
        self.finished = True
        self.start(out)
        self._close(out)
        output = [item.final for item in self._items]
        status, details = status_for(self.finish_reason)
        found = self._native(_TERMINAL)
        native = self._terminal or ((found, None) if found is not None else None)
        if native is None:
            response = self._response()
            response.update(status=status, incomplete_details=details, output=output)
            response["completed_at"] = int(time.time()) if status == "completed" else None
            response["usage"] = responses_usage(self.usage)
            native = ({"type": "", "response": response}, None)
        event, raw = native
        response = dict(event["response"])
        if response.get("output") != output:
            response["output"] = output
        if self.finish_reason is not None and response.get("status") != status:
            response.update(status=status, incomplete_details=details)
        if response != event["response"] or not event["type"]:
            kind = _TERMINAL[0] if response.get("status") == "completed" else _TERMINAL[1]
            event, raw = {**event, "type": kind, "response": response}, None
        self._send(out, event, raw)
        return out

    def fail(self, error: BaseException) -> _Out:
        """The stream broke after it started: ``response.failed`` with the items sent so
        far (the open one ``incomplete``: a half-written call must not be run)."""
        out: _Out = []
        if self.finished:
            return out
        self.finished = True
        self.start(out)
        output = [
            item.final if item is not self._open else {**item.item, "status": "incomplete"}
            for item in self._items
        ]
        event = getattr(error, "event", None)
        if isinstance(event, dict) and event.get("type") == "response.failed":
            response = {**event.get("response", {}), "output": output}
        else:
            failure = classify(error)
            native = event if isinstance(event, dict) else {}
            code = native.get("code") or (
                "rate_limit_exceeded" if failure.status == 429 else "server_error"
            )
            message = native.get("message") or failure.message
            response = self._response()
            response.update(
                status="failed", output=output, error={"code": code, "message": message}
            )
        self._send(out, {"type": "response.failed", "response": response})
        return out


_NONE: Any = object()


def _calls_of(chunk: Any) -> list[Any]:
    for choice in (field_of(chunk, "choices") or [])[:1]:
        delta = field_of(choice, "delta")
        return list(field_of(delta, "tool_calls") or []) if delta is not None else []
    return []
