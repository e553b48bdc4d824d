"""Who reads a stream: the consumer's own task while the policy's hooks return without
waiting (no hop between tasks per chunk), a task of its own once a hook has waited or
a task of the policy's own has put a chunk; the limits time the provider and the
hooks, never the consumer, and leave the consumer's task as they found it."""

from __future__ import annotations

import asyncio

import pytest

from luthien_lab import (
    NoOpPolicy,
    Policy,
    PolicyOrchestrator,
    ScriptedLLMClient,
    UpstreamTimeoutError,
)
from luthien_lab.errors import HookTimeoutError
from luthien_lab.streaming import helpers
from luthien_lab.streaming.chunks import create_text_chunk
from tests.support import REQUEST, stream_summary, text_stream


class TaskNoting(NoOpPolicy):
    """Notes the task each on_chunk_received runs in; waits there when ``wait``."""

    def __init__(self, wait: bool = False):
        self.wait = wait
        self.tasks: list[asyncio.Task] = []

    async def on_chunk_received(self, ctx):
        self.tasks.append(asyncio.current_task())
        if self.wait:
            await asyncio.sleep(0)
        await helpers.passthrough_last_chunk(ctx)


async def consume(stream) -> tuple[list, asyncio.Task]:
    return [chunk async for chunk in stream], asyncio.current_task()


async def test_hooks_that_never_wait_run_in_the_consumers_task_stream_after_stream():
    policy = TaskNoting()
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(text_stream("a", "b")))
    for _ in range(2):
        policy.tasks.clear()
        chunks, consumer = await consume(orchestrator.process_streaming_response(REQUEST))
        assert stream_summary(chunks)["text"] == "ab"
        assert policy.tasks == [consumer] * 4


async def test_once_a_hook_waits_the_stream_goes_on_in_a_task_of_its_own_and_so_do_later_ones():
    policy = TaskNoting(wait=True)
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(text_stream("a", "b")))
    chunks, consumer = await consume(orchestrator.process_streaming_response(REQUEST))
    assert stream_summary(chunks)["text"] == "ab"
    # The first hook waited in the consumer's task; the rest ran in one other task.
    assert policy.tasks[0] is consumer
    assert len(set(policy.tasks[1:])) == 1 and consumer not in policy.tasks[1:]
    policy.tasks.clear()
    chunks, consumer = await consume(orchestrator.process_streaming_response(REQUEST))
    assert stream_summary(chunks)["text"] == "ab"
    assert len(set(policy.tasks)) == 1 and consumer not in policy.tasks


class WaitsAtTheEnd(TaskNoting):
    async def on_stream_complete(self, ctx):
        await asyncio.sleep(0)


async def test_a_hook_that_waits_at_the_end_of_a_stream_sends_later_streams_through_their_own_task():
    policy = WaitsAtTheEnd()
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(text_stream("a")))
    chunks, consumer = await consume(orchestrator.process_streaming_response(REQUEST))
    assert policy.tasks == [consumer] * 3
    policy.tasks.clear()
    chunks, consumer = await consume(orchestrator.process_streaming_response(REQUEST))
    assert stream_summary(chunks)["text"] == "a"
    assert len(policy.tasks) == 3 and consumer not in policy.tasks


class EmitThenWait(Policy):
    def __init__(self):
        self.release = asyncio.Event()

    async def on_chunk_received(self, ctx):
        await helpers.passthrough_last_chunk(ctx)
        await self.release.wait()


@pytest.mark.timeout(10)
async def test_a_chunk_put_before_a_hook_waits_arrives_in_order_on_the_first_stream():
    policy = EmitThenWait()
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(text_stream("a")))
    asyncio.get_running_loop().call_later(0.05, policy.release.set)
    chunks = [chunk async for chunk in orchestrator.process_streaming_response(REQUEST)]
    assert [c.choices[0].delta.role for c in chunks[:1]] == ["assistant"]
    assert stream_summary(chunks)["text"] == "a" and len(chunks) == 3


@pytest.mark.timeout(10)
async def test_a_chunk_put_before_a_hook_waits_arrives_before_it_returns_once_hooks_were_seen_to_wait():
    policy = EmitThenWait()
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(text_stream("a")))
    asyncio.get_running_loop().call_later(0.02, policy.release.set)
    assert len([c async for c in orchestrator.process_streaming_response(REQUEST)]) == 3
    policy.release.clear()
    stream = orchestrator.process_streaming_response(REQUEST)
    first = await asyncio.wait_for(stream.__anext__(), 2)
    assert first.choices[0].delta.role == "assistant"
    assert not policy.release.is_set()
    policy.release.set()
    rest = [chunk async for chunk in stream]
    assert len(rest) == 2


class PutsFromItsOwnTask(NoOpPolicy):
    """On the first chunk, starts a task that puts a marker chunk a little later."""

    def __init__(self):
        self.tasks: set[asyncio.Task] = set()

    async def on_chunk_received(self, ctx):
        await helpers.passthrough_last_chunk(ctx)
        if len(ctx.ingress_state.raw_chunks) == 1:

            async def later():
                await asyncio.sleep(0.01)
                await ctx.egress_queue.put(create_text_chunk("marker"))

            task = asyncio.get_running_loop().create_task(later())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


