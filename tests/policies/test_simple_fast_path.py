"""SimplePolicy's unchanged path: a block nobody transforms streams as it arrives.

Checked by order and structure, never by duration: which chunk goes out before which
ingress chunk arrives, which objects go out (the provider's own, or slices), and
that the per-chunk path reads chunk fields without pydantic's attribute fallback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from luthien_lab import (
    NoOpPolicy,
    PipelineListener,
    PolicyOrchestrator,
    ScriptedLLMClient,
    SimplePolicy,
    UppercasePolicy,
    reconstruct_full_response,
)
from luthien_lab.policies import (
    RegexBlockPolicy,
    StringReplacePolicy,
    ToolCallJudgePolicy,
    ToolFilterPolicy,
)
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk, tool_call_delta
from tests.support import run_stream, stream_summary, text_stream, tool_chunk


class Order(PipelineListener):
    """The pipeline's events in order: ("in", index) and ("out", index)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def chunk_received(self, transaction_id, index, chunk, t_ns):
        self.events.append(("in", index))

    def chunk_sent(self, transaction_id, index, chunk, t_ns):
        self.events.append(("out", index))

    def sent_before(self, ingress_index: int) -> int:
        """How many chunks went out before ingress chunk ``ingress_index`` arrived."""
        position = self.events.index(("in", ingress_index))
        return sum(1 for kind, _ in self.events[:position] if kind == "out")


class Buffered(SimplePolicy):
    """Overrides both transforms without changing anything: every block is buffered."""

    async def on_response_content(self, content, request):
        return content

    async def on_response_tool_call(self, tool_call, request):
        return tool_call


class JudgesTools(SimplePolicy):
    """Transforms tool calls only: text streams, tool calls wait until complete."""

    async def on_response_tool_call(self, tool_call, request):
        return tool_call


async def run_ordered(policy: Any, chunks: list[Any]) -> tuple[list[Any], Order]:
    order = Order()
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(chunks), listeners=[order])
    return await run_stream(orchestrator), order


def roles_and_finishes(chunks: list[Any]) -> tuple[list[int], list[int]]:
    roles = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.role]
    finishes = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason]
    return roles, finishes


async def test_text_goes_out_chunk_by_chunk_as_it_arrives():
    chunks = text_stream("one ", "two ", "three")
    out, order = await run_ordered(SimplePolicy(), chunks)
    assert out == chunks
    assert all(a is b for a, b in zip(out, chunks, strict=True)), "the provider's own chunks"
    # The role chunk and each text chunk are out before the next chunk comes in.
    for index in range(1, len(chunks)):
        assert order.sent_before(index) == index


async def test_a_buffered_policy_holds_the_text_until_the_block_completes():
    chunks = text_stream("one ", "two ", "three")
    out, order = await run_ordered(Buffered(), chunks)
    assert out == chunks
    assert order.sent_before(len(chunks) - 1) == 1, "only the role chunk before the finish"


async def test_the_last_text_chunk_is_out_before_the_finish_arrives():
    chunks = text_stream(*(f"w{i} " for i in range(50)))
    _out, order = await run_ordered(SimplePolicy(), chunks)
    finish = len(chunks) - 1
    assert order.sent_before(finish) == finish
    assert order.events[-1] == ("out", finish)


@pytest.mark.parametrize("policy_class", [SimplePolicy, Buffered, JudgesTools])
async def test_recorded_streams_give_the_same_response_streamed_or_buffered(recorded, policy_class):
    _name, raw = recorded
    client = ScriptedLLMClient(raw)
    expected = stream_summary(client._chunks)
    out = await run_stream(PolicyOrchestrator(policy_class(), client))
    assert stream_summary(out) == expected
    roles, finishes = roles_and_finishes(out)
    assert roles == [0], "the role goes out once, first"
    assert len(finishes) == 1
    for chunk in out:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        assert not (delta.content and delta.tool_calls), "one block per chunk"
    assert len({id(c) for c in out}) == len(out), "no chunk twice"


