"""The assembler: chunks in, blocks and block events out."""

from __future__ import annotations

from luthien_lab import (
    ContentStreamBlock,
    StreamingChunkAssembler,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.clients import ScriptedLLMClient
from luthien_lab.streaming.assembler import COMPLETE, DELTA, FINISH
from luthien_lab.streaming.chunks import create_chunk, tool_call_delta
from tests.support import text_stream, tool_chunk


def feed_all(chunks):
    assembler = StreamingChunkAssembler()
    events = []
    for chunk in chunks:
        events.append(
            [(kind, block.id if block else None) for kind, block in assembler.feed(chunk)]
        )
    events.append([(kind, block.id) for kind, block in assembler.finish()])
    return assembler, events


def test_text_stream_builds_one_content_block():
    assembler, events = feed_all(text_stream("Hel", "lo ", "world"))
    state = assembler.state
    assert [type(b) for b in state.blocks] == [ContentStreamBlock]
    assert state.blocks[0].content == "Hello world"
    assert state.blocks[0].is_complete
    assert state.finish_reason == "stop"
    assert len(state.raw_chunks) == 5
    assert state.blocks[0].chunk_indices == [1, 2, 3]
    # role chunk: nothing; three deltas; finish completes the block then FINISH
    assert events == [
        [],
        [(DELTA, "content")],
        [(DELTA, "content")],
        [(DELTA, "content")],
        [(COMPLETE, "content"), (FINISH, None)],
        [],
    ]


def test_recorded_streams_rebuild_text_and_tool_calls(recorded):
    name, raw = recorded
    client = ScriptedLLMClient(raw)
    assembler, _ = feed_all(client._chunks)
    state = assembler.state
    text = "".join(
        (item["choices"][0]["delta"].get("content") or "") for item in raw if item["choices"]
    )
    assert state.content == text
    expected_tools = {}
    for item in raw:
        for call in (item["choices"] and item["choices"][0]["delta"].get("tool_calls")) or []:
            slot = expected_tools.setdefault(call["index"], ["", ""])
            slot[0] = slot[0] or (call["function"].get("name") or "")
            slot[1] += call["function"].get("arguments") or ""
    assert [(b.name, b.arguments) for b in state.tool_calls] == [
        tuple(expected_tools[i]) for i in sorted(expected_tools)
    ]
    assert all(block.is_complete for block in state.blocks)
    assert state.finish_reason == ("stop" if name == "text" else "tool_calls")
    assert len(state.raw_chunks) == len(raw)


def test_anthropic_empty_content_on_tool_chunks_is_stripped(recorded):
    name, raw = recorded
    if name != "anthropic_tools":
        return
    assembler, _ = feed_all(ScriptedLLMClient(raw)._chunks)
    content_blocks = [b for b in assembler.state.blocks if isinstance(b, ContentStreamBlock)]
    assert len(content_blocks) == 1
    for chunk in assembler.state.raw_chunks:
        delta = chunk.choices[0].delta
        if delta.tool_calls:
            assert delta.content is None


def test_several_tool_calls_in_one_delta_fire_every_event_in_order():
    chunks = [
        create_chunk(None, role="assistant", content=""),
        create_chunk(
            None,
            tool_calls=[
                tool_call_delta(0, id="a", name="f", arguments='{"x": 1}'),
                tool_call_delta(1, id="b", name="g", arguments='{"y": 2}'),
            ],
        ),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    assembler, events = feed_all(chunks)
    assert events[1] == [(DELTA, "a"), (COMPLETE, "a"), (DELTA, "b")]
    assert events[2] == [(COMPLETE, "b"), (FINISH, None)]
    assert [(b.id, b.name, b.parsed_arguments) for b in assembler.state.tool_calls] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
    ]


def test_a_chunk_that_ends_content_and_starts_a_tool_call():
    chunks = [
        create_chunk(None, role="assistant", content="Let me check"),
        create_chunk(None, content=".", tool_calls=[tool_call_delta(0, id="t", name="f")]),
        tool_chunk(0, args='{"q":'),
        tool_chunk(0, args=' "x"}'),
        create_chunk(None, finish_reason="tool_calls"),
    ]
    assembler, events = feed_all(chunks)
    assert events[1] == [(DELTA, "content"), (COMPLETE, "content"), (DELTA, "t")]
    assert assembler.state.content == "Let me check."
    assert assembler.state.tool_calls[0].parsed_arguments == {"q": "x"}
    assert assembler.state.tool_calls[0].chunk_indices == [1, 2, 3]


def test_thinking_never_leaks_into_content():
    chunks = [
        create_chunk(None, role="assistant", reasoning_content="Let me think. "),
        create_chunk(None, reasoning_content="The answer is 4."),
        create_chunk(None, content="4"),
        create_chunk(None, finish_reason="stop"),
    ]
    assembler, events = feed_all(chunks)
    thinking, content = assembler.state.blocks
    assert isinstance(thinking, ThinkingStreamBlock)
    assert thinking.content == "Let me think. The answer is 4."
    assert content.content == "4"
    assert events[2] == [(COMPLETE, thinking.id), (DELTA, "content")]


def test_stream_cut_short_still_completes_its_open_block():
    assembler, events = feed_all([create_chunk(None, content="partial")])
    assert events[-1] == [(COMPLETE, "content")]
    assert assembler.state.finish_reason is None


def test_usage_only_chunk_is_kept_and_causes_no_event():
    from luthien_lab.streaming.chunks import create_usage_chunk

    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assembler, events = feed_all([*text_stream("hi"), create_usage_chunk(usage)])
    assert events[-2] == []
    assert assembler.state.usage is not None
    assert len(assembler.state.raw_chunks) == 4


def test_tool_call_without_id_gets_a_placeholder_then_the_real_id():
    assembler, _ = feed_all([tool_chunk(0, name="f"), tool_chunk(0, id="real", args="{}")])
    block = assembler.state.tool_calls[0]
    assert isinstance(block, ToolCallStreamBlock)
    assert block.id == "real"
    assert block.tool_call.function.name == "f"


async def test_seed_style_process_with_callback():
    seen = []

    async def on_chunk(chunk, state, context):
        seen.append((state.current_block.id if state.current_block else None, context))

    async def source():
        for chunk in text_stream("a", "b"):
            yield chunk

    assembler = StreamingChunkAssembler(on_chunk)
    await assembler.process(source(), "ctx")
    assert seen == [(None, "ctx"), ("content", "ctx"), ("content", "ctx"), ("content", "ctx")]
    assert assembler.state.content == "ab"


def test_point_to_names_the_block_of_each_event_of_a_chunk():
    # One chunk, two parallel tool calls: after feed the state names the last block;
    # point_to names each event's block in turn (what the hooks of that event see).
    assembler = StreamingChunkAssembler()
    chunk = create_chunk(
        None,
        tool_calls=[tool_call_delta(0, id="a", name="f"), tool_call_delta(1, id="b", name="g")],
    )
    events = assembler.feed(chunk)
    assert [(kind, block.id) for kind, block in events] == [
        (DELTA, "a"),
        (COMPLETE, "a"),
        (DELTA, "b"),
    ]
    state = assembler.state
    assert (state.current_block.id, state.just_completed.id) == ("b", "a")
    assembler.point_to(*events[0])
    assert state.current_block.id == "a"
    assembler.point_to(*events[1])
    assert (state.current_block.id, state.just_completed.id) == ("a", "a")
    assembler.point_to(*events[2])
    assert state.current_block.id == "b"
