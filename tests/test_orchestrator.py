"""PolicyOrchestrator: hook dispatch, errors, refusal, timeouts, cancellation, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random

import pytest

from luthien_lab import (
    CallbackListener,
    NoOpPolicy,
    PipelineListener,
    Policy,
    PolicyError,
    PolicyOrchestrator,
    Request,
    RequestRefused,
    ScriptedLLMClient,
    SimplePolicy,
    UpstreamError,
    UpstreamTimeoutError,
    mark_blocked,
)
from luthien_lab.streaming import helpers
from luthien_lab.streaming.chunks import create_chunk, tool_call_delta
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream, tool_chunk


class Recorder(PipelineListener):
    """A listener of the current kind: one event record per call."""

    def __init__(self):
        self.events = []
        self.results = {}

    def transaction_started(self, info):
        self.events.append(("start", info.transaction_id))

    def request_processed(self, event):
        self.events.append(("request", event.original.model, event.final.model))

    def chunk_received(self, event):
        self.events.append(("in", event.index))

    def hook_fired(self, event):
        assert event.end_ns >= event.start_ns
        block_id = event.block.id if event.block else None
        self.events.append(
            (event.hook, event.chunk_index, block_id, event.egress_start, event.egress_end)
        )

    def chunk_sent(self, event):
        self.events.append(("out", event.index))

    def transaction_finished(self, event):
        self.results[event.transaction_id] = event.result
        self.events.append(("end", event.result.status))


class PositionalRecorder(PipelineListener):
    """A listener written for the earlier positional signatures: still served."""

    def __init__(self):
        self.events = []
        self.results = {}

    def transaction_started(self, info):
        self.events.append(("start", info.transaction_id))

    def request_processed(self, transaction_id, original, final):
        self.events.append(("request", original.model, final.model))

    def chunk_received(self, transaction_id, index, chunk, t_ns):
        self.events.append(("in", index))

    def hook_fired(self, transaction_id, hook, chunk_index, block, start_ns, end_ns, e0, e1):
        assert end_ns >= start_ns
        self.events.append((hook, chunk_index, block.id if block else None, e0, e1))

    def chunk_sent(self, transaction_id, index, chunk, t_ns):
        self.events.append(("out", index))

    def transaction_finished(self, transaction_id, result):
        self.results[transaction_id] = result
        self.events.append(("end", result.status))


class EveryHook(Policy):
    """Forwards content deltas; overrides every hook so each firing is visible."""

    async def on_chunk_received(self, ctx):
        pass

    async def on_content_delta(self, ctx):
        await helpers.send_text(ctx, ctx.ingress_state.current_block.last_delta)

    async def on_content_complete(self, ctx):
        pass

    async def on_tool_call_delta(self, ctx):
        pass

    async def on_tool_call_complete(self, ctx):
        await helpers.send_tool_call(ctx, ctx.ingress_state.just_completed)

    async def on_finish_reason(self, ctx):
        pass

    async def on_stream_complete(self, ctx):
        pass


def _text_then_a_tool_call() -> list:
    """Text, a chunk that ends it and starts a tool call, its arguments, the finish."""
    return [
        create_chunk(None, role="assistant", content="Hi"),
        create_chunk(None, content="!", tool_calls=[tool_call_delta(0, id="t0", name="f")]),
        tool_chunk(0, args="{}"),
        create_chunk(None, finish_reason="tool_calls"),
    ]


@pytest.mark.parametrize("style", [Recorder, PositionalRecorder])
async def test_hooks_fire_in_documented_order_with_block_and_egress_ranges(style):
    chunks = _text_then_a_tool_call()
    listener = style()
    orchestrator = PolicyOrchestrator(EveryHook(), ScriptedLLMClient(chunks), listeners=[listener])
    out = await run_stream(orchestrator)
    assert len(out) == 3
    assert listener.events[1:] == [
        ("request", "test-model", "test-model"),
        ("in", 0),
        ("on_chunk_received", 0, None, 0, 0),
        ("out", 0),
        ("on_content_delta", 0, "content", 0, 1),
        ("in", 1),
        ("on_chunk_received", 1, None, 1, 1),
        ("out", 1),
        ("on_content_delta", 1, "content", 1, 2),
        ("on_content_complete", 1, "content", 2, 2),
        ("on_tool_call_delta", 1, "t0", 2, 2),
        ("in", 2),
        ("on_chunk_received", 2, None, 2, 2),
        ("on_tool_call_delta", 2, "t0", 2, 2),
        ("in", 3),
        ("on_chunk_received", 3, None, 2, 2),
        ("out", 2),
        ("on_tool_call_complete", 3, "t0", 2, 3),
        ("on_finish_reason", 3, None, 3, 3),
        ("on_stream_complete", 4, None, 3, 3),
        ("end", "ok"),
    ]


BLOCK_HOOKS = [
    "on_content_delta",
    "on_content_complete",
    "on_tool_call_delta",
    "on_tool_call_complete",
    "on_finish_reason",
]


@pytest.mark.parametrize("hook", BLOCK_HOOKS)
async def test_a_block_hook_that_is_a_policys_only_one_fires_as_beside_the_others(hook):
    # The dispatch skips the block events of a chunk for a policy without any block
    # hook: each one alone must still count as one.
    chunks = _text_then_a_tool_call()

    async def noted(self, ctx):
        pass

    alone = type("Alone", (Policy,), {hook: noted})()
    fired = {}
    for policy in (EveryHook(), alone):
        listener = Recorder()
        orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(chunks), listeners=[listener])
        await run_stream(orchestrator)
        fired[type(policy)] = [event[1:3] for event in listener.events if event[0] == hook]
    assert fired[type(alone)] == fired[EveryHook] and fired[EveryHook]


async def test_hooks_a_policy_does_not_override_are_not_called_nor_reported():
    listener = Recorder()
    orchestrator = PolicyOrchestrator(
        NoOpPolicy(), ScriptedLLMClient(text_stream("a")), listeners=[listener]
    )
    await run_stream(orchestrator)
    hooks = {event[0] for event in listener.events if str(event[0]).startswith("on_")}
    assert hooks == {"on_chunk_received"}


async def test_a_hook_that_raises_surfaces_as_policy_error_naming_hook_and_transaction():
    class Broken(NoOpPolicy):
        async def on_content_delta(self, ctx):
            raise ValueError("boom")

    listener = Recorder()
    orchestrator = PolicyOrchestrator(
        Broken(), ScriptedLLMClient(text_stream("a", "b")), listeners=[listener]
    )
    received = []
    with pytest.raises(PolicyError) as info:
        async for chunk in orchestrator.process_streaming_response(REQUEST, "tx-broken"):
            received.append(chunk)
    assert info.value.hook == "on_content_delta"
    assert info.value.transaction_id == "tx-broken"
    assert "boom" in str(info.value) and "tx-broken" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert len(received) == 2, "chunks emitted before the failure were delivered"
    result = listener.results["tx-broken"]
    assert result.status == "error" and "boom" in result.error
    assert result.ingress_chunk_count == 2


async def test_refusing_a_request_gives_a_well_formed_refusal_in_both_modes():
    class Refuse(SimplePolicy):
        async def on_request_simple(self, request):
            if "forbidden" in request.last_user_message:
                raise RequestRefused("I can't help with that.")
            return request

    client = ScriptedLLMClient(text_stream("ok"))
    listener = Recorder()
    orchestrator = PolicyOrchestrator(Refuse(), client, listeners=[listener])
    bad = Request(model="m", messages=[{"role": "user", "content": "forbidden thing"}])
    out = await run_stream(orchestrator, bad)
    assert stream_summary(out) == {
        "text": "I can't help with that.",
        "tool_calls": [],
        "finish_reason": "stop",
    }
    assert all(c.object == "chat.completion.chunk" for c in out)
    full = await orchestrator.process_full_response(bad)
    assert full.choices[0].message.content == "I can't help with that."
    assert client.requests == [], "a refused request never reaches the provider"
    assert [r.status for r in listener.results.values()] == ["blocked", "blocked"]


async def test_on_request_can_rewrite_the_request():
    class AddSystem(Policy):
        async def on_request(self, request, context):
            messages = [{"role": "system", "content": "be brief"}, *request.messages]
            return request.model_copy(update={"messages": messages})

    client = ScriptedLLMClient(text_stream("x"))
    orchestrator = PolicyOrchestrator(AddSystem(), client)
    await orchestrator.process_full_response(REQUEST)
    assert client.requests[0].messages[0] == {"role": "system", "content": "be brief"}
    assert REQUEST.messages[0]["role"] == "user", "the client's request object is untouched"


async def test_process_request_then_streaming_response_is_one_transaction():
    class Tag(NoOpPolicy):
        async def on_request(self, request, context):
            context.scratchpad["tag"] = "seen"
            return request.model_copy(update={"model": "rewritten"})

        async def on_stream_complete(self, ctx):
            await helpers.send_text(ctx, ctx.scratchpad["tag"])

    listener = Recorder()
    client = ScriptedLLMClient(text_stream("a"))
    orchestrator = PolicyOrchestrator(Tag(), client, listeners=[listener])
    final = await orchestrator.process_request(REQUEST, "tx-1")
    assert final.model == "rewritten"
    out = [c async for c in orchestrator.process_streaming_response(final, "tx-1")]
    assert stream_summary(out)["text"] == "aseen"
    assert [e for e in listener.events if e[0] in ("start", "request")] == [
        ("start", "tx-1"),
        ("request", "test-model", "rewritten"),
    ]
    assert len(client.requests) == 1 and client.requests[0].model == "rewritten"


async def test_upstream_failure_is_an_upstream_error_naming_provider_and_transaction():
    client = ScriptedLLMClient(
        text_stream("a", "b", "c"), fail_after=2, error=ConnectionError("reset"), provider="acme"
    )
    listener = Recorder()
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, listeners=[listener])
    got = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in orchestrator.process_streaming_response(REQUEST, "tx-up"):
            got.append(chunk)
    message = str(info.value)
    assert "acme" in message and "tx-up" in message and "reset" in message
    assert len(got) == 2
    assert listener.results["tx-up"].status == "error"
    assert client.open_streams == 0

    with pytest.raises(UpstreamError, match="tx-full"):
        await orchestrator.process_full_response(REQUEST, "tx-full")
    assert listener.results["tx-full"].status == "error"


@pytest.mark.timeout(10)
async def test_silent_upstream_raises_a_clear_timeout_and_stops():
    client = ScriptedLLMClient(text_stream("a", "b"), stall_after=2)
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, chunk_timeout=0.2)
    got = []
    with pytest.raises(UpstreamTimeoutError, match=r"sent nothing for 0\.2 s"):
        async for chunk in orchestrator.process_streaming_response(REQUEST):
            got.append(chunk)
    assert len(got) == 2
    assert client.open_streams == 0


@pytest.mark.timeout(10)
async def test_a_slow_hook_is_not_mistaken_for_a_silent_provider():
    class Slow(NoOpPolicy):
        async def on_content_delta(self, ctx):
            await asyncio.sleep(0.3)

    orchestrator = PolicyOrchestrator(
        Slow(), ScriptedLLMClient(text_stream("a", "b")), chunk_timeout=0.2
    )
    assert stream_summary(await run_stream(orchestrator))["text"] == "ab"


@pytest.mark.timeout(10)
async def test_chunks_reach_the_consumer_while_the_provider_is_still_silent():
    client = ScriptedLLMClient(text_stream("a", "b", "c"), stall_after=3)
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, chunk_timeout=None)
    stream = orchestrator.process_streaming_response(REQUEST)
    got = [await asyncio.wait_for(stream.__anext__(), 2) for _ in range(3)]
    assert stream_summary(got)["text"] == "ab"
    await stream.aclose()


@pytest.mark.timeout(10)
async def test_consumer_that_stops_early_cancels_upstream_and_leaves_no_task():
    listener = Recorder()
    client = ScriptedLLMClient(text_stream(*"abcdefgh"), delay=0.01)
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, listeners=[listener])
    before = asyncio.all_tasks()
    async with contextlib.aclosing(orchestrator.process_streaming_response(REQUEST, "tx-c")) as s:
        async for _chunk in s:
            if client.open_streams and len(listener.events) > 6:
                break
    await asyncio.sleep(0)
    assert client.open_streams == 0
    assert asyncio.all_tasks() == before
    result = listener.results["tx-c"]
    assert result.status == "cancelled"
    assert 0 < result.ingress_chunk_count < 10


@pytest.mark.timeout(30)
async def test_fifty_concurrent_streams_through_one_policy_instance_stay_isolated():
    class Counting(Policy):
        """Numbers each chunk of its own stream: shared state would mix the counts."""

        async def on_content_delta(self, ctx):
            count = ctx.scratchpad.get("count", 0) + 1
            ctx.scratchpad["count"] = count
            await asyncio.sleep(random.random() / 1000)
            await helpers.send_text(ctx, f"{ctx.ingress_state.current_block.last_delta}{count};")

    def script(request):
        n = int(request.last_user_message)
        return text_stream(*[f"s{n}-" for _ in range(n % 7 + 3)])

    orchestrator = PolicyOrchestrator(Counting(), ScriptedLLMClient(script=script, delay=0.0005))

    async def one(n):
        request = Request(model="m", messages=[{"role": "user", "content": str(n)}])
        return n, stream_summary(await run_stream(orchestrator, request))["text"]

    results = await asyncio.gather(*(one(n) for n in range(50)))
    for n, text in results:
        expected = "".join(f"s{n}-{i};" for i in range(1, n % 7 + 4))
        assert text == expected


async def test_a_failing_listener_does_not_break_the_stream(caplog):
    def explode(event, transaction_id, payload):
        raise RuntimeError("listener bug")

    orchestrator = PolicyOrchestrator(
        NoOpPolicy(),
        ScriptedLLMClient(text_stream("fine")),
        listeners=[CallbackListener(explode)],
    )
    assert stream_summary(await run_stream(orchestrator))["text"] == "fine"
    assert "listener bug" in caplog.text


async def test_mark_blocked_sets_the_status():
    class Blocker(SimplePolicy):
        async def on_response_content(self, content, request):
            return content

        async def on_response_tool_call(self, tool_call, request):
            return None

        async def on_finish_reason(self, ctx):
            mark_blocked(ctx, "no tools allowed")
            await super().on_finish_reason(ctx)

    listener = Recorder()
    chunks = [
        tool_chunk(0, id="a", name="rm", args="{}"),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    orchestrator = PolicyOrchestrator(Blocker(), ScriptedLLMClient(chunks), listeners=[listener])
    await run_stream(orchestrator)
    assert [r.status for r in listener.results.values()] == ["blocked"]


async def test_results_carry_original_and_final_responses():
    listener = Recorder()
    from luthien_lab import UppercasePolicy

    orchestrator = PolicyOrchestrator(
        UppercasePolicy(), ScriptedLLMClient(text_stream("ab")), listeners=[listener]
    )
    await run_stream(orchestrator)
    await orchestrator.process_full_response(REQUEST)
    streamed, full = listener.results.values()
    for result in (streamed, full):
        assert summary(result.original_response)["text"] == "ab"
        assert summary(result.final_response)["text"] == "AB"


def test_bad_arguments_get_clear_errors():
    with pytest.raises(TypeError, match="Policy instance"):
        PolicyOrchestrator(NoOpPolicy, ScriptedLLMClient(text_stream("a")))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_timeout"):
        PolicyOrchestrator(NoOpPolicy(), ScriptedLLMClient(text_stream("a")), chunk_timeout=0)
    with pytest.raises(TypeError, match="CallbackListener"):
        PolicyOrchestrator(NoOpPolicy(), ScriptedLLMClient(text_stream("a")), listeners=[print])  # type: ignore[list-item]


async def test_dict_requests_are_accepted_and_validated():
    orchestrator = PolicyOrchestrator(NoOpPolicy(), ScriptedLLMClient(text_stream("a")))
    out = await run_stream(
        orchestrator, {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )  # type: ignore[arg-type]
    assert stream_summary(out)["text"] == "a"
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="messages"):
        await run_stream(orchestrator, {"model": "m"})  # type: ignore[arg-type]


async def test_both_listener_styles_see_the_same_events_as_frozen_records():
    class Emits(EveryHook):
        async def on_content_complete(self, ctx):
            ctx.observability.emit_event("seen", {"text": ctx.ingress_state.content})

    class Keeps(PipelineListener):
        def __init__(self):
            self.hooks, self.events = [], []

        def hook_fired(self, event):
            self.hooks.append(event)

        def event_emitted(self, event):
            self.events.append((event.name, event.data))

    class OldEvents(PipelineListener):
        def __init__(self):
            self.events = []

        def event_emitted(self, transaction_id, name, data, t_ns):
            self.events.append((name, data))

    new, old, keeps, old_events = Recorder(), PositionalRecorder(), Keeps(), OldEvents()
    payloads = []
    callback = CallbackListener(lambda name, tid, payload: payloads.append((name, set(payload))))
    orchestrator = PolicyOrchestrator(
        Emits(), ScriptedLLMClient(text_stream("a", "b")), listeners=[new, old, keeps, callback]
    )
    orchestrator.add_listener(old_events)
    await run_stream(orchestrator)
    assert len(new.events) > 8 and new.events == old.events
    assert keeps.events == old_events.events == [("seen", {"text": "ab"})]
    with pytest.raises(dataclasses.FrozenInstanceError):
        keeps.hooks[0].hook = "changed"
    hook_fields = {"hook", "chunk_index", "block", "start_ns", "end_ns"}
    assert ("hook_fired", hook_fields | {"egress_start", "egress_end"}) in payloads
    assert ("chunk_received", {"index", "chunk", "t_ns"}) in payloads
    assert payloads[-1] == ("transaction_finished", {"result"})


async def test_a_positional_listener_is_adapted_once_when_added_not_per_event(monkeypatch):
    from luthien_lab import _listeners

    inspected = []
    positional = _listeners._positional

    def counting(method):
        inspected.append(method.__name__)
        return positional(method)

    monkeypatch.setattr(_listeners, "_positional", counting)
    old = PositionalRecorder()
    orchestrator = PolicyOrchestrator(EveryHook(), ScriptedLLMClient(text_stream(*"abcdefgh")))
    orchestrator.add_listener(old)
    adapted = len(inspected)
    assert adapted == 5  # its overridden methods but transaction_started, one look each
    for _ in range(3):
        await run_stream(orchestrator)
    assert len(inspected) == adapted
    assert len([e for e in old.events if e[0] == "in"]) == 3 * 10
