"""An Anthropic Messages request for an OpenAI-protocol upstream: translated as well
as the target allows; what it cannot express (server tools, documents, fields with no
OpenAI meaning) is a 400 naming the field. Fields that only tune how Anthropic serves
a request (caching, tiers, regions, context editing) are dropped: the answer is the
same without them.
"""

from __future__ import annotations

from typing import Any

from luthien_lab.gateway._anthropic_checks import bad_request
from luthien_lab.gateway._anthropic_request import assistant_view, image_part

__all__ = ["openai_request"]

# Fields that only tune how Anthropic serves a request (caching, tiers, regions,
# context editing): an OpenAI-protocol upstream answers the same without them.
_DROPPED_FOR_OPENAI = frozenset(
    {"cache_control", "context_management", "service_tier", "inference_geo", "container"}
)
_OPENAI_SAME = ("temperature", "top_p", "top_k")


def _effort(thinking: Any, output_config: Any) -> str | None:
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort in ("low", "medium", "high"):
        return str(effort)
    if not isinstance(thinking, dict) or thinking.get("type") in (None, "disabled"):
        return None
    if thinking.get("type") == "adaptive":
        return "medium"
    budget = thinking.get("budget_tokens") or 0
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _openai_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise bad_request(
            f"{where}: the server tool {tool.get('type', tool.get('name'))!r} has no "
            "equivalent on an OpenAI-protocol upstream (route this model to an Anthropic "
            "upstream, or remove the tool)",
            where,
        )
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _openai_choice(choice: dict[str, Any], out: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise bad_request(
            "tool_choice: use {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}",
            "tool_choice",
        )
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _openai_content(content: Any, where: str, keep_cache: bool) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for j, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            part = {"type": "text", "text": block.get("text", "")}
            if keep_cache and block.get("cache_control"):
                part["cache_control"] = block["cache_control"]
            parts.append(part)
        elif kind == "image":
            part = image_part(block)
            if part is block:
                raise bad_request(f"{where}.{j}.source: this image source cannot be sent upstream")
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        else:
            raise bad_request(
                f"{where}.{j}.type: a {kind!r} block has no equivalent on an OpenAI-protocol "
                "upstream",
                f"{where}.{j}",
            )
    return parts


def _openai_messages(body: dict[str, Any], keep_cache: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if body.get("system"):
        out.append(
            {"role": "system", "content": _openai_content(body["system"], "system", keep_cache)}
        )
    for i, message in enumerate(body["messages"]):
        where = f"messages.{i}.content"
        content = message["content"]
        if message["role"] == "assistant":
            view = assistant_view(content)
            parts = view.get("content")
            if isinstance(parts, list):
                # Server tool blocks and citations have no OpenAI form: their text stays.
                view["content"] = "".join(
                    p.get("text", "") for p in parts if p.get("type") == "text"
                )
            for call in view.get("tool_calls") or []:
                for key in [k for k in call if k not in ("id", "type", "function")]:
                    del call[key]
            out.append(view)
            continue
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        images: list[dict[str, Any]] = []
        rest = []
        for j, block in enumerate(content):
            if block.get("type") != "tool_result":
                rest.append(block)
                continue
            result = block.get("content", "")
            text: Any = result
            if isinstance(result, list):
                converted = _openai_content(result, f"{where}.{j}.content", False)
                text = "\n".join(p["text"] for p in converted if p["type"] == "text")
                images.extend(p for p in converted if p["type"] == "image_url")
            if block.get("is_error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        if images:
            # OpenAI tool messages hold text only: the images follow as the user's.
            label = {"type": "text", "text": "(images returned by the tool calls above)"}
            out.append({"role": "user", "content": [label, *images]})
        if rest:
            out.append(
                {"role": message["role"], "content": _openai_content(rest, where, keep_cache)}
            )
    return out


def openai_request(body: dict[str, Any], model: str, keep_cache: bool) -> dict[str, Any]:
    """The OpenAI chat request for an Anthropic body (``model`` already mapped).
    ``keep_cache``: the model is Anthropic's, reached through litellm, which takes
    ``cache_control`` and ``thinking`` as they are."""
    known = {
        "model", "max_tokens", "system", "messages", "tools", "tool_choice", "stream",
        "stop_sequences", "metadata", "thinking", "output_config", *_OPENAI_SAME,
        *_DROPPED_FOR_OPENAI,
    }  # fmt: skip
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad_request(
            f"{unknown[0]}: this field has no equivalent on an OpenAI-protocol upstream",
            unknown[0],
        )
    out: dict[str, Any] = {"model": model, "messages": _openai_messages(body, keep_cache)}
    out["max_tokens"] = body["max_tokens"]
    out["stream"] = body.get("stream") is True
    for name in _OPENAI_SAME:
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        out["user"] = user_id
    if body.get("tools"):
        out["tools"] = [_openai_tool(t, f"tools.{i}") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        _openai_choice(body["tool_choice"], out)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (
        "enabled",
        "disabled",
        "adaptive",
    ):
        raise bad_request("thinking.type: use 'enabled', 'adaptive' or 'disabled'", "thinking.type")
    if keep_cache and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        out["thinking"] = thinking  # litellm speaks Anthropic's thinking for Anthropic models
        return out
    effort = _effort(thinking, body.get("output_config"))
    if effort is not None:
        out["reasoning_effort"] = effort
    return out
