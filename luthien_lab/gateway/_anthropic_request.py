"""An Anthropic Messages request as the policy sees it, and back.

The policy sees every request in OpenAI's chat format (:class:`Request`), whatever
API the client spoke. For an Anthropic upstream the view is :func:`native_view`:
``system`` and ``messages`` become OpenAI messages, client tools become function
tools, ``stop_sequences`` becomes ``stop``; every other field keeps its Anthropic
name and value (``thinking``, ``metadata``, ``context_management``, fields this code
has never heard of). :func:`native_body` turns the policy's final request back into
the body to send: the client's own value for every field the policy did not change,
and for ``messages`` the client's own message for every message the policy did not
change. Content with no OpenAI form (documents, server tool blocks, citations) stays
in the view as the native block, so a policy that edits a message keeps it.

For an OpenAI-protocol upstream, ``_anthropic_translate`` translates instead.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.gateway._anthropic_checks import bad_request, short
from luthien_lab.gateway._wire import WireContext

__all__ = ["assistant_view", "image_part", "native_body", "native_view", "strip_provider"]


def strip_provider(model: str) -> str:
    """``anthropic/claude-x`` -> ``claude-x`` (the name the upstream knows)."""
    return model.split("/", 1)[1] if "/" in model else model


# ----- content blocks <-> OpenAI parts -----


def image_part(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        return block
    url: Any
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = source.get("url")
    else:
        return block  # a file id or a type to come: keep it native
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    part.update({k: v for k, v in block.items() if k not in ("type", "source")})
    return part


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request("an image_url part needs a 'url'")
    if url.startswith("data:") and ";base64," in url:
        media, _, data = url[5:].partition(";base64,")
        source: dict[str, Any] = {"type": "base64", "media_type": media, "data": data}
    else:
        source = {"type": "url", "url": url}
    block = {"type": "image", "source": source}
    block.update({k: v for k, v in part.items() if k not in ("type", "image_url")})
    return block


def _parts(content: Any) -> Any:
    """Anthropic content (a string or blocks) as OpenAI content."""
    if isinstance(content, str):
        return content
    return [image_part(b) if b.get("type") == "image" else b for b in content]


def _blocks(content: Any) -> Any:
    """OpenAI content as Anthropic content; parts with no OpenAI meaning pass as they are."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise bad_request(f"message content must be a string or a list, got {short(content)}")
    out = []
    for part in content:
        if isinstance(part, str):
            out.append({"type": "text", "text": part})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            out.append(_image_block(part))
        else:
            out.append(part)
    return out


# ----- messages: the view -----


def _user_view(content: Any, role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    rest = []
    for block in content:
        if block.get("type") == "tool_result":
            message = {"role": "tool", "tool_call_id": block.get("tool_use_id")}
            message["content"] = _parts(block.get("content", ""))
            message.update({k: v for k, v in block.items() if k not in _RESULT_KEYS})
            out.append(message)
        else:
            rest.append(block)
    if rest or not out:
        out.append({"role": role, "content": _parts(rest)})
    return out


_RESULT_KEYS = ("type", "tool_use_id", "content")


def assistant_view(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    thinking = []
    calls = []
    parts = []
    for block in content:
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
        elif kind == "tool_use":
            call = {
                "id": block.get("id"),
                "type": "function",
                "function": {
                    "name": block.get("name"),
                    "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
                },
            }
            call.update(
                {k: v for k, v in block.items() if k not in ("type", "id", "name", "input")}
            )
            calls.append(call)
        else:
            parts.append(block)
    message: dict[str, Any] = {"role": "assistant"}
    if len(parts) == 1 and set(parts[0]) == {"type", "text"} and parts[0]["type"] == "text":
        message["content"] = parts[0]["text"]
    elif parts:
        message["content"] = parts
    else:
        message["content"] = None if calls else ""
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _view_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = message["role"]
    if role == "assistant":
        return [assistant_view(message["content"])]
    return _user_view(message["content"], role)


def _messages_view(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[Any, int]]]:
    """The OpenAI messages for ``system`` + ``messages``, and for each native source
    (``"system"`` or a message index) how many of them it became."""
    out: list[dict[str, Any]] = []
    groups: list[tuple[Any, int]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _parts(system)})
        groups.append(("system", 1))
    for i, message in enumerate(body["messages"]):
        view = _view_of(message)
        out.extend(view)
        groups.append((i, len(view)))
    return out, groups


# ----- messages: back to native -----


def _native_of(message: dict[str, Any], where: str) -> dict[str, Any]:
    role = message.get("role")
    if role == "tool":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        block["content"] = _blocks(message.get("content"))
        block.update(
            {k: v for k, v in message.items() if k not in ("role", "tool_call_id", "content")}
        )
        return {"role": "user", "content": [block]}
    if role == "assistant":
        blocks: list[dict[str, Any]] = list(message.get("thinking_blocks") or [])
        content = _blocks(message.get("content"))
        if isinstance(content, str):
            if content:
                blocks.append({"type": "text", "text": content})
        else:
            blocks.extend(content)
        for j, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments") or "{}"
            try:
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                raise bad_request(
                    f"{where}.tool_calls.{j}.function.arguments: not valid JSON "
                    f"(set by the policy): {short(arguments)}"
                ) from None
            use = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
            use["input"] = arguments
            use.update({k: v for k, v in call.items() if k not in ("id", "type", "function")})
            blocks.append(use)
        return {"role": "assistant", "content": blocks}
    if role in ("user", "system"):
        return {"role": role, "content": _blocks(message.get("content"))}
    raise bad_request(f"{where}.role: the policy produced a message with role {short(role)}")


