"""What a request asks: the text of its last user message (the local provider answers
prompt cases by it; a recording names its case by it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["last_user_prompt", "text_of"]


def text_of(content: Any, kinds: tuple[str, ...] = ("text", "input_text")) -> str:
    """The text of a message's content: a string, or the parts of those ``kinds``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in kinds
        ]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return ""


def _is_tool_result(message: Mapping[str, Any]) -> bool:
    if message.get("role") == "tool":
        return True
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )


def last_user_prompt(messages: Any) -> tuple[str, bool]:
    """``(text of the last user message, whether the conversation ends on a tool result)``."""
    if not isinstance(messages, list):
        return "", False
    after_tool = bool(messages) and isinstance(messages[-1], dict) and _is_tool_result(messages[-1])
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = text_of(message.get("content"))
            if text:
                return text, after_tool
    return "", after_tool
