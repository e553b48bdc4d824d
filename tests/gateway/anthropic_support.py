"""Reading and checking Anthropic SSE streams in tests."""

from __future__ import annotations

import json
from typing import Any


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The ``data:`` payload of every SSE event, in order; each event's ``event:``
    name must equal its payload's ``type``."""
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name = None
        data = None
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        if data is None:
            continue
        event = json.loads(data)
        assert name == event["type"], f"event name {name!r} != payload type {event['type']!r}"
        events.append(event)
    return events


def check_wellformed(events: list[dict[str, Any]]) -> None:
    """Assert ``events`` is a valid Messages stream: message_start first, blocks
    opened in index order 0, 1, 2..., deltas only into the open block, each block
    stopped before the next starts, then one message_delta and message_stop last."""
    kinds = [e["type"] for e in events]
    assert kinds and kinds[0] == "message_start", kinds[:3]
    assert kinds[-1] == "message_stop", kinds[-3:]
    assert kinds.count("message_delta") == 1, kinds
    assert kinds[-2] == "message_delta" or kinds.index("message_delta") > max(
        (i for i, k in enumerate(kinds) if k.startswith("content_block")), default=0
    )
    open_index = None
    next_index = 0
    for event in events[1:-1]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, f"block {event['index']} started while {open_index} open"
            assert event["index"] == next_index, (event["index"], next_index)
            open_index = next_index
            next_index += 1
        elif kind == "content_block_delta":
            assert event["index"] == open_index, f"delta for {event['index']}, open {open_index}"
        elif kind == "content_block_stop":
            assert event["index"] == open_index, (event["index"], open_index)
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "message_delta with a block open"
    assert open_index is None


def accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The final message a client builds from ``events`` (as the SDKs do)."""
    message: dict[str, Any] = dict(events[0]["message"])
    message["content"] = []
    partial: dict[int, str] = {}
    for event in events[1:]:
        kind = event["type"]
        if kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block = message["content"][event["index"]]
            delta = event["delta"]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
            elif delta["type"] == "citations_delta":
                block.setdefault("citations", []).append(delta["citation"])
        elif kind == "content_block_stop":
            if event["index"] in partial:
                message["content"][event["index"]]["input"] = json.loads(partial[event["index"]])
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"] = {**message.get("usage", {}), **event.get("usage", {})}
    return message


def without_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with the message id blanked (each upstream call gets its own)."""
    out = []
    for event in events:
        if event["type"] == "message_start":
            event = {**event, "message": {**event["message"], "id": "<id>"}}
        out.append(event)
    return out
