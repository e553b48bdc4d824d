"""SimplePolicy over streams: content transforms, tool-call judging, ordering."""

from __future__ import annotations

import json

import pytest

from luthien_lab import (
    NoOpPolicy,
    PolicyOrchestrator,
    ScriptedLLMClient,
    SimplePolicy,
    UppercasePolicy,
)
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk, tool_call_delta
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream, tool_chunk


class BlockTool(SimplePolicy):
    def __init__(self, name: str):
        self.name = name

    async def on_response_tool_call(self, tool_call, request):
        return None if tool_call.function.name == self.name else tool_call


class BlockAllTools(SimplePolicy):
    async def on_response_tool_call(self, tool_call, request):
        return None


class RewriteArgs(SimplePolicy):
    async def on_response_tool_call(self, tool_call, request):
        args = json.loads(tool_call.function.arguments)
        args["checked"] = True
        tool_call = tool_call.model_copy(deep=True)
        tool_call.function.arguments = json.dumps(args)
        return tool_call


def roles_and_finishes(chunks):
    roles = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.role]
    finishes = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason]
    return roles, finishes


async def test_uppercase_on_recorded_streams_uppercases_text_and_keeps_tools(recorded):
    _name, raw = recorded
    client = ScriptedLLMClient(raw)
    original = stream_summary(client._chunks)
    out = await run_stream(PolicyOrchestrator(UppercasePolicy(), client))
    result = stream_summary(out)
    assert result["text"] == original["text"].upper()
    assert result["tool_calls"] == original["tool_calls"]
    assert result["finish_reason"] == original["finish_reason"]
    roles, finishes = roles_and_finishes(out)
    assert roles == [0], "the role goes out once, first"
    assert len(finishes) == 1, "one finish chunk"
    for trailer in out[finishes[0] + 1 :]:  # only usage trailers may follow it
        delta = trailer.choices[0].delta if trailer.choices else None
        assert delta is None or not (delta.content or delta.tool_calls or delta.role)


async def test_passthrough_reproduces_recorded_streams_exactly(recorded):
    _name, raw = recorded
    client = ScriptedLLMClient(raw)
    out = await run_stream(PolicyOrchestrator(NoOpPolicy(), client))
    assert out == client._chunks
    assert [c.model_dump() for c in out] == [c.model_dump() for c in client._chunks]


@pytest.mark.parametrize(
    "policy", [UppercasePolicy(), BlockTool("get_time"), BlockAllTools(), RewriteArgs()]
)
async def test_streaming_and_non_streaming_give_the_same_response(policy, recorded):
    _name, raw = recorded
    client = ScriptedLLMClient(raw)
    orchestrator = PolicyOrchestrator(policy, client)
    streamed = stream_summary(await run_stream(orchestrator))
    full = summary(await orchestrator.process_full_response(REQUEST))
    assert streamed == full


async def test_blocking_every_tool_call_changes_finish_reason_to_stop(recorded):
    name, raw = recorded
    if "tools" not in name and "thinking" not in name:
        return
    orchestrator = PolicyOrchestrator(BlockAllTools(), ScriptedLLMClient(raw))
    result = stream_summary(await run_stream(orchestrator))
    assert result["tool_calls"] == []
    assert result["finish_reason"] == "stop"
    full = await orchestrator.process_full_response(REQUEST)
    assert full.choices[0].finish_reason == "stop"


