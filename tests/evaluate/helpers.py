"""Small recorded streams and policies for the evaluate tests."""

from __future__ import annotations

from typing import Any

from luthien_lab import Request, RequestRefused, SimplePolicy, mark_blocked
from luthien_lab.policies import Policy
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk, tool_call_delta


def dump(chunk: Any) -> dict[str, Any]:
    return chunk.model_dump(mode="json")


def text_recording(case_id: str, *pieces: str, offsets: list[float] | None = None) -> dict:
    chunks = [create_chunk(None, role="assistant", content="")]
    chunks += [create_chunk(None, content=p) for p in pieces]
    chunks.append(create_chunk(None, finish_reason="stop"))
    chunks.append(create_usage_chunk({"prompt_tokens": 3, "completion_tokens": 5}))
    out = {
        "id": case_id,
        "request": {"model": "test-model", "messages": [{"role": "user", "content": case_id}]},
        "chunks": [dump(c) for c in chunks],
    }
    if offsets is not None:
        out["offsets"] = offsets
    return out


def tool_recording(case_id: str, name: str, *arg_pieces: str) -> dict:
    chunks = [
        create_chunk(None, role="assistant", content=None),
        create_chunk(None, tool_calls=[tool_call_delta(0, id="call_1", name=name, arguments="")]),
    ]
    chunks += [create_chunk(None, tool_calls=[tool_call_delta(0, arguments=p)]) for p in arg_pieces]
    chunks.append(create_chunk(None, finish_reason="tool_calls"))
    return {
        "id": case_id,
        "request": {"model": "test-model", "messages": [{"role": "user", "content": case_id}]},
        "chunks": [dump(c) for c in chunks],
    }


class ReplaceWhole(SimplePolicy):
    """A correct replacement: works on the complete text."""

    def __init__(self, search: str = "OpenAI", replacement: str = "[REDACTED]"):
        self.search = search
        self.replacement = replacement

    async def on_response_content(self, content: str, request: Request) -> str:
        return content.replace(self.search, self.replacement)


class DropTool(SimplePolicy):
    async def on_response_tool_call(self, tool_call: Any, request: Request) -> Any:
        return None


class Refuse(SimplePolicy):
    async def on_request_simple(self, request: Request) -> Request:
        raise RequestRefused("no, thanks")


class Broken(SimplePolicy):
    async def on_response_content(self, content: str, request: Request) -> str:
        raise ValueError("boom")


class MarkBlocked(Policy):
    async def on_chunk_received(self, ctx: Any) -> None:
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])

    async def on_stream_complete(self, ctx: Any) -> None:
        mark_blocked(ctx, "flagged")


class NaiveToolGuard(Policy):
    """Drops a tool-call delta containing "rm -rf" - in that delta only (a bug)."""

    async def on_chunk_received(self, ctx: Any) -> None:
        chunk = ctx.ingress_state.raw_chunks[-1]
        delta = chunk.choices[0].delta if chunk.choices else None
        for call in (delta.tool_calls or []) if delta is not None else []:
            if call.function and "rm -rf" in (call.function.arguments or ""):
                chunk = chunk.model_copy(deep=True)
                chunk.choices[0].delta.tool_calls[0].function.arguments = '"[blocked]"'
        ctx.egress_queue.put_nowait(chunk)