def _tool_indices(chunks: list[Any]) -> list[int]:
    return [
        call.index
        for chunk in chunks
        if chunk.choices
        for call in (chunk.choices[0].delta.tool_calls or [])
    ]


async def test_recorded_streams_streamed_unchanged_are_the_provider_chunks(recorded):
    name, raw = recorded
    client = ScriptedLLMClient(raw)
    out, order = await run_ordered(SimplePolicy(), client._chunks)
    if name in ("text", "openai_tools"):
        # One block per chunk, tool calls numbered from 0: nothing to rebuild.
        assert all(a is b for a, b in zip(out, client._chunks, strict=True))
    calls = len(set(_tool_indices(client._chunks)))
    assert sorted(set(_tool_indices(out))) == list(range(calls))
    # Every chunk went out before the next ingress chunk came in (nothing buffered).
    received = [i for kind, i in order.events if kind == "in"]
    for index in received[1:-1]:
        assert order.sent_before(index + 1) >= order.sent_before(index)
    finish = len(client._chunks) - 1
    payload = [c for c in out if c.choices and not c.choices[0].finish_reason]
    assert order.sent_before(finish) == len(payload)


async def test_tool_calls_go_out_numbered_from_zero_in_order(recorded):
    _name, raw = recorded
    client = ScriptedLLMClient(raw)
    provider_indices = _tool_indices(client._chunks)  # Anthropic's may start at 1
    out = await run_stream(PolicyOrchestrator(SimplePolicy(), client))
    indices = _tool_indices(out)
    assert indices == sorted(indices), "in order"
    assert sorted(set(indices)) == list(range(len(set(provider_indices))))


async def test_thinking_signature_goes_out_with_its_block_and_before_the_text():
    signature = create_chunk(None)
    signature.choices[0].delta.thinking_blocks = [
        {"type": "thinking", "thinking": "", "signature": "sig-abc=="}
    ]
    chunks = [
        create_chunk(None, role="assistant", reasoning_content="weighing "),
        create_chunk(None, reasoning_content="it up"),
        signature,
        create_chunk(None, content="The answer is 4."),
        create_chunk(None, finish_reason="stop"),
    ]
    for policy in (SimplePolicy(), UppercasePolicy()):
        out, order = await run_ordered(policy, chunks)
        assert any(c is signature for c in out), type(policy).__name__
        position = next(i for i, c in enumerate(out) if c is signature)
        text = next(i for i, c in enumerate(out) if c.choices and c.choices[0].delta.content)
        assert position < text
        assert order.sent_before(3) == 3, "thinking and its signature streamed"
        message = reconstruct_full_response(out).choices[0].message
        assert message.reasoning_content == "weighing it up"


async def test_tool_calls_wait_for_judgement_while_text_before_them_streams():
    chunks = [
        create_chunk(None, role="assistant", content="Let me "),
        create_chunk(None, content="check."),
        tool_chunk(0, id="call_a", name="get_weather", args='{"city":'),
        tool_chunk(0, args=' "Paris"}'),
        create_chunk(None, content=" Done."),  # text again after the tool call
        create_chunk(None, finish_reason="tool_calls"),
    ]
    out, order = await run_ordered(JudgesTools(), chunks)
    assert order.sent_before(2) == 2, "the text streamed"
    assert order.sent_before(4) == 2, "the tool call waits for its judgement"
    kinds = [
        "tool" if c.choices[0].delta.tool_calls else "text" if c.choices[0].delta.content else "-"
        for c in out
    ]
    assert kinds == ["text", "text", "tool", "tool", "text", "-"]
    assert stream_summary(out) == {
        "text": "Let me check. Done.",
        "tool_calls": [("get_weather", {"city": "Paris"})],
        "finish_reason": "tool_calls",
    }


