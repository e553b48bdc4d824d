"""What the Anthropic Messages API itself refuses, checked before anything else:
a missing or mistyped known field is a 400 naming it, never a silent coercion
(``stream: "false"`` is an error, not False). Unknown fields are not checked here:
they go through to the upstream, which knows its own API best.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.gateway._errors import GatewayError

__all__ = ["bad_request", "check_body", "short"]


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", param=param)


_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "a string"),
    "max_tokens": (int, "an integer"),
    "messages": (list, "a list of messages"),
    "system": ((str, list), "a string or a list of text blocks"),
    "stream": (bool, "a boolean"),
    "metadata": (dict, "an object"),
    "tools": (list, "a list of tools"),
    "tool_choice": (dict, "an object"),
    "thinking": (dict, "an object"),
    "stop_sequences": (list, "a list of strings"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "top_k": (int, "an integer"),
}


def check_body(body: dict[str, Any], *, count_tokens: bool = False) -> None:
    """400 for what the Anthropic API itself refuses: a missing or mistyped known
    field (never coerced: ``stream: "false"`` is an error, not False)."""
    required = ("model", "messages") if count_tokens else ("model", "max_tokens", "messages")
    for name in required:
        if name not in body:
            raise bad_request(f"{name}: Field required", name)
    for name, (kind, what) in _TYPES.items():
        if name not in body or (body[name] is None and name not in required):
            continue
        value = body[name]
        if isinstance(value, bool) and kind is not bool:
            raise bad_request(f"{name}: must be {what}, got {json.dumps(value)}", name)
        if not isinstance(value, kind):
            raise bad_request(f"{name}: must be {what}, got {short(value)}", name)
    if not body["model"]:
        raise bad_request("model: must not be empty", "model")
    if "max_tokens" in body and body["max_tokens"] < 1:
        raise bad_request(f"max_tokens: must be at least 1, got {body['max_tokens']}", "max_tokens")
    if not body["messages"]:
        raise bad_request("messages: at least one message is required", "messages")
    for i, message in enumerate(body["messages"]):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise bad_request(f"{where}: a message must be an object, got {short(message)}", where)
        if message.get("role") not in ("user", "assistant", "system"):
            raise bad_request(
                f"{where}.role: must be 'user', 'assistant' or 'system', "
                f"not {short(message.get('role'))}",
                f"{where}.role",
            )
        content = message.get("content")
        if not isinstance(content, str | list):
            raise bad_request(
                f"{where}.content: must be a string or a list of content blocks", where
            )
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise bad_request(
                        f"{where}.content.{j}: a content block must be an object with a 'type'",
                        f"{where}.content.{j}",
                    )
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise bad_request(f"tools.{i}: a tool must be an object with a 'name'", f"tools.{i}")
    for i, stop in enumerate(body.get("stop_sequences") or []):
        if not isinstance(stop, str):
            raise bad_request(f"stop_sequences.{i}: must be a string", f"stop_sequences.{i}")


def short(value: Any) -> str:
    """``value`` as JSON, cut to fit in an error message."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