def _merge_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results of one turn go in one user message, as Anthropic requires."""
    out: list[dict[str, Any]] = []
    for message in messages:
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous.get("_results")
            and message["role"] == "user"
            and isinstance(message["content"], list)
            and message["content"]
            and message["content"][0].get("type") == "tool_result"
        ):
            previous["content"] = previous["content"] + message["content"]
            continue
        if (
            message["role"] == "user"
            and isinstance(message["content"], list)
            and message["content"]
            and message["content"][0].get("type") == "tool_result"
        ):
            message = {**message, "_results": True}
        out.append(message)
    for message in out:
        message.pop("_results", None)
    return out


def _native_messages(
    final: list[dict[str, Any]], body: dict[str, Any], wire: WireContext
) -> tuple[Any, list[dict[str, Any]]]:
    """(system, messages) for the policy's final messages: each run of messages that
    equals the view of one native source is that source, as the client sent it."""
    view: list[dict[str, Any]] = wire.extra["view_messages"]
    groups: list[tuple[Any, int]] = wire.extra["groups"]
    starts = []
    position = 0
    for source, count in groups:
        starts.append((source, view[position : position + count]))
        position += count
    system: Any = None
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    next_group = 0
    i = 0
    while i < len(final):
        matched = False
        for g in range(next_group, len(starts)):
            source, messages = starts[g]
            if final[i : i + len(messages)] == messages:
                out.extend(_merge_results(pending))
                pending = []
                if source == "system":
                    system = body.get("system")
                else:
                    out.append(body["messages"][source])
                i += len(messages)
                next_group = g + 1
                matched = True
                break
        if matched:
            continue
        message = final[i]
        if i == 0 and message.get("role") == "system" and system is None and not out:
            system = _blocks(message.get("content"))
        else:
            pending.append(_native_of(message, f"messages.{i}"))
        i += 1
    out.extend(_merge_results(pending))
    return system, out


# ----- tools -----


def _tool_view(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        return tool  # a server tool: the policy sees it as the upstream will
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if "description" in tool:
        function["description"] = tool["description"]
    view: dict[str, Any] = {"type": "function", "function": function}
    view.update({k: v for k, v in tool.items() if k not in ("name", "description", "input_schema")})
    if view.get("type") != "function":
        view["native_type"] = view["type"]
        view["type"] = "function"
    return view


def _tool_native(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise bad_request(f"{where}: the policy produced a tool that is not an object")
    if tool.get("type") != "function":
        return tool
    function = tool.get("function") or {}
    native: dict[str, Any] = {"name": function.get("name")}
    if function.get("description") is not None:
        native["description"] = function["description"]
    native["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    extras = {k: v for k, v in tool.items() if k not in ("type", "function", "native_type")}
    if "native_type" in tool:
        native["type"] = tool["native_type"]
    native.update(extras)
    return native


# ----- the whole request -----

_MAPPED = frozenset({"model", "system", "messages", "tools", "stop_sequences", "stream"})


def native_view(body: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields of the policy's ``Request``, what :func:`native_body` needs later)."""
    messages, groups = _messages_view(body)
    view: dict[str, Any] = {k: v for k, v in body.items() if k not in _MAPPED}
    view["model"] = model
    view["messages"] = messages
    view["stream"] = body.get("stream") is True
    if "tools" in body:
        view["tools"] = [_tool_view(tool) for tool in body["tools"]]
    if "stop_sequences" in body:
        view["stop"] = body["stop_sequences"]
    return view, {"view_messages": messages, "groups": groups}


def native_body(wire: WireContext, final: dict[str, Any]) -> dict[str, Any]:
    """The body to send upstream for the policy's final request (``model_dump()``)."""
    body = dict(wire.body)
    changed = wire.changed_fields(final)
    wire.extra["changed"] = changed
    for key in changed:
        present = key in final and final[key] is not None
        if key in ("model", "stream"):
            continue
        if key == "messages":
            system, messages = _native_messages(final.get("messages") or [], wire.body, wire)
            body["messages"] = messages
            if system is None:
                body.pop("system", None)
            else:
                body["system"] = system
        elif key == "tools":
            if present:
                body["tools"] = [_tool_native(t, f"tools.{i}") for i, t in enumerate(final[key])]
            else:
                body.pop("tools", None)
        elif key == "stop":
            if present:
                body["stop_sequences"] = final[key]
            else:
                body.pop("stop_sequences", None)
        elif present:
            body[key] = final[key]
        else:
            body.pop(key, None)
    body["model"] = strip_provider(final["model"])
    return body
