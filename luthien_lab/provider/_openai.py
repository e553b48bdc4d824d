"""OpenAI Chat Completions wire format for a :class:`ScriptedResponse`."""

from __future__ import annotations

from typing import Any

from luthien_lab.provider._frames import Frame, sse
from luthien_lab.provider._script import ScriptedResponse

__all__ = ["error_body", "render_json", "render_stream"]


def _usage(script: ScriptedResponse, prompt_words: int) -> dict[str, int]:
    usage = script.usage_for(prompt_words)
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def render_stream(
    script: ScriptedResponse,
    *,
    model: str,
    response_id: str,
    created: int,
    include_usage: bool,
    prompt_words: int,
    empty: bool = False,
) -> list[Frame]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_luthien_local",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    if empty:
        return [Frame(sse("[DONE]"))]
    frames = [Frame(sse(chunk({"role": "assistant", "content": ""})))]
    for part in script.thinking_parts():
        frames.append(Frame(sse(chunk({"reasoning_content": part})), content=True))
    for part in script.text_parts():
        frames.append(Frame(sse(chunk({"content": part})), content=True))
    for part in script.refusal_parts():
        frames.append(Frame(sse(chunk({"refusal": part})), content=True))
    if script.parallel_tool_calls and script.tool_calls:
        calls = [
            {
                "index": i,
                "id": script.tool_call_id(i, "openai"),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for i, call in enumerate(script.tool_calls)
        ]
        frames.append(Frame(sse(chunk({"tool_calls": calls})), content=True))
    else:
        for i, call in enumerate(script.tool_calls):
            head = {
                "index": i,
                "id": script.tool_call_id(i, "openai"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(Frame(sse(chunk({"tool_calls": [head]})), content=True))
            for frag in call.fragments(script.chunk_size):
                delta = {"tool_calls": [{"index": i, "function": {"arguments": frag}}]}
                frames.append(Frame(sse(chunk(delta)), content=True))
    frames.append(Frame(sse(chunk({}, script.openai_finish_reason()))))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _usage(script, prompt_words)
        frames.append(Frame(sse(final)))
    frames.append(Frame(sse("[DONE]")))
    return frames


def render_json(
    script: ScriptedResponse, *, model: str, response_id: str, created: int, prompt_words: int
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": script.full_text() if (script.full_text() or not script.refusal) else None,
        "refusal": script.refusal,
    }
    if script.tool_calls and not script.full_text():
        message["content"] = None
    if script.full_thinking():
        message["reasoning_content"] = script.full_thinking()
    if script.tool_calls:
        message["tool_calls"] = [
            {
                "id": script.tool_call_id(i, "openai"),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for i, call in enumerate(script.tool_calls)
        ]
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_luthien_local",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": script.openai_finish_reason(),
            }
        ],
        "usage": _usage(script, prompt_words),
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    kinds = {
        429: ("requests", "rate_limit_exceeded"),
        500: ("server_error", None),
        400: ("invalid_request_error", None),
        404: ("invalid_request_error", "not_found"),
    }
    kind, code = kinds.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
