"""Anthropic Messages wire format for a :class:`ScriptedResponse`."""

from __future__ import annotations

from typing import Any

from luthien_lab.provider._frames import Frame, sse
from luthien_lab.provider._script import ScriptedResponse

__all__ = ["error_body", "render_json", "render_stream"]


def render_stream(
    script: ScriptedResponse,
    *,
    model: str,
    response_id: str,
    prompt_words: int,
    empty: bool = False,
) -> list[Frame]:
    usage = script.usage_for(prompt_words)

    def ev(kind: str, **payload: Any) -> bytes:
        return sse({"type": kind, **payload}, event=kind)

    frames = [
        Frame(
            ev(
                "message_start",
                message={
                    "id": response_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": 1},
                },
            )
        ),
        Frame(ev("ping")),
    ]
    index = 0
    if not empty:
        thinking = script.thinking_parts()
        if thinking:
            frames.append(
                Frame(
                    ev(
                        "content_block_start",
                        index=index,
                        content_block={"type": "thinking", "thinking": "", "signature": ""},
                    )
                )
            )
            for part in thinking:
                delta = {"type": "thinking_delta", "thinking": part}
                frames.append(Frame(ev("content_block_delta", index=index, delta=delta), True))
            sig = {"type": "signature_delta", "signature": script.thinking_signature()}
            frames.append(Frame(ev("content_block_delta", index=index, delta=sig)))
            frames.append(Frame(ev("content_block_stop", index=index)))
            index += 1
        text = script.text_parts() + script.refusal_parts()
        if text:
            start = {"type": "text", "text": ""}
            frames.append(Frame(ev("content_block_start", index=index, content_block=start)))
            for part in text:
                delta = {"type": "text_delta", "text": part}
                frames.append(Frame(ev("content_block_delta", index=index, delta=delta), True))
            frames.append(Frame(ev("content_block_stop", index=index)))
            index += 1
        for i, call in enumerate(script.tool_calls):
            block = {
                "type": "tool_use",
                "id": script.tool_call_id(i, "anthropic"),
                "name": call.name,
                "input": {},
            }
            frames.append(Frame(ev("content_block_start", index=index, content_block=block), True))
            for frag in call.fragments(script.chunk_size):
                delta = {"type": "input_json_delta", "partial_json": frag}
                frames.append(Frame(ev("content_block_delta", index=index, delta=delta), True))
            frames.append(Frame(ev("content_block_stop", index=index)))
            index += 1
    frames.append(
        Frame(
            ev(
                "message_delta",
                delta={"stop_reason": script.anthropic_stop_reason(), "stop_sequence": None},
                usage={"output_tokens": usage["completion_tokens"] if not empty else 0},
            )
        )
    )
    frames.append(Frame(ev("message_stop")))
    return frames


def render_json(
    script: ScriptedResponse, *, model: str, response_id: str, prompt_words: int
) -> dict[str, Any]:
    usage = script.usage_for(prompt_words)
    content: list[dict[str, Any]] = []
    if script.full_thinking():
        content.append(
            {
                "type": "thinking",
                "thinking": script.full_thinking(),
                "signature": script.thinking_signature(),
            }
        )
    text = script.full_text() + (script.refusal or "")
    if text:
        content.append({"type": "text", "text": text})
    for i, call in enumerate(script.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": script.tool_call_id(i, "anthropic"),
                "name": call.name,
                "input": call.arguments_dict(),
            }
        )
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": script.anthropic_stop_reason(),
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
        },
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    kinds = {
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
        400: "invalid_request_error",
        404: "not_found_error",
    }
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}