async def test_a_chunk_with_text_and_a_tool_call_is_split_while_streaming():
    chunks = [
        create_chunk(None, role="assistant", content="Checking"),
        create_chunk(None, content=" now", tool_calls=[tool_call_delta(0, id="t", name="f")]),
        tool_chunk(0, args="{}"),
        create_chunk(None, content="", finish_reason="tool_calls"),
    ]
    out = await run_stream(PolicyOrchestrator(SimplePolicy(), ScriptedLLMClient(chunks)))
    assert [c.choices[0].delta.content for c in out[:2]] == ["Checking", " now"]
    assert out[2].choices[0].delta.tool_calls[0].function.name == "f"
    assert out[1] is not chunks[1], "a slice, the ingress chunk left alone"
    assert chunks[1].choices[0].delta.tool_calls, "the ingress chunk keeps both"
    assert stream_summary(out) == {
        "text": "Checking now",
        "tool_calls": [("f", {})],
        "finish_reason": "tool_calls",
    }


async def test_a_repeated_role_is_dropped_from_a_copy_not_from_the_ingress_chunk():
    chunks = [
        create_chunk(None, role="assistant", content="a"),
        create_chunk(None, role="assistant", content="b"),
        create_chunk(None, finish_reason="stop"),
    ]
    out = await run_stream(PolicyOrchestrator(SimplePolicy(), ScriptedLLMClient(chunks)))
    assert [c.choices[0].delta.role for c in out] == ["assistant", None, None]
    assert chunks[1].choices[0].delta.role == "assistant"
    assert stream_summary(out)["text"] == "ab"


async def test_usage_trailer_follows_the_finish_while_streaming():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    chunks = [*text_stream("hi", " there"), create_usage_chunk(usage)]
    out = await run_stream(PolicyOrchestrator(SimplePolicy(), ScriptedLLMClient(chunks)))
    assert out == chunks
    assert out[-1].usage.total_tokens == 5


async def test_one_policy_instance_streams_two_transactions_at_once():
    import asyncio

    policy = SimplePolicy()
    first, second = text_stream("a", "b", "c"), text_stream("x", "y")
    results = await asyncio.gather(
        run_stream(PolicyOrchestrator(policy, ScriptedLLMClient(first))),
        run_stream(PolicyOrchestrator(policy, ScriptedLLMClient(second))),
    )
    assert results == [first, second]


# ----- the per-chunk path reads fields directly -----


def _judge_never_asked(messages):  # pragma: no cover - text-only streams have no tool call
    raise AssertionError("the judge was asked on a text-only stream")


BUILTINS = {
    "noop": NoOpPolicy,
    "simple": SimplePolicy,
    "uppercase": UppercasePolicy,
    "replace": lambda: StringReplacePolicy(replacements={"fox": "cat", "lazy dog": "hound"}),
    "regex": lambda: RegexBlockPolicy(patterns=[r"sk-[a-z0-9]{8,}"]),
    "toolfilter": lambda: ToolFilterPolicy(deny=["Bash"]),
    "judge": lambda: ToolCallJudgePolicy(judge=_judge_never_asked),
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
async def test_no_pydantic_attribute_fallback_on_the_per_chunk_path(name, monkeypatch):
    """pydantic's ``__getattr__`` (the slow path: litellm keeps most delta and choice
    fields as extras) is never reached from the policies and streaming code while a
    text-only stream goes through a built-in."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    chunks = text_stream(*(f" {w}" for w in words * 20))
    here = ("/luthien_lab/policies/", "/luthien_lab/streaming/")
    calls: list[str] = []
    original = BaseModel.__getattr__

    def counting(self, item):
        caller = sys._getframe(1).f_code.co_filename.replace("\\", "/")
        if any(part in caller for part in here):
            calls.append(f"{type(self).__name__}.{item} from {caller}")
        return original(self, item)

    monkeypatch.setattr(BaseModel, "__getattr__", counting)
    out = await run_stream(PolicyOrchestrator(BUILTINS[name](), ScriptedLLMClient(chunks)))
    monkeypatch.undo()
    assert calls == []
    assert stream_summary(out)["finish_reason"] == "stop"


def test_recorded_fixture_files_are_in_the_repository():
    from tests.conftest import RECORDED, RECORDED_FILES

    for file in RECORDED_FILES.values():
        data = json.loads((RECORDED / file).read_text())
        assert data and all("choices" in item for item in data)
