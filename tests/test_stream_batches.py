"""Streams read and written a group at a time: ``ChunkBatches`` (a client's stream of
chunks that arrived together) and ``process_streaming_batches`` (the egress chunks
ready together), each the same chunks, in the same order, as the one-by-one way."""

from __future__ import annotations

import pytest

from luthien_lab import (
    NoOpPolicy,
    PolicyOrchestrator,
    Request,
    RequestRefused,
    ScriptedLLMClient,
    SimplePolicy,
    StringReplacePolicy,
)
from luthien_lab.clients import ChunkBatches, LLMClient
from tests.support import REQUEST, stream_summary, text_stream
from tests.test_orchestrator import Recorder


class GroupedClient(LLMClient):
    """Streams ``chunks`` in the given groups, as ChunkBatches; notes when closed."""

    def __init__(self, groups: list[list]) -> None:
        self.groups = groups
        self.closed = 0

    def stream(self, request):
        async def batches():
            try:
                for group in self.groups:
                    yield list(group)
            finally:
                self.closed += 1

        return ChunkBatches(batches())

    async def complete(self, request):
        raise NotImplementedError


def _groups() -> list[list]:
    chunks = text_stream("Hel", "lo ", "wor", "ld", "!")
    return [chunks[:3], chunks[3:4], chunks[4:]]


async def test_chunk_batches_iterate_chunk_by_chunk_and_close_their_groups():
    groups = _groups()
    client = GroupedClient(groups)
    flat = [chunk async for chunk in client.stream(REQUEST)]
    assert flat == [chunk for group in groups for chunk in group]
    assert client.closed == 1

    stream = client.stream(REQUEST)
    assert await stream.__anext__() is groups[0][0]
    await stream.aclose()  # type: ignore[attr-defined]
    assert client.closed == 2

    assert [group async for group in client.stream(REQUEST).batches()] == groups


async def test_the_pipeline_reads_a_grouped_stream_with_every_chunks_hooks_in_order():
    groups = _groups()
    listener = Recorder()
    orchestrator = PolicyOrchestrator(NoOpPolicy(), GroupedClient(groups), listeners=[listener])
    out = [chunk async for chunk in orchestrator.process_streaming_response(REQUEST)]
    flat = [chunk for group in groups for chunk in group]
    assert out == flat and len(flat) == 7
    received = [event[1] for event in listener.events if event[0] == "in"]
    fired = [event[1] for event in listener.events if event[0] == "on_chunk_received"]
    assert received == fired == list(range(7))
    (result,) = listener.results.values()
    assert result.status == "ok" and result.ingress_chunks == flat


@pytest.mark.parametrize(
    "policy", [NoOpPolicy, lambda: StringReplacePolicy(replacements={"lo w": "LO W"})]
)
async def test_batches_are_the_chunks_of_the_stream_never_an_empty_list(policy):
    chunks = [chunk for group in _groups() for chunk in group]
    one_by_one = PolicyOrchestrator(policy(), ScriptedLLMClient(chunks))
    expected = [chunk async for chunk in one_by_one.process_streaming_response(REQUEST)]
    for client in (ScriptedLLMClient(chunks), GroupedClient(_groups())):
        grouped = PolicyOrchestrator(policy(), client)
        batches = [batch async for batch in grouped.process_streaming_batches(REQUEST)]
        assert batches and all(type(batch) is list and batch for batch in batches)
        flat = [chunk for batch in batches for chunk in batch]
        assert [c.model_dump() for c in flat] == [c.model_dump() for c in expected]
    assert stream_summary(flat)["text"] == (
        "Hello world!" if policy is NoOpPolicy else "HelLO World!"
    )


async def test_a_refused_stream_is_one_batch_and_recorded_as_blocked():
    class Refuse(SimplePolicy):
        async def on_request_simple(self, request):
            raise RequestRefused("not today")

    listener = Recorder()
    client = ScriptedLLMClient(text_stream("never"))
    orchestrator = PolicyOrchestrator(Refuse(), client, listeners=[listener])
    request = Request(model="m", messages=[{"role": "user", "content": "hi"}])
    batches = [batch async for batch in orchestrator.process_streaming_batches(request)]
    assert len(batches) == 1 and stream_summary(batches[0])["text"] == "not today"
    assert [r.status for r in listener.results.values()] == ["blocked"]
    assert client.requests == []
