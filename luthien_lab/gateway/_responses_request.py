"""An OpenAI Responses request as the policy sees it, and back.

The policy sees every request in OpenAI's chat format (:class:`Request`), whatever API
the client spoke. For a Responses-capable upstream the view is :func:`native_view`:
``instructions`` becomes a leading system message and the ``input`` items become chat
messages (consecutive assistant-side items, i.e. reasoning, assistant messages and
tool calls, become one assistant message; tool outputs become tool messages); function
tools become chat function tools; every other field keeps its Responses name and value
(``max_output_tokens``, ``text``, ``reasoning``, ``tool_choice``, ``include``, fields this
code has never heard of). What has no chat form stays native in the view: reasoning
items (their ``encrypted_content`` must reach the upstream byte for byte) as the
assistant message's ``thinking_blocks``, other items (web search calls, item
references...) as native entries of a message's content, other tool types as they are.

:func:`native_body` turns the policy's final request back into the body to send: the
client's own value for every field the policy did not change and, for ``input``, the
client's own items for every message the policy did not change (group alignment, as
in ``_anthropic_request``). With a policy that changes nothing, the upstream gets the
client's body.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.gateway._responses_checks import bad, short
from luthien_lab.gateway._wire import WireContext

__all__ = ["native_body", "native_view", "upstream_name"]

_ASSISTANT_ITEMS = frozenset({"reasoning", "function_call", "custom_tool_call"})
_CALLS = {"function_call": "arguments", "custom_tool_call": "input"}
_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
_ROLES = ("user", "system", "developer", "assistant")
# Content parts (of a message, or of a tool output) as opposed to native items kept in
# a content list: a part of a changed message goes back as a part, anything else as an
# item of its own.
_PARTS = frozenset(
    {"text", "input_text", "output_text", "refusal", "image_url", "input_image", "file",
     "input_file", "input_audio", "summary_text", "reasoning_text"}
)  # fmt: skip


def upstream_name(model: str, prefix: str | None) -> str:
    """The model name the upstream knows: ``openai/gpt-4o`` -> ``gpt-4o`` (only the
    gateway's own provider prefix is removed: ``org/model`` names stay whole)."""
    for known in {prefix, "openai"}:
        if known and model.startswith(f"{known}/"):
            return model[len(known) + 1 :]
    return model


# ----- content parts -----


def _part_view(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    rest = {k: v for k, v in part.items() if k not in ("type", "text")}
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"], **rest}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image = {"url": part["image_url"]}
        if "detail" in part:
            image["detail"] = part["detail"]
        extras = {k: v for k, v in rest.items() if k not in ("image_url", "detail")}
        return {"type": "image_url", "image_url": image, **extras}
    if kind == "input_file" and "file_url" not in part:
        return {"type": "file", "file": {k: v for k, v in part.items() if k != "type"}}
    return part  # a refusal, an audio part, a file by URL, parts to come: native


def _content_view(content: Any) -> Any:
    if isinstance(content, str):
        return content
    return [_part_view(p) for p in content]


def _part_native(part: Any, role: str) -> dict[str, Any]:
    if isinstance(part, str):
        part = {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise bad(f"the policy produced a content part that is not an object: {short(part)}")
    kind = part.get("type")
    rest = {k: v for k, v in part.items() if k not in ("type", "text", "image_url", "file")}
    if kind == "text":
        text_type = "output_text" if role == "assistant" else "input_text"
        return {"type": text_type, "text": part.get("text", ""), **rest}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        out = {"type": "input_image", "image_url": url, **rest}
        out["detail"] = (image.get("detail") if isinstance(image, dict) else None) or "auto"
        return out
    if kind == "file" and isinstance(part.get("file"), dict):
        return {"type": "input_file", **part["file"], **rest}
    return part


def _content_native(content: Any, role: str) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise bad(f"message content must be a string or a list, got {short(content)}")
    return [_part_native(p, role) for p in content]


# ----- input items: the view -----


def _kind(item: dict[str, Any]) -> str:
    return str(item.get("type", "message"))


def _assistant_side(item: dict[str, Any]) -> bool:
    kind = _kind(item)
    if kind == "message":
        return item.get("role") == "assistant"
    return kind in _ASSISTANT_ITEMS or (kind.endswith("_call") and kind not in _OUTPUTS)


def _extras(item: dict[str, Any], *names: str) -> dict[str, Any]:
    """The item's other fields; its ``id`` (an item id, not a call id) as ``item_id``."""
    out = {k: v for k, v in item.items() if k not in ("type", *names)}
    if "id" in out:
        out["item_id"] = out.pop("id")
    return out


def _assistant_view(items: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    parts: list[Any] = []
    thinking: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    texts = 0
    for item in items:
        kind = _kind(item)
        if kind == "reasoning":
            thinking.append(item)
        elif kind in _CALLS:
            function = {"name": item.get("name"), "arguments": item.get(_CALLS[kind])}
            call = {"id": item.get("call_id"), "type": "function", "function": function}
            call.update(_extras(item, "call_id", "name", _CALLS[kind]))
            if kind != "function_call":
                call["native_type"] = kind
            calls.append(call)
        elif kind == "message":
            texts += 1
            if texts == 1:
                message.update(
                    {k: v for k, v in item.items() if k not in ("type", "role", "content")}
                )
            content = item.get("content")
            parts.extend([{"type": "text", "text": content}] if isinstance(content, str) else [])
            if isinstance(content, list):
                parts.extend(_content_view(content))
        else:
            parts.append(item)  # a web search call, an MCP call...: native
    if texts == 1 and len(parts) == 1 and set(parts[0]) == {"type", "text"}:
        message["content"] = parts[0]["text"]
    else:
        message["content"] = parts or None
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _item_view(item: dict[str, Any]) -> dict[str, Any]:
    kind = _kind(item)
    if kind == "message":
        view = {"role": item.get("role"), "content": _content_view(item.get("content"))}
        view.update({k: v for k, v in item.items() if k not in ("type", "role", "content")})
        return view
    if kind in _OUTPUTS:
        view = {"role": "tool", "tool_call_id": item.get("call_id")}
        view["content"] = _content_view(item.get("output"))
        view.update(_extras(item, "call_id", "output"))
        if kind != "function_call_output":
            view["native_type"] = kind
        return view
    return {"role": "user", "content": [item]}  # an item reference, a shell output...


def _input_view(value: Any) -> tuple[list[dict[str, Any]], list[tuple[Any, int]]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}], [("input", 1)]
    items: list[dict[str, Any]] = value or []
    out: list[dict[str, Any]] = []
    groups: list[tuple[Any, int]] = []
    i = 0
    while i < len(items):
        if _assistant_side(items[i]):
            j = i
            while j < len(items) and _assistant_side(items[j]):
                j += 1
            out.append(_assistant_view(items[i:j]))
        else:
            j = i + 1
            out.append(_item_view(items[i]))
        groups.append(((i, j), 1))
        i = j
    return out, groups


# ----- input items: back to native -----


def _named(extras: dict[str, Any]) -> dict[str, Any]:
    out = dict(extras)
    if "item_id" in out:
        out["id"] = out.pop("item_id")
    return out


def _native_items(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        output = _content_native(message.get("content"), "user")
        item = {"type": message.get("native_type") or "function_call_output"}
        item.update({"call_id": message.get("tool_call_id"), "output": output})
        fields = ("role", "tool_call_id", "content", "native_type")
        item.update(_named({k: v for k, v in message.items() if k not in fields}))
        return [item]
    if role not in _ROLES:
        raise bad(f"{where}.role: the policy produced a message with role {short(role)}")
    assert isinstance(role, str)
    items: list[dict[str, Any]] = []
    if role == "assistant":
        items.extend(message.get("thinking_blocks") or [])
    skip = ("role", "content", "tool_calls", "thinking_blocks", "reasoning_content")
    extras = {k: v for k, v in message.items() if k not in skip}
    content = _content_native(message.get("content"), role)
    parts: list[Any] = []

    def flush() -> None:
        if parts:
            items.append({"type": "message", "role": role, "content": list(parts), **extras})
            parts.clear()

    if isinstance(content, str):
        if content or (role != "assistant" and not message.get("tool_calls")):
            items.append({"type": "message", "role": role, "content": content, **extras})
    else:
        for part in content:
            if isinstance(part, dict) and part.get("type") not in _PARTS:
                flush()
                items.append(part)  # a native item the view kept in the content
            else:
                parts.append(part)
        flush()
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        kind = call.get("native_type") or "function_call"
        if kind not in _CALLS:
            raise bad(f"{where}.tool_calls.{j}: unknown native_type {short(kind)}")
        item = {"type": kind, "call_id": call.get("id"), "name": function.get("name")}
        item[_CALLS[kind]] = arguments
        skip_call = ("id", "type", "function", "native_type", "index")
        item.update(_named({k: v for k, v in call.items() if k not in skip_call}))
        items.append(item)
    return items


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"
    )


def _native_input(final: list[dict[str, Any]], wire: WireContext) -> tuple[Any, Any]:
    """(instructions, input) for the policy's final messages: each run of messages that
    equals the view of one native source is that source, as the client sent it."""
    body = wire.body
    view: list[dict[str, Any]] = wire.extra["view_messages"]
    starts = []
    position = 0
    for source, count in wire.extra["groups"]:
        starts.append((source, view[position : position + count]))
        position += count
    original = body.get("input")
    items = original if isinstance(original, list) else []
    instructions: Any = _ABSENT
    replaced: Any = _ABSENT  # a new first system message, in place of the instructions
    out: list[dict[str, Any]] = []
    next_group = 0
    untouched = True
    i = 0
    while i < len(final):
        for g in range(next_group, len(starts)):
            source, messages = starts[g]
            if final[i : i + len(messages)] != messages:
                continue
            untouched = untouched and g == next_group
            if source == "instructions":
                instructions = body["instructions"]
            elif source == "input":
                out.append({"role": "user", "content": original})
            else:
                out.extend(items[source[0] : source[1]])
            i += len(messages)
            next_group = g + 1
            break
        else:
            untouched = False
            message = final[i]
            has_instructions = starts and starts[0][0] == "instructions"
            if i == 0 and message.get("role") == "system" and has_instructions:
                replaced = _text_of(message.get("content"))
            else:
                out.extend(_native_items(message, f"messages.{i}"))
            i += 1
    if replaced is not _ABSENT:
        if instructions is _ABSENT:
            instructions = replaced
        else:  # the instructions are still there: the new message goes before the input
            out.insert(0, {"type": "message", "role": "system", "content": replaced})
    if untouched and next_group == len(starts):
        return instructions, original  # every source, in order, nothing else
    return instructions, out


_ABSENT: Any = object()


# ----- tools -----


def _tool_view(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool  # a hosted or custom tool: the policy sees it as the upstream will
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    view = {"type": "function", "function": function}
    view.update({k: v for k, v in tool.items() if k not in ("type", *function)})
    return view


def _tool_native(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise bad(f"{where}: the policy produced a tool that is not an object")
    if tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        return tool
    native = {"type": "function", **tool["function"]}
    native.update({k: v for k, v in tool.items() if k not in ("type", "function")})
    return native


# ----- the whole request -----

_MAPPED = frozenset({"model", "instructions", "input", "tools", "stream"})


def native_view(body: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields of the policy's ``Request``, what :func:`native_body` needs later)."""
    messages, groups = _input_view(body.get("input"))
    if isinstance(body.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
        groups.insert(0, ("instructions", 1))
    view: dict[str, Any] = {k: v for k, v in body.items() if k not in _MAPPED}
    view["model"] = model
    view["messages"] = messages
    view["stream"] = body.get("stream") is True
    if "tools" in body:
        view["tools"] = [_tool_view(t) for t in body["tools"]] if body["tools"] else body["tools"]
    return view, {"groups": groups}


def _chat_named(body: dict[str, Any], key: str, value: Any) -> bool:
    """A chat-format field a policy set, under its Responses name; False if ``key`` is
    not one of them."""
    if key in ("max_tokens", "max_completion_tokens"):
        body["max_output_tokens"] = value
    elif key == "reasoning_effort":
        body["reasoning"] = {**(body.get("reasoning") or {}), "effort": value}
    elif key == "response_format" and isinstance(value, dict):
        schema = value.get("json_schema")
        fmt = {"type": value.get("type"), **(schema if isinstance(schema, dict) else {})}
        body["text"] = {**(body.get("text") or {}), "format": fmt}
    else:
        return False
    return True


def native_body(wire: WireContext, final: dict[str, Any], prefix: str | None) -> dict[str, Any]:
    """The body to send upstream for the policy's final request (``model_dump()``)."""
    body = dict(wire.body)
    for key in sorted(wire.changed_fields(final)):
        present = key in final and final[key] is not None
        if key in ("model", "stream"):
            continue
        if key == "messages":
            instructions, items = _native_input(final.get("messages") or [], wire)
            if instructions is _ABSENT:
                body.pop("instructions", None)
            else:
                body["instructions"] = instructions
            if items is not None or "input" in body:
                body["input"] = items
        elif key == "tools":
            if present:
                view = [_tool_view(t) for t in wire.body.get("tools") or []]
                originals = wire.body.get("tools") or []
                body["tools"] = [
                    originals[view.index(t)] if t in view else _tool_native(t, f"tools.{i}")
                    for i, t in enumerate(final[key])
                ]
            else:
                body.pop("tools", None)
        elif present and _chat_named(body, key, final[key]):
            continue
        elif present:
            body[key] = final[key]
        else:
            body.pop(key, None)
    body["model"] = upstream_name(final["model"], prefix)
    return body
