"""Helpers shared by the store tests."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from luthien_lab.events import ChunkEvent, HookFired, RequestProcessed, TransactionFinished

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recorded-chunks"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []


def make_chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    finish_reason: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    usage: dict[str, int] | None = None,
) -> Any:
    from litellm.types.utils import ModelResponseStream

    delta: dict[str, Any] = {"content": content, "role": role}
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    fields: dict[str, Any] = {
        "id": "chatcmpl-test",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        fields["usage"] = usage
    return ModelResponseStream(**fields)


def load_fixture(path: Path) -> list[Any]:
    from litellm.types.utils import ModelResponseStream

    return [ModelResponseStream(**item) for item in json.loads(path.read_text())]


def info(tx: str = "tx-1", *, streaming: bool = True, start_ns: int | None = None, **kw: Any):
    from luthien_lab.events import TransactionInfo

    fields: dict[str, Any] = {
        "transaction_id": tx,
        "model": "test-model",
        "provider": "test",
        "policy_class": "tests.policies.EchoPolicy",
        "policy_config": {"threshold": 0.5},
        "streaming": streaming,
        "start_ns": time.perf_counter_ns() if start_ns is None else start_ns,
    }
    fields.update(kw)
    return TransactionInfo(**fields)


def drive_stream(
    recorder: Any,
    tx: str,
    chunks: list[Any],
    *,
    start_ns: int = 1_000_000,
    status: str = "ok",
    error: str | None = None,
    finish: bool = True,
    request: Any = None,
    egress: bool = True,
) -> None:
    """Feed one streaming transaction in events.py's order; chunk i arrives at
    start + 1000*(i+1) ns, its hook runs 100 ns and the egress copy is sent 200 ns later."""
    from luthien_lab.events import TransactionResult
    from luthien_lab.request import Request
    from luthien_lab.streaming.blocks import ContentStreamBlock

    recorder.transaction_started(info(tx, start_ns=start_ns))
    req = request or Request(model="test-model", messages=[{"role": "user", "content": "hi"}])
    recorder.hook_fired(HookFired(tx, "on_request", -1, None, start_ns + 10, start_ns + 20, 0, 0))
    recorder.request_processed(RequestProcessed(tx, req, req))
    block = ContentStreamBlock()
    for i, chunk in enumerate(chunks):
        t = start_ns + 1000 * (i + 1)
        recorder.chunk_received(ChunkEvent(tx, i, chunk, t))
        recorder.hook_fired(HookFired(tx, "on_content_delta", i, block, t + 10, t + 110, i, i + 1))
        if egress:
            recorder.chunk_sent(ChunkEvent(tx, i, chunk, t + 200))
    if not finish:
        return
    end = start_ns + 1000 * (len(chunks) + 2)
    if status == "ok":
        recorder.hook_fired(
            HookFired(tx, "on_stream_complete", len(chunks), None, end - 50, end - 40, 0, 0)
        )
    recorder.transaction_finished(
        TransactionFinished(
            tx,
            TransactionResult(
                status=status,
                end_ns=end,
                error=error,
                error_type="RuntimeError" if error else None,
                ingress_chunks=list(chunks),
                egress_chunks=list(chunks) if egress else [],
            ),
        )
    )


def deep(levels: int, leaf: Any = "x") -> Any:
    """``leaf`` nested in ``levels`` lists."""
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def request(marker: str, **extra: Any) -> Any:
    """A streaming request whose user message is ``marker``."""
    from luthien_lab.request import Request

    return Request(
        model="scripted", messages=[{"role": "user", "content": marker}], stream=True, **extra
    )


def orchestrator(recorder: Any, replies: dict[str, list[str]] | None = None, **kw: Any) -> Any:
    """A PolicyOrchestrator recording to ``recorder`` whose scripted model answers a
    request with ``replies[its user message]`` (default: "ok" in two chunks)."""
    from luthien_lab import NoOpPolicy, PolicyOrchestrator, ScriptedLLMClient
    from luthien_lab.streaming.chunks import create_chunk

    table = replies or {}

    def script(req: Any) -> list[Any]:
        pieces = table.get(req.messages[-1]["content"], ["o", "k"])
        first = [create_chunk(None, role="assistant", content="")]
        return first + [create_chunk(None, content=p) for p in pieces]

    client = ScriptedLLMClient(script=script)
    return PolicyOrchestrator(kw.pop("policy", NoOpPolicy()), client, listeners=[recorder], **kw)


async def run_all(orch: Any, requests: list[Any]) -> list[str]:
    """Stream every request at once; the text each one gave."""
    import asyncio

    async def one(req: Any) -> str:
        parts = []
        async for chunk in orch.process_streaming_response(req):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return list(await asyncio.gather(*(one(r) for r in requests)))
