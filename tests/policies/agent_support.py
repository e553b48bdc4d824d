"""Shared helpers for the agent-policy tests: tool-call streams in Claude Code's and
Codex's shapes, and running a policy over them both ways."""

from __future__ import annotations

import json
from typing import Any

from luthien_lab import CallbackListener, PolicyOrchestrator, Request, ScriptedLLMClient
from luthien_lab.streaming.chunks import create_chunk, tool_call_delta
from tests.support import run_stream, stream_summary

CC_REQUEST = Request(
    model="anthropic/claude-opus-5-5",
    messages=[
        {"role": "system", "content": [{"type": "text", "text": "You are Claude Code."}]},
        {"role": "user", "content": [{"type": "text", "text": "please list files"}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment\n - Primary working directory: /work/app\n - Shell: bash"}]},
    ],
)  # fmt: skip
CX_REQUEST = Request(
    model="openai/gpt-5.5",
    messages=[
        {"role": "developer", "content": [{"type": "text", "text": "You are Codex."}]},
        {"role": "user", "content": [{"type": "text", "text": "<environment_context>\n  <cwd>/work/app</cwd>\n</environment_context>"}]},
        {"role": "user", "content": [{"type": "text", "text": "please list files"}]},
    ],
)  # fmt: skip


def calls_stream(*calls: tuple[str, Any], text: str = "", split: int = 7) -> list[Any]:
    """role chunk, text, each call's arguments split every ``split`` characters, finish."""
    chunks = [create_chunk(None, role="assistant", content="")]
    if text:
        chunks.append(create_chunk(None, content=text))
    for index, (name, args) in enumerate(calls):
        arguments = args if isinstance(args, str) else json.dumps(args)
        head = tool_call_delta(index, id=f"call_{index}", name=name, arguments="")
        chunks.append(create_chunk(None, tool_calls=[head]))
        for start in range(0, len(arguments), split):
            piece = tool_call_delta(index, arguments=arguments[start : start + split])
            chunks.append(create_chunk(None, tool_calls=[piece]))
    chunks.append(create_chunk(None, finish_reason="tool_calls" if calls else "stop"))
    return chunks


def raw_summary(response: Any) -> dict[str, Any]:
    choice = response.choices[0]
    return {
        "text": choice.message.content or "",
        "tool_calls": [
            (c.function.name, c.function.arguments) for c in choice.message.tool_calls or []
        ],
        "finish_reason": choice.finish_reason,
    }


async def run_both(policy: Any, chunks: list[Any], request: Request = CC_REQUEST) -> dict[str, Any]:
    """Streamed and non-streamed outcome (they must agree), with statuses and events."""
    events: list[tuple[str, dict[str, Any]]] = []
    statuses: list[str] = []

    def listen(event: str, _tx: str, payload: dict[str, Any]) -> None:
        if event == "event_emitted":
            events.append((payload["name"], payload["data"]))
        elif event == "transaction_finished":
            statuses.append(payload["result"].status)

    orchestrator = PolicyOrchestrator(
        policy, ScriptedLLMClient(chunks), listeners=[CallbackListener(listen)]
    )
    streamed_chunks = await run_stream(orchestrator, request)
    from luthien_lab import reconstruct_full_response

    streamed = raw_summary(reconstruct_full_response(streamed_chunks))
    full = raw_summary(await orchestrator.process_full_response(request))
    assert streamed == full, (streamed, full)
    return {**streamed, "statuses": statuses, "events": events, "chunks": streamed_chunks}


__all__ = ["CC_REQUEST", "CX_REQUEST", "calls_stream", "run_both", "stream_summary"]
