"""``Shadows`` on a live orchestrator, without a gateway: a shadow works on its own
copies (editing a chunk in place changes nothing live), starts behind the live
response when held, and its listeners get the shadow's own transaction."""

from __future__ import annotations

import asyncio
import threading

import pytest

from luthien_lab import (
    NoOpPolicy,
    PipelineListener,
    Policy,
    PolicyOrchestrator,
    ScriptedLLMClient,
)
from luthien_lab.shadows import Shadows
from tests.support import text_stream

pytestmark = pytest.mark.timeout(60)


class EditsInPlace(Policy):
    """Mutates every ingress chunk and the request in place (what a policy must not
    do, and a shadow may do harmlessly)."""

    async def on_request(self, request, context):
        request.messages[0]["content"] = "edited"
        return request

    async def on_chunk_received(self, ctx):
        chunk = ctx.ingress_state.raw_chunks[-1]
        if chunk.choices and chunk.choices[0].delta.content:
            chunk.choices[0].delta.content = chunk.choices[0].delta.content.upper()
        ctx.egress_queue.put_nowait(chunk)


class Collector(PipelineListener):
    def __init__(self) -> None:
        self.started: list[dict] = []
        self.finished: list[tuple[str, str]] = []
        self.sent: list[str] = []
        self.done = threading.Event()

    def transaction_started(self, info):
        self.started.append(dict(info.tags))

    def chunk_sent(self, transaction_id, index, chunk, t_ns):
        if chunk.choices and chunk.choices[0].delta.content:
            self.sent.append(chunk.choices[0].delta.content)

    def transaction_finished(self, transaction_id, result):
        self.finished.append((transaction_id, result.status))
        self.done.set()


async def live_run(shadows: Shadows, chunks: list) -> tuple[list[str], dict]:
    orchestrator = PolicyOrchestrator(NoOpPolicy(), ScriptedLLMClient(chunks), listeners=[shadows])
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    out = []
    async for chunk in orchestrator.process_streaming_response(request, "live-1"):
        if chunk.choices and chunk.choices[0].delta.content:
            out.append(chunk.choices[0].delta.content)
    return out, request


def test_a_shadow_editing_chunks_in_place_changes_nothing_live():
    chunks = text_stream("quiet ", "words")
    collector = Collector()
    shadows = Shadows({"loud": EditsInPlace()}, listeners=[collector])
    try:
        out, request = asyncio.run(live_run(shadows, chunks))
        assert collector.done.wait(10)
    finally:
        shadows.close(5)
    assert out == ["quiet ", "words"]
    assert [c.choices[0].delta.content for c in chunks[1:3]] == ["quiet ", "words"]
    assert request["messages"][0]["content"] == "hi"
    assert collector.sent == ["QUIET ", "WORDS"]
    assert collector.started == [{"shadow_of": "live-1", "shadow": "loud", "shadow_dropped": 0}]
    assert [status for _tid, status in collector.finished] == ["ok"]


def test_held_shadows_start_only_once_released():
    collector = Collector()
    shadows = Shadows([NoOpPolicy()], listeners=[collector], hold=True)
    try:
        asyncio.run(live_run(shadows, text_stream("a", "b")))
        assert not collector.done.wait(0.3)
        assert collector.started == []  # the live transaction is over; the shadow waits
        shadows.release()
        assert collector.done.wait(10)
    finally:
        shadows.close(5)
    assert collector.started[0]["shadow"] == "NoOpPolicy"
    assert [status for _tid, status in collector.finished] == ["ok"]


def test_close_records_what_never_started_as_cancelled():
    collector = Collector()
    shadows = Shadows([Policy()], listeners=[collector], hold=True)
    asyncio.run(live_run(shadows, text_stream("a")))
    shadows.close(0.5)  # releases what it holds, then lets it finish
    assert [status for _tid, status in collector.finished] == ["ok"]
    shadows.close(0.5)  # a second close does nothing
    assert len(collector.finished) == 1


class Stuck(Policy):
    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    async def on_chunk_received(self, ctx):
        self.gate.wait(10)  # blocks its thread


def test_a_stuck_shadow_skips_live_transactions_past_its_pending_limit(monkeypatch):
    from luthien_lab.shadows import _runner

    monkeypatch.setattr(_runner, "MAX_PENDING_RUNS", 1)
    gate = threading.Event()
    collector = Collector()
    shadows = Shadows({"stuck": Stuck(gate)}, listeners=[collector])
    try:
        first, _ = asyncio.run(live_run(shadows, text_stream("one")))
        second, _ = asyncio.run(live_run(shadows, text_stream("two")))
        assert (first, second) == (["one"], ["two"])  # the live runs never waited
        assert shadows.runners[0].skipped == 1
    finally:
        gate.set()
        shadows.close(5)
    assert [status for _tid, status in collector.finished] == ["ok"]
