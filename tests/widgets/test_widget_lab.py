"""luthien_lab.lab: run_async, the sync run inside a running loop, RunResult, from_store."""

from __future__ import annotations

import asyncio
import threading

import pytest

from luthien_lab import ScriptedLLMClient, UppercasePolicy
from luthien_lab.widgets import ResponseDiff, RunResult, Timeline
from tests.widgets.helpers import mixed_stream, text_stream

TOOLS = '[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]'


@pytest.mark.timeout(20)
async def test_sync_run_works_inside_a_running_event_loop(lab_loop):
    asyncio.get_running_loop()  # this test body runs inside a running loop, like a cell
    seen = []

    def script(request):
        seen.append(threading.current_thread().name)
        return text_stream("hi ", "there")

    result = lab_loop.run(
        "x", policy=UppercasePolicy, client=ScriptedLLMClient(script=script), store=None
    )
    assert result.status == "ok" and result.text == "HI THERE"
    assert seen == ["luthien-lab-run"]  # ran on the dedicated background loop
    again = lab_loop.run("y", client=ScriptedLLMClient(script=script), store=None)
    assert again.text == "hi there" and seen[-1] == "luthien-lab-run"


@pytest.mark.timeout(20)
def test_sync_run_from_plain_python(lab_loop):
    result = lab_loop.run("x", client=ScriptedLLMClient(text_stream("a")), store=None)
    assert result.text == "a"


@pytest.mark.timeout(20)
async def test_run_async_result_api_and_tools(lab_loop):
    client = ScriptedLLMClient(mixed_stream())
    result = await lab_loop.run_async(
        "hi", policy=UppercasePolicy(), client=client, system="be nice", tools=TOOLS, store=None
    )
    assert isinstance(result, RunResult)
    assert result.text == "HELLO THERE FRIEND" and result.raw_text == "Hello there friend"
    assert result.tool_calls == [{"id": "call_a", "name": "lookup", "arguments": {"city": "Paris"}}]
    sent = client.requests[0]
    assert sent.messages[0] == {"role": "system", "content": "be nice"}
    assert sent.tools[0]["function"]["name"] == "lookup"
    frame = result.trace
    assert list(frame["hook"]).count("on_content_complete") == 1
    assert len(frame) == len(result.trace_data.hooks)
    assert isinstance(result.timeline(), Timeline) and isinstance(result.diff(), ResponseDiff)


@pytest.mark.timeout(20)
async def test_non_streaming_run(lab_loop):
    result = await lab_loop.run_async(
        "q",
        policy=UppercasePolicy,
        client=ScriptedLLMClient(text_stream("calm ", "words")),
        stream=False,
        store=None,
    )
    assert result.text == "CALM WORDS" and result.raw_text == "calm words"
    assert "process_full_response" in set(result.trace["hook"])


@pytest.mark.timeout(20)
async def test_text_repr_is_deterministic_and_bundle_has_the_three_views(lab_loop):
    results = [
        await lab_loop.run_async(
            "hi", policy=UppercasePolicy, client=ScriptedLLMClient(mixed_stream()), store=None
        )
        for _ in range(2)
    ]
    first, second = (repr(r) for r in results)
    assert first == second
    assert results[0].transaction_id not in first
    assert "status='ok'" in first and "HELLO THERE FRIEND" in first
    bundle = results[0]._repr_mimebundle_()
    assert bundle["text/plain"] == first
    html = bundle["text/html"]
    assert 'class="luthien-transformed"' in html and "<svg" in html and "luthien-diff" in html


@pytest.mark.timeout(20)
async def test_recorded_run_renders_the_same_from_the_store(lab_loop, store):
    result = await lab_loop.run_async(
        "hi", policy=UppercasePolicy, client=ScriptedLLMClient(mixed_stream()), store=store
    )
    live = result.timeline().drawing
    recorded = Timeline.from_store(store, result.transaction_id).drawing
    assert recorded.lanes == live.lanes
    assert [(m.hook, m.column, m.firings, m.egress) for m in recorded.marks] == [
        (m.hook, m.column, m.firings, m.egress) for m in live.marks
    ]
    assert [(b.kind, b.label) for b in recorded.blocks] == [(b.kind, b.label) for b in live.blocks]
    assert [(e.column, e.count) for e in recorded.egress] == [
        (e.column, e.count) for e in live.egress
    ]
    diff = ResponseDiff.from_store(store, result.transaction_id)
    assert diff.result["text"] == "HELLO THERE FRIEND"
    assert diff.result["raw_text"] == "Hello there friend"
    assert [r["status"] for r in diff.result["tool_calls"]] == ["unchanged"]
    assert diff.result["text_ops"] == result.diff().result["text_ops"]


@pytest.mark.timeout(20)
async def test_concurrent_lab_runs_do_not_mix(lab_loop):
    client = ScriptedLLMClient(
        script=lambda r: text_stream(*[w + " " for w in r.last_user_message.split()]), delay=0.003
    )
    a, b = await asyncio.gather(
        lab_loop.run_async("red red red", client=client, store=None),
        lab_loop.run_async("blue blue", client=client, store=None),
    )
    assert a.text.split() == ["red"] * 3 and b.text.split() == ["blue"] * 2


@pytest.mark.timeout(60)
def test_default_client_goes_to_the_local_provider(lab_loop, tmp_path):
    result = lab_loop.run("hello lab", policy=UppercasePolicy, store=tmp_path / "s.duckdb")
    assert result.status == "ok", result.error
    assert result.text == "LOCAL ECHO: HELLO LAB"
    assert result.store.transactions().loc[0, "transaction_id"] == result.transaction_id
