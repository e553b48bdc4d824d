"""The output items of a Responses stream, for :class:`ResponsesStreamWriter`.

:class:`UpstreamItem` is an item the upstream sent, with the events the writer holds for
it; :class:`ClientItem` is an item as the client sees it (its index, and the text and
arguments really streamed into it), and builds the events that start, feed and close
it. The ``*.done`` events are built from what was streamed: the upstream's own event
(bytes and all) when that says the same, the upstream's event patched with the streamed
text when the policy changed it, a new event when the upstream sent none.
"""

from __future__ import annotations

from typing import Any

from luthien_lab.gateway._responses_object import (
    CALL_ITEMS,
    call_item,
    encrypted_reasoning,
    message_item,
    reasoning_item,
    text_part,
    unwrap_custom,
)

__all__ = [
    "CALL_DONE",
    "DELTAS",
    "PART_DONE",
    "STARTS",
    "ClientItem",
    "Emit",
    "Held",
    "UpstreamItem",
    "built_item",
    "has_content",
    "part_of",
]

Held = tuple[dict[str, Any], bytes | None]
"""A native event and its raw bytes (None: not sent by the upstream as it is)."""
Emit = tuple[dict[str, Any], bytes | None, dict[str, Any]]
"""An event to send: the event, its native bytes (if any), the fields to change."""

STARTS = frozenset({"response.content_part.added", "response.reasoning_summary_part.added"})
DELTAS = {
    "response.output_text.delta": "message",
    "response.reasoning_summary_text.delta": "reasoning",
    "response.function_call_arguments.delta": "call",
    "response.custom_tool_call_input.delta": "call",
}
PART_DONE = {
    "response.output_text.done": "text",
    "response.content_part.done": "part",
    "response.reasoning_summary_text.done": "text",
    "response.reasoning_summary_part.done": "part",
}
CALL_DONE = {
    "function_call": "response.function_call_arguments.done",
    "custom_tool_call": "response.custom_tool_call_input.done",
}
_PREFIX = {"message": "msg", "reasoning": "rs", "function_call": "fc", "custom_tool_call": "ctc"}


def has_content(item: dict[str, Any]) -> bool:
    """Whether a finished upstream item holds content a policy sees (and may still be
    sending): text, summary text, a call."""
    kind = item.get("type")
    if kind == "message":
        parts = item.get("content") or []
        return any(p.get("text") for p in parts if p.get("type") == "output_text")
    if kind == "reasoning":
        return any(p.get("text") for p in item.get("summary") or [])
    return kind in CALL_ITEMS


def part_of(event: dict[str, Any]) -> int | None:
    """The content (summary) index a part's ``*.done`` event is about."""
    if event.get("type") not in PART_DONE:
        return None
    value = event.get("content_index", event.get("summary_index"))
    return value if isinstance(value, int) else None


def with_text(part: dict[str, Any], text: str) -> dict[str, Any]:
    """A part with ``text``: its annotations point into the text it had, not this one."""
    if part.get("text") == text:
        return part
    out = {**part, "text": text}
    if out.get("annotations"):
        out["annotations"] = []
    return out


