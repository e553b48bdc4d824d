"""The unit the server writes: one SSE event, possibly delayed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "sse"]


@dataclass(frozen=True)
class Frame:
    """One SSE event on the wire. ``content`` marks frames that carry a delta
    (text, thinking, refusal or tool arguments): faults and recorded offsets count
    those only."""

    data: bytes
    content: bool = False


def sse(payload: Any, event: str | None = None) -> bytes:
    body = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {body}\n\n".encode()
