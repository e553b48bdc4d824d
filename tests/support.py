"""Helpers for tests: build chunks, run streams, summarise responses."""

from __future__ import annotations

import json
from typing import Any

from luthien_lab import PolicyOrchestrator, Request, reconstruct_full_response
from luthien_lab.streaming.chunks import create_chunk, tool_call_delta

REQUEST = Request(model="test-model", messages=[{"role": "user", "content": "hello"}])


def text_stream(*pieces: str, finish: str = "stop", role_chunk: bool = True) -> list[Any]:
    """role chunk, one chunk per piece, finish chunk."""
    chunks = [create_chunk(None, role="assistant", content="")] if role_chunk else []
    chunks += [create_chunk(None, content=p) for p in pieces]
    chunks.append(create_chunk(None, finish_reason=finish))
    return chunks


def tool_chunk(
    index: int, *, id: str | None = None, name: str | None = None, args: str = ""
) -> Any:
    return create_chunk(None, tool_calls=[tool_call_delta(index, id=id, name=name, arguments=args)])


async def run_stream(orchestrator: PolicyOrchestrator, request: Request = REQUEST) -> list[Any]:
    return [chunk async for chunk in orchestrator.process_streaming_response(request)]


def summary(response: Any) -> dict[str, Any]:
    """Text, tool calls (name, parsed args) and finish reason of a ModelResponse."""
    choice = response.choices[0]
    message = choice.message
    return {
        "text": message.content or "",
        "tool_calls": [
            (call.function.name, json.loads(call.function.arguments or "{}"))
            for call in message.tool_calls or []
        ],
        "finish_reason": choice.finish_reason,
    }


def stream_summary(chunks: list[Any]) -> dict[str, Any]:
    return summary(reconstruct_full_response(chunks))
