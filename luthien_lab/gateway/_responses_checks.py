"""Checking a Responses API request body at the edge: a 400 naming the field (``param``)
for what the Responses API itself refuses, before anything reaches a policy or the
upstream. Never coerced: ``stream: "yes"`` is an error, not True. Unknown fields are
left to the upstream (a native one judges them; the chat translation refuses them).
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.gateway._errors import GatewayError

__all__ = ["bad", "check_body", "short"]

_CALLS = {"function_call": "arguments", "custom_tool_call": "input"}
_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
_ROLES = ("user", "system", "developer", "assistant")


def bad(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code=code, param=param)


def short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NUMBER = ((int, float), "a number")
_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "a string"),
    "input": ((str, list), "a string or a list of input items"),
    "instructions": (str, "a string"),
    "stream": (bool, "a boolean"),
    "tools": (list, "a list of tools"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": (bool, "a boolean"),
    "max_output_tokens": (int, "an integer"),
    "max_tool_calls": (int, "an integer"),
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "top_logprobs": (int, "an integer"),
    "text": (dict, "an object"),
    "reasoning": (dict, "an object"),
    "metadata": (dict, "an object"),
    "store": (bool, "a boolean"),
    "background": (bool, "a boolean"),
    "include": (list, "a list of strings"),
    "previous_response_id": (str, "a string"),
    "user": (str, "a string"),
    "truncation": (str, "a string"),
    "service_tier": (str, "a string"),
    "prompt_cache_key": (str, "a string"),
    "safety_identifier": (str, "a string"),
    "stream_options": (dict, "an object"),
}


def check_body(body: dict[str, Any]) -> None:
    """400 naming the field for what the Responses API itself refuses: a missing
    model, a mistyped known field (never coerced: ``stream: "yes"`` is an error), a
    malformed input item or tool. Unknown fields are the upstream's to judge."""
    if "model" not in body:
        raise bad("model: Field required", "model", "missing_required_parameter")
    for name, (kind, what) in _TYPES.items():
        if name not in body or (body[name] is None and name != "model"):
            continue
        value = body[name]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise bad(f"{name}: must be {what}, got {short(value)}", name, "invalid_type")
    if not body["model"]:
        raise bad("model: must not be empty", "model")
    for name in ("max_output_tokens", "max_tool_calls"):
        if body.get(name) is not None and body[name] < 1:
            raise bad(
                f"{name}: must be at least 1, got {body[name]}", name, "integer_below_min_value"
            )
    for name, value in (body.get("metadata") or {}).items():
        if not isinstance(value, str):
            raise bad(f"metadata.{name}: metadata values must be strings", f"metadata.{name}")
    for i, entry in enumerate(body.get("include") or []):
        if not isinstance(entry, str):
            raise bad(f"include.{i}: must be a string", f"include.{i}")
    if isinstance(body.get("tool_choice"), dict) and not isinstance(
        body["tool_choice"].get("type"), str
    ):
        raise bad("tool_choice: an object tool choice needs a 'type'", "tool_choice")
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad(f"tools.{i}: a tool must be an object with a 'type'", f"tools.{i}")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise bad(f"tools.{i}.name: a function tool needs a 'name'", f"tools.{i}.name")
    if isinstance(body.get("input"), list):
        for i, item in enumerate(body["input"]):
            _check_item(item, f"input.{i}")


def _check_item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise bad(f"{where}: an input item must be an object, got {short(item)}", where)
    kind = item.get("type", "message" if "role" in item else None)
    if not isinstance(kind, str):
        raise bad(f"{where}: an input item needs a 'type' (or a 'role')", f"{where}.type")
    if kind == "message":
        if item.get("role") not in _ROLES:
            raise bad(
                f"{where}.role: must be one of {', '.join(_ROLES)}, not {short(item.get('role'))}",
                f"{where}.role",
            )
        content = item.get("content")
        if not isinstance(content, str | list):
            raise bad(f"{where}.content: must be a string or a list of parts", f"{where}.content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise bad(
                        f"{where}.content.{j}: a content part must be an object with a 'type'",
                        f"{where}.content.{j}",
                    )
    elif kind in _CALLS or kind in _OUTPUTS:
        if not isinstance(item.get("call_id"), str):
            raise bad(f"{where}.call_id: must be a string", f"{where}.call_id")
        field = _CALLS.get(kind)
        if field is not None and not isinstance(item.get(field), str):
            raise bad(f"{where}.{field}: must be a string", f"{where}.{field}")
        if field is not None and not isinstance(item.get("name"), str):
            raise bad(f"{where}.name: must be a string", f"{where}.name")
        if kind in _OUTPUTS and not isinstance(item.get("output"), str | list):
            raise bad(f"{where}.output: must be a string or a list", f"{where}.output")
    elif kind == "reasoning" and not isinstance(item.get("summary", []), list):
        raise bad(f"{where}.summary: must be a list", f"{where}.summary")
