"""Known traces and scripted streams for the widget tests."""

from __future__ import annotations

from luthien_lab.runs import ChunkRecord, HookRecord, TransactionTrace
from tests.support import text_stream, tool_chunk


def hook(seq, name, index, kind=None, *, tool=None, dur=1000, e0=0, e1=0):
    block_id = None if kind is None else (f"call_{tool}" if kind == "tool_call" else kind)
    return HookRecord(seq, name, index, kind, block_id, tool, seq * 10_000, dur, e0, e1)


def known_trace() -> TransactionTrace:
    """Chunks: 0 role, 1-2 content, 3-4 tool call 0, 5 finish. Hooks as the
    orchestrator would report them for a delta + complete policy."""
    trace = TransactionTrace("tx-known", model="m", policy="p.Known", start_ns=0)
    trace.ingress = [
        ChunkRecord(0, 100, content=""),
        ChunkRecord(1, 200, content="Hello "),
        ChunkRecord(2, 300, content="world"),
        ChunkRecord(3, 400, tool_calls=[{"index": 0, "id": "c1", "name": "get", "arguments": ""}]),
        ChunkRecord(
            4, 500, tool_calls=[{"index": 0, "id": None, "name": None, "arguments": '{"q": 1}'}]
        ),
        ChunkRecord(5, 600, finish_reason="tool_calls"),
    ]
    trace.egress = [
        ChunkRecord(0, 210, content="HELLO "),
        ChunkRecord(1, 310, content="WORLD"),
        ChunkRecord(
            2, 650, tool_calls=[{"index": 0, "id": "c1", "name": "get", "arguments": '{"q": 1}'}]
        ),
        ChunkRecord(3, 660, finish_reason="tool_calls"),
    ]
    trace.hooks = [
        hook(0, "on_request", -1),
        hook(1, "on_content_delta", 1, "content", e0=0, e1=1),
        hook(2, "on_content_delta", 2, "content", e0=1, e1=2, dur=50_000),
        hook(3, "on_content_complete", 3, "content"),
        hook(4, "on_tool_call_delta", 3, "tool_call", tool=0),
        hook(5, "on_tool_call_delta", 4, "tool_call", tool=0),
        hook(6, "on_tool_call_complete", 5, "tool_call", tool=0, e0=2, e1=3),
        hook(7, "on_finish_reason", 5, e0=3, e1=4),
        hook(8, "on_stream_complete", 6),
    ]
    trace.status = "ok"
    return trace


def mixed_stream():
    """Text then one tool call then finish: ScriptedLLMClient chunks."""
    chunks = text_stream("Hello ", "there ", "friend", finish="tool_calls")
    finish = chunks.pop()
    chunks += [
        tool_chunk(0, id="call_a", name="lookup", args='{"city": '),
        tool_chunk(0, args='"Paris"}'),
        finish,
    ]
    return chunks


__all__ = ["hook", "known_trace", "mixed_stream", "text_stream", "tool_chunk"]