def built_item(
    kind: str, suffix: str, index: int, call: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A new item of ``kind`` (in progress) for content with no upstream item."""
    ident = f"{_PREFIX.get(kind, 'fc')}_{suffix}_{index}"
    if kind == "message":
        return message_item(ident, "", "in_progress")
    if kind == "reasoning":
        return reasoning_item(ident, None)
    call_id, name = call or (ident, "")
    return call_item(ident, call_id, name, "", kind, "in_progress")


class UpstreamItem:
    """One upstream output item: its held events and where it stands on the client. A
    record can exist before its ``output_item.added`` reaches the writer (a policy that
    holds a call back lets its ``*.done`` events through first)."""

    __slots__ = ("added", "client", "closes", "kind", "starts", "state")

    def __init__(self) -> None:
        self.added: Held | None = None
        self.kind = ""
        self.starts: list[Held] = []
        self.closes: list[Held] = []
        self.state = "pending"  # -> "open" -> "closed"
        self.client: ClientItem | None = None

    def take_closes(self, at: int | None = None) -> dict[str, Held]:
        """The held ``*.done`` events (of part ``at`` only, if given), by type."""
        taken = [h for h in self.closes if at is None or part_of(h[0]) == at]
        self.closes = [h for h in self.closes if not any(h is t for t in taken)]
        return {h[0].get("type", ""): h for h in taken}


class ClientItem:
    """One output item as the client sees it."""

    __slots__ = (
        "args", "closed_parts", "final", "index", "item", "kind", "part", "parts", "upstream",
        "wrapped",
    )  # fmt: skip

    def __init__(self, index: int, item: dict[str, Any], upstream: UpstreamItem | None) -> None:
        self.index = index
        self.item = item
        self.kind = str(item.get("type"))
        self.upstream = upstream
        self.parts: dict[int, str] = {}  # content (summary) index -> the text sent
        self.part: int | None = None
        self.closed_parts: set[int] = set()
        self.args = str(item.get(CALL_ITEMS.get(self.kind, ""), "") or "")
        self.wrapped = False  # a custom tool called as a function by a chat upstream
        self.final: dict[str, Any] = item

    @property
    def ids(self) -> dict[str, Any]:
        return {"item_id": self.item.get("id"), "output_index": self.index}

    @property
    def value(self) -> str:
        """A call's arguments (a custom tool's input) as the client gets them."""
        return unwrap_custom(self.args) if self.wrapped else self.args

    def next_part(self) -> int:
        """Where rebuilt text goes: the open part, else a new one."""
        if self.part is not None and self.part not in self.closed_parts:
            return self.part
        return len(self.parts)

    def part_added(self, at: int) -> dict[str, Any]:
        if self.kind == "message":
            part: dict[str, Any] = text_part("")
            return {
                "type": "response.content_part.added",
                **self.ids,
                "content_index": at,
                "part": part,
            }
        part = {"type": "summary_text", "text": ""}
        return {
            "type": "response.reasoning_summary_part.added",
            **self.ids,
            "summary_index": at,
            "part": part,
        }

    def text_delta(self, at: int, text: str) -> dict[str, Any]:
        if self.kind == "message":
            fields = {"content_index": at, "delta": text, "logprobs": []}
            return {"type": "response.output_text.delta", **self.ids, **fields}
        return {
            "type": "response.reasoning_summary_text.delta",
            **self.ids,
            "summary_index": at,
            "delta": text,
        }

    def call_delta(self, text: str) -> dict[str, Any]:
        kind = (
            "function_call_arguments" if self.kind == "function_call" else "custom_tool_call_input"
        )
        return {"type": f"response.{kind}.delta", **self.ids, "delta": text}

    def part_done(self, at: int, held: dict[str, Held]) -> list[Emit]:
        """The two ``*.done`` events of part ``at``, with the text streamed into it."""
        self.closed_parts.add(at)
        text = self.parts[at]
        message = self.kind == "message"
        key = "content_index" if message else "summary_index"
        kinds = ("response.output_text.done", "response.content_part.done")
        if not message:
            kinds = ("response.reasoning_summary_text.done", "response.reasoning_summary_part.done")
        blank = text_part(text) if message else {"type": "summary_text", "text": text}
        out: list[Emit] = []
        for kind in kinds:
            event, raw = held.get(kind, ({"type": kind, **self.ids, key: at}, None))
            patch: dict[str, Any] = {"output_index": self.index}
            if PART_DONE[kind] == "text":
                patch["text"] = text
            else:
                patch["part"] = with_text(event.get("part") or blank, text)
            out.append((event, raw, patch))
        return out

    def item_done(
        self, held: dict[str, Held], body: dict[str, Any], signed: list[Any]
    ) -> list[Emit]:
        """A call's ``*.done`` and the item's ``output_item.done``; :attr:`final` is then
        the item as it ends up in ``response.completed``."""
        out: list[Emit] = []
        if self.kind in CALL_ITEMS:
            field = CALL_ITEMS[self.kind]
            kind = CALL_DONE[self.kind]
            if self.wrapped and self.value:  # its deltas were held: wrapped JSON
                out.append(
                    (
                        {
                            "type": "response.custom_tool_call_input.delta",
                            **self.ids,
                            "delta": self.value,
                        },
                        None,
                        {},
                    )
                )
            event, raw = held.get(kind, ({"type": kind, **self.ids}, None))
            out.append((event, raw, {"output_index": self.index, field: self.value}))
        native = held.get("response.output_item.done")
        self.final = self._final(native[0].get("item") if native else None, body, signed)
        event, raw = native or ({"type": "response.output_item.done"}, None)
        out.append((event, raw, {"output_index": self.index, "item": self.final}))
        return out

    def _final(
        self, native: dict[str, Any] | None, body: dict[str, Any], signed: list[Any]
    ) -> dict[str, Any]:
        final = dict(native or self.item)
        if native is None and "status" in final:
            final["status"] = "completed"
        if self.kind in ("message", "reasoning"):
            key = "content" if self.kind == "message" else "summary"
            native_parts = final.get(key) or []
            parts = [
                with_text(p, self.parts[i]) if "text" in p else p
                for i, p in enumerate(native_parts)
                if i in self.parts or "text" not in p  # a text part never sent is out
            ]
            for i in sorted(self.parts):
                if i >= len(native_parts):
                    text = self.parts[i]
                    parts.append(
                        text_part(text)
                        if key == "content"
                        else {"type": "summary_text", "text": text}
                    )
            final[key] = parts
        if self.kind == "reasoning" and native is None:
            encrypted = encrypted_reasoning({"thinking_blocks": signed}, body)
            if encrypted is not None:
                final["encrypted_content"] = encrypted
        elif self.kind in CALL_ITEMS:
            final[CALL_ITEMS[self.kind]] = self.value
        return final
