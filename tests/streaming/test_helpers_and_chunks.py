"""Helpers and chunk builders emit well-formed chunks."""

from __future__ import annotations

import pytest

from luthien_lab import (
    Policy,
    PolicyOrchestrator,
    ScriptedLLMClient,
    reconstruct_full_response,
)
from luthien_lab.streaming import helpers
from luthien_lab.streaming.chunks import create_tool_call_chunk
from tests.support import run_stream, text_stream


def assert_well_formed(chunk):
    assert chunk.object == "chat.completion.chunk"
    if chunk.choices:
        choice = chunk.choices[0]
        assert type(choice).__name__ == "StreamingChoices"
        assert choice.delta is not None


class Helpers(Policy):
    async def on_chunk_received(self, ctx):
        last = helpers.get_last_ingress_chunk(ctx)
        assert last is ctx.ingress_state.raw_chunks[-1]

    async def on_content_complete(self, ctx):
        await helpers.send_text(ctx, "[" + ctx.ingress_state.just_completed.content + "]")
        await helpers.send_tool_call(
            ctx, {"id": "x", "function": {"name": "f", "arguments": {"a": 1}}}
        )

    async def on_stream_complete(self, ctx):
        await helpers.passthrough_accumulated_chunks(ctx)


async def test_helpers_send_well_formed_chunks_with_the_streams_id():
    ingress = text_stream("ab", "c")
    out = await run_stream(PolicyOrchestrator(Helpers(), ScriptedLLMClient(ingress)))
    for chunk in out:
        assert_well_formed(chunk)
    built = out[:2]
    assert {c.id for c in built} == {ingress[0].id}
    response = reconstruct_full_response(out)
    assert response.choices[0].message.content.startswith("[abc]")
    assert response.choices[0].message.tool_calls[0].function.arguments == '{"a": 1}'
    # passthrough_accumulated_chunks sent every raw chunk once, in order
    assert out[2:] == list(ingress)


async def test_send_text_refuses_empty_text():
    class Empty(Policy):
        async def on_chunk_received(self, ctx):
            await helpers.send_text(ctx, "")

    from luthien_lab import PolicyError

    with pytest.raises(PolicyError, match="non-empty"):
        await run_stream(PolicyOrchestrator(Empty(), ScriptedLLMClient(text_stream("x"))))


def test_tool_call_chunk_from_litellm_tool_call():
    from litellm.types.utils import ChatCompletionMessageToolCall, Function

    call = ChatCompletionMessageToolCall(id="c1", function=Function(name="g", arguments="{}"))
    chunk = create_tool_call_chunk(call, index=2)
    assert_well_formed(chunk)
    entry = chunk.choices[0].delta.tool_calls[0]
    assert (entry.index, entry.id, entry.function.name) == (2, "c1", "g")