@pytest.mark.timeout(10)
async def test_a_chunk_the_policys_own_task_puts_arrives_and_later_ones_while_the_provider_is_silent():
    policy = PutsFromItsOwnTask()
    # First stream: the marker is put while the consumer waits for the provider's
    # next chunk (0.05 s apart); it arrives with that step, before the rest.
    client = ScriptedLLMClient(text_stream("a", "b"), delay=0.05)
    orchestrator = PolicyOrchestrator(policy, client)
    chunks = [chunk async for chunk in orchestrator.process_streaming_response(REQUEST)]
    texts = [c.choices[0].delta.content for c in chunks]
    assert texts[:2] == ["", "marker"] and stream_summary(chunks)["text"] == "markerab"
    # Later streams are read by a task of their own: the marker arrives while the
    # provider has gone silent after its first chunk.
    orchestrator.llm_client = ScriptedLLMClient(text_stream("a", "b"), stall_after=1)
    stream = orchestrator.process_streaming_response(REQUEST)
    got = [await asyncio.wait_for(stream.__anext__(), 2) for _ in range(2)]
    assert [c.choices[0].delta.content for c in got] == ["", "marker"]
    await stream.aclose()


@pytest.mark.timeout(10)
async def test_a_slow_consumer_does_not_count_against_the_providers_chunk_timeout():
    # Each read takes a third of the limit; the consumer takes twice the limit over
    # each chunk. Timed from anything but the read's start, a read would be overdue.
    client = ScriptedLLMClient(text_stream(*"abcdefgh"), delay=0.05)
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, chunk_timeout=0.15)
    chunks = []
    async for chunk in orchestrator.process_streaming_response(REQUEST):
        chunks.append(chunk)
        await asyncio.sleep(0.3)
    assert stream_summary(chunks)["text"] == "abcdefgh"


@pytest.mark.timeout(10)
async def test_the_providers_silence_fails_the_stream_and_leaves_the_consumers_task_uncancelled():
    orchestrator = PolicyOrchestrator(
        NoOpPolicy(), ScriptedLLMClient(text_stream("a"), stall_after=1), chunk_timeout=0.05
    )
    got = []
    with pytest.raises(UpstreamTimeoutError):
        async for chunk in orchestrator.process_streaming_response(REQUEST):
            got.append(chunk)
    assert len(got) == 1
    assert asyncio.current_task().cancelling() == 0
    await asyncio.sleep(0.01)  # would raise CancelledError if a cancel were left over


@pytest.mark.timeout(10)
async def test_a_stream_another_task_goes_on_with_is_timed_out_in_that_task():
    orchestrator = PolicyOrchestrator(
        NoOpPolicy(), ScriptedLLMClient(text_stream("a"), stall_after=1), chunk_timeout=0.05
    )
    stream = orchestrator.process_streaming_response(REQUEST)
    await stream.__anext__()  # read by this task

    async def rest():
        return [chunk async for chunk in stream]

    # Waited for without awaiting it: a cancel meant for it cannot pass through.
    task = asyncio.get_running_loop().create_task(rest())
    await asyncio.wait({task}, timeout=5)
    assert task.done() and isinstance(task.exception(), UpstreamTimeoutError)
    assert asyncio.current_task().cancelling() == 0
    await asyncio.sleep(0.01)


async def test_the_readers_own_lookup_of_the_running_task_agrees_with_asyncio_in_every_task():
    # The reader looks the task up without asyncio.current_task (per chunk); on any
    # Python it must name the task asyncio names, or the watchdog cancels the wrong one.
    from luthien_lab.orchestrator import _upstream

    loop = asyncio.get_running_loop()

    async def named() -> tuple:
        return _upstream._task_of(loop), asyncio.current_task()

    seen = [await named(), *await asyncio.gather(named(), loop.create_task(named()))]
    assert all(mine is theirs and mine is not None for mine, theirs in seen)
    assert len({theirs for _mine, theirs in seen}) == 3


class Hangs(Policy):
    hook_timeout = 0.05

    async def on_content_delta(self, ctx):
        await helpers.passthrough_last_chunk(ctx)
        await asyncio.Event().wait()


@pytest.mark.timeout(10)
async def test_a_hook_past_its_timeout_fails_the_stream_and_leaves_the_consumers_task_uncancelled():
    orchestrator = PolicyOrchestrator(Hangs(), ScriptedLLMClient(text_stream("a")))
    got = []
    with pytest.raises(HookTimeoutError):
        async for chunk in orchestrator.process_streaming_response(REQUEST):
            got.append(chunk)
    assert stream_summary(got)["text"] == "a", "what the hook put before it hung arrives"
    assert asyncio.current_task().cancelling() == 0
    await asyncio.sleep(0.01)