async def test_blocking_some_tool_calls_reindexes_the_rest_and_keeps_tool_calls_reason():
    chunks = [
        create_chunk(None, role="assistant", content=""),
        tool_chunk(0, id="a", name="get_time", args='{"tz": "UTC"}'),
        tool_chunk(1, id="b", name="get_weather", args='{"city":'),
        tool_chunk(1, args=' "Paris"}'),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    out = await run_stream(PolicyOrchestrator(BlockTool("get_time"), ScriptedLLMClient(chunks)))
    result = stream_summary(out)
    assert result == {
        "text": "",
        "tool_calls": [("get_weather", {"city": "Paris"})],
        "finish_reason": "tool_calls",
    }
    indices = {tc.index for c in out if c.choices for tc in (c.choices[0].delta.tool_calls or [])}
    assert indices == {0}


async def test_unchanged_blocks_go_out_as_the_original_chunks():
    chunks = text_stream("one ", "two")

    class Same(SimplePolicy):
        pass

    out = await run_stream(PolicyOrchestrator(Same(), ScriptedLLMClient(chunks)))
    assert out == chunks


async def test_changed_tool_call_goes_out_as_one_new_chunk():
    chunks = [
        tool_chunk(0, id="a", name="f", args='{"x"'),
        tool_chunk(0, args=": 1}"),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    out = await run_stream(PolicyOrchestrator(RewriteArgs(), ScriptedLLMClient(chunks)))
    assert stream_summary(out)["tool_calls"] == [("f", {"x": 1, "checked": True})]
    assert len(out) == 2
    assert out[0].choices[0].delta.role == "assistant"


async def test_usage_trailer_follows_the_finish_chunk():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    chunks = [*text_stream("hi"), create_usage_chunk(usage)]
    out = await run_stream(PolicyOrchestrator(UppercasePolicy(), ScriptedLLMClient(chunks)))
    assert out[-1].choices == []
    assert out[-1].usage.total_tokens == 5
    assert out[-2].choices[0].finish_reason == "stop"
    roles, finishes = roles_and_finishes(out)
    assert roles == [0] and finishes == [len(out) - 2]


async def test_mixed_chunk_is_split_between_its_blocks():
    chunks = [
        create_chunk(None, role="assistant", content="Checking"),
        create_chunk(None, content=" now", tool_calls=[tool_call_delta(0, id="t", name="f")]),
        tool_chunk(0, args="{}"),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    out = await run_stream(PolicyOrchestrator(UppercasePolicy(), ScriptedLLMClient(chunks)))
    result = stream_summary(out)
    assert result == {
        "text": "CHECKING NOW",
        "tool_calls": [("f", {})],
        "finish_reason": "tool_calls",
    }
    for chunk in out:
        delta = chunk.choices[0].delta
        assert not (delta.content and delta.tool_calls), "each chunk now carries one block"


async def test_thinking_is_forwarded_apart_from_the_text():
    chunks = [
        create_chunk(None, role="assistant", reasoning_content="hmm, "),
        create_chunk(None, reasoning_content="four"),
        create_chunk(None, content="it is four"),
        create_chunk(None, finish_reason="stop"),
    ]
    out = await run_stream(PolicyOrchestrator(UppercasePolicy(), ScriptedLLMClient(chunks)))
    from luthien_lab import reconstruct_full_response

    message = reconstruct_full_response(out).choices[0].message
    assert message.content == "IT IS FOUR"
    assert message.reasoning_content == "hmm, four"


async def test_removing_all_text_sends_no_empty_chunk():
    class Drop(SimplePolicy):
        async def on_response_content(self, content, request):
            return ""

    out = await run_stream(PolicyOrchestrator(Drop(), ScriptedLLMClient(text_stream("secret"))))
    assert stream_summary(out)["text"] == ""
    assert all(not (c.choices[0].delta.content) for c in out)


async def test_text_after_a_tool_call_is_transformed_once():
    """The content block reopens after a tool call: only the new text is transformed
    and sent (the text before the call went out already)."""
    from luthien_lab import PolicyOrchestrator, Request, ScriptedLLMClient, UppercasePolicy
    from luthien_lab.streaming.chunks import create_chunk, tool_call_delta

    chunks = [
        create_chunk(None, role="assistant", content=""),
        create_chunk(None, content="ok. "),
        create_chunk(None, tool_calls=[tool_call_delta(0, id="c1", name="f", arguments="{}")]),
        create_chunk(None, content="more"),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    orchestrator = PolicyOrchestrator(UppercasePolicy(), ScriptedLLMClient(chunks))
    request = Request(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    out = [c async for c in orchestrator.process_streaming_response(request)]
    text = "".join(c.choices[0].delta.content or "" for c in out if c.choices)
    assert text == "OK. MORE"
    calls = [tc for c in out if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [tc.function.name for tc in calls] == ["f"]


@pytest.mark.parametrize(
    ("policy", "changes"),
    [(SimplePolicy(), False), (BlockTool("not_called"), False), (UppercasePolicy(), True),
     (BlockTool("get_time"), True)],
    ids=["no overrides", "a tool filter passing it all", "uppercase", "a blocked tool"],
)  # fmt: skip
async def test_a_full_response_nothing_changed_is_returned_as_it_came(policy, changes):
    chunks = [
        *text_stream("the time", finish="tool_calls")[:-1],
        tool_chunk(0, id="a", name="get_time", args='{"tz": "UTC"}'),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    upstream = ScriptedLLMClient(chunks)
    original = await upstream.complete(REQUEST)
    before = original.model_dump()

    class Returns(ScriptedLLMClient):
        async def complete(self, request):
            return original

    final = await PolicyOrchestrator(policy, Returns(chunks)).process_full_response(REQUEST)
    assert (final is not original) is changes
    assert original.model_dump() == before  # the policy worked on a copy
