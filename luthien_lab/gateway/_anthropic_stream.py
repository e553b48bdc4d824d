"""The policy's output as Anthropic Messages responses.

:class:`AnthropicStreamWriter` turns egress chunks into Anthropic SSE events. A chunk
the policy passed through unchanged from an Anthropic upstream (see ``_wire``) is
written as the upstream's own event, byte for byte (its block index renumbered only
when the policy removed an earlier block); any other chunk is rebuilt. The writer
owns the block structure: it opens a block when content of a new kind (or a new
native block) arrives and closes the open one first, so whatever order a policy
emits in (a held-back block after the next one started, a tool call sent whole, text
after tool calls) the client gets a well-formed sequence. A native block whose content
comes in deltas (text, thinking, tool input) opens at its first delta, not at its
start event, which a policy may forward before it sends the block; one that gets no
delta is dropped (an empty block means nothing). The upstream's own
``content_block_stop`` events are re-sent when their block is closed.

:func:`to_anthropic_message` does the same for a whole response: blocks the policy
left alone are the upstream's own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from luthien_lab.gateway._anthropic_format import (
    anthropic_stop_reason,
    finish_reason_for,
    get,
    sse_event,
    usage_of,
)

if TYPE_CHECKING:
    from luthien_lab.gateway._wire import WireContext

__all__ = ["AnthropicStreamConverter", "AnthropicStreamWriter", "sse_event"]

_Out = dict[str, Any] | bytes


class _Block:
    """The block open at the writer: its kind key, client index, upstream index."""

    __slots__ = ("index", "key", "upstream")

    def __init__(self, key: Any, index: int, upstream: int | None) -> None:
        self.key = key
        self.index = index
        self.upstream = upstream


def _reindexed(event: dict[str, Any], raw: bytes, index: int) -> _Out:
    if event.get("index") == index:
        return raw
    return {**event, "index": index}


# Native blocks whose content arrives in deltas: opened lazily, at their first delta.
_DELTA_BLOCKS = frozenset({"text", "thinking", "tool_use", "server_tool_use"})


def _native_key(block: dict[str, Any], upstream: int) -> Any:
    kind = block.get("type")
    if kind in ("text", "thinking"):
        return kind
    if kind == "tool_use":
        return ("tool_use", "native", upstream)
    return ("native", upstream)


class AnthropicStreamWriter:
    """Stateful: :meth:`feed` each egress chunk in order, then :meth:`finish`; each
    returns what to send, in order: event dicts (rebuilt) or bytes (native events).

    ``wire``: the transaction's :class:`WireContext` when the upstream was Anthropic's
    own API (None: every chunk is rebuilt)."""

    def __init__(
        self,
        message_id: str,
        model: str,
        wire: WireContext | None = None,
        error_body: Any = None,
    ) -> None:
        self.message_id = message_id
        self.model = model
        self.wire = wire
        self._error_body = error_body  # error -> (status, body): the dialect's format
        self.started = False
        self.finished = False
        self.finish_reason: str | None = None
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self._open: _Block | None = None
        self._next_index = 0
        self._has_tool_use = False
        self._unnamed_tools = 0
        self._starts: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._stops: dict[int, bytes] = {}
        self._native_delta: tuple[dict[str, Any], bytes] | None = None
        self._native_finish_last = False
        # Native delta blocks whose start came but which are not open yet, and what
        # came after them that must not overtake them: blocks sent whole (upstream
        # index, start) and pings.
        self._pending: set[int] = set()
        self._held_blocks: list[tuple[int, dict[str, Any], bytes]] = []
        self._held_raw: list[bytes] = []
        self._stop_raw: bytes | None = None

    # ----- blocks -----

    def _close(self, out: list[_Out]) -> None:
        block = self._open
        if block is None:
            return
        self._open = None
        raw = self._stops.get(block.upstream) if block.upstream is not None else None
        if raw is not None and block.upstream == block.index:
            out.append(raw)
        else:
            out.append({"type": "content_block_stop", "index": block.index})

    def _open_block(
        self, out: list[_Out], key: Any, start: _Out, upstream: int | None = None
    ) -> int:
        self._close(out)
        index = self._next_index
        self._next_index += 1
        self._open = _Block(key, index, upstream)
        if isinstance(start, dict) and start.get("type") != "content_block_start":
            start = {"type": "content_block_start", "index": index, "content_block": start}
        out.append(start)
        return index

    def _ensure(self, out: list[_Out], kind: str, block: dict[str, Any]) -> int:
        if self._open is not None and self._open.key == kind:
            return self._open.index
        return self._open_block(out, kind, block)

    @staticmethod
    def _delta(out: list[_Out], index: int, delta: dict[str, Any]) -> None:
        out.append({"type": "content_block_delta", "index": index, "delta": delta})

    # ----- the message -----

    def start(self) -> list[_Out]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": dict(self.usage),
        }
        return [{"type": "message_start", "message": message}]

    def feed(self, chunk: Any) -> list[_Out]:
        native = self.wire.native_for(chunk) if self.wire is not None else None
        if native is not None:
            return self._feed_native(native.event, native.raw)
        out = self.start()
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage.update(usage_of(usage))
        for choice in (getattr(chunk, "choices", None) or [])[:1]:
            self._feed_delta(out, choice.delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                self._native_finish_last = False
        return out

    # ----- native events -----

    def _feed_native(self, event: dict[str, Any], raw: bytes) -> list[_Out]:
        kind = event.get("type")
        if kind == "message_start":
            if self.started:
                return []
            self.started = True
            return [raw]
        out = self.start()
        if kind == "content_block_start":
            upstream = event.get("index", -1)
            self._starts[upstream] = (event, raw)
            block = event.get("content_block") or {}
            if block.get("type") in _DELTA_BLOCKS:
                self._pending.add(upstream)
            elif any(p < upstream for p in self._pending):
                self._held_blocks.append((upstream, event, raw))
            else:
                start = _reindexed(event, raw, self._next_index)
                self._open_block(out, _native_key(block, upstream), start, upstream)
        elif kind == "content_block_delta":
            self._native_block_delta(out, event, raw)
        elif kind == "content_block_stop":
            self._stops[event.get("index", -1)] = raw
        elif kind == "message_delta":
            self._native_delta = (event, raw)
            self._native_finish_last = True
        elif kind == "message_stop":
            # Sent by finish(): a policy may pass it on before content it still holds.
            self._stop_raw = raw
        elif self._pending:  # ping, and events to come: after the block they follow
            self._held_raw.append(raw)
        else:
            out.append(raw)
        return out

    def _release(self, out: list[_Out], below: int | None) -> None:
        """Send the held whole blocks (those before upstream index ``below``)."""
        kept = []
        for upstream, event, raw in self._held_blocks:
            if below is not None and upstream >= below:
                kept.append((upstream, event, raw))
                continue
            self._close(out)
            index = self._next_index
            self._next_index += 1
            out.append(_reindexed(event, raw, index))
            stop = self._stops.get(upstream)
            out.append(stop if stop is not None and index == upstream else
                       {"type": "content_block_stop", "index": index})  # fmt: skip
        self._held_blocks = kept

    def _native_block_delta(self, out: list[_Out], event: dict[str, Any], raw: bytes) -> None:
        upstream = event.get("index", -1)
        block = self._open
        if block is None or block.upstream != upstream:
            # The block's first delta (or, when a policy sent the block on after the
            # next one started, its first delta since): open it with its own start,
            # after the whole blocks that came before it upstream.
            self._pending.discard(upstream)
            self._close(out)
            self._release(out, upstream)
            start_event = self._starts.get(upstream)
            start: _Out
            if start_event is not None:
                content_block = start_event[0].get("content_block") or {}
                start = _reindexed(start_event[0], start_event[1], self._next_index)
            else:
                content_block = _block_for_delta(event.get("delta") or {})
                start = {"type": "content_block_start", "index": self._next_index}
                start["content_block"] = content_block
            if content_block.get("type") == "tool_use":
                self._has_tool_use = True
            self._open_block(out, _native_key(content_block, upstream), start, upstream)
            out.extend(self._held_raw)
            self._held_raw.clear()
            block = self._open
            assert block is not None
        out.append(_reindexed(event, raw, block.index))

    # ----- rebuilt chunks -----

    def _feed_delta(self, out: list[_Out], delta: Any) -> None:
        if delta is None:
            return
        reasoning = getattr(delta, "reasoning_content", None)
        if reasoning:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            index = self._ensure(out, "thinking", block)
            self._delta(out, index, {"type": "thinking_delta", "thinking": reasoning})
        for block in getattr(delta, "thinking_blocks", None) or []:
            signature = get(block, "signature")
            # Anthropic upstreams send the signature last, while the block is open.
            if signature and self._open is not None and self._open.key == "thinking":
                self._delta(
                    out, self._open.index, {"type": "signature_delta", "signature": signature}
                )
        for text in (delta.content, getattr(delta, "refusal", None)):
            if text:
                index = self._ensure(out, "text", {"type": "text", "text": ""})
                self._delta(out, index, {"type": "text_delta", "text": text})
        for call in getattr(delta, "tool_calls", None) or []:
            self._feed_tool_call(out, call)

    def _feed_tool_call(self, out: list[_Out], call: Any) -> None:
        position = get(call, "index")
        function = get(call, "function")
        call_id = get(call, "id")
        block = self._open
        is_tool = block is not None and isinstance(block.key, tuple) and block.key[0] == "tool_use"
        key = ("tool_use", "built", position if isinstance(position, int) else 0)
        if block is not None and is_tool and (block.key == key or not call_id):
            index = block.index
        else:
            if not call_id:
                self._unnamed_tools += 1
                call_id = f"toolu_{self.message_id}_{self._unnamed_tools}"
            name = get(function, "name") or ""
            start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            index = self._open_block(out, key, start)
            self._has_tool_use = True
        arguments = get(function, "arguments")
        if arguments:
            self._delta(out, index, {"type": "input_json_delta", "partial_json": arguments})

    # ----- the end -----

    def finish(self) -> list[_Out]:
        """Close the open block and end the message (once)."""
        return self._end(self._stop_raw)

    def fail(self, error: BaseException) -> list[_Out]:
        """The stream broke after it started: one ``error`` event (Anthropic's SDKs
        raise it), and nothing after it."""
        self.finished = True
        if self._error_body is None:
            body: Any = {"type": "error", "error": {"type": "api_error", "message": str(error)}}
        else:
            body = self._error_body(error)[1]
        if isinstance(body, bytes):
            body = json.loads(body)
        return [body]

    def _end(self, stop_raw: bytes | None) -> list[_Out]:
        if self.finished:
            return []
        self.finished = True
        out = self.start()
        self._close(out)
        self._release(out, None)
        out.extend(self._held_raw)
        self._held_raw.clear()
        out.append(self._message_delta())
        out.append(stop_raw if stop_raw is not None else {"type": "message_stop"})
        return out

    def _message_delta(self) -> _Out:
        native = self._native_delta
        if native is not None and self._native_finish_last:
            event, raw = native
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason == "tool_use" and not self._has_tool_use:
                changed = {**event.get("delta", {}), "stop_reason": "end_turn"}
                return {**event, "delta": {**changed, "stop_sequence": None}}
            return raw
        reason = anthropic_stop_reason(self.finish_reason, self._has_tool_use)
        delta: dict[str, Any] = {"stop_reason": reason, "stop_sequence": None}
        usage: dict[str, Any] = dict(self.usage)
        upstream = self._upstream_delta()
        if upstream is not None:
            usage = upstream.get("usage") or usage
            upstream_reason = (upstream.get("delta") or {}).get("stop_reason")
            if anthropic_stop_reason(finish_reason_for(upstream_reason), True) == reason:
                delta = {**upstream.get("delta", {})}
        return {"type": "message_delta", "delta": delta, "usage": usage}

    def _upstream_delta(self) -> dict[str, Any] | None:
        if self._native_delta is not None:
            return self._native_delta[0]
        if self.wire is None:
            return None
        for native in reversed(list(self.wire.natives.values())):
            if native.event.get("type") == "message_delta":
                return native.event
        return None


AnthropicStreamConverter = AnthropicStreamWriter
"""The writer under its earlier name."""


def _block_for_delta(delta: dict[str, Any]) -> dict[str, Any]:
    kind = delta.get("type")
    if kind == "thinking_delta" or kind == "signature_delta":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}
