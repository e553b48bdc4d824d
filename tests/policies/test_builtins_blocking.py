"""RegexBlockPolicy and ToolFilterPolicy, streaming and non-streaming."""

from __future__ import annotations

import pytest

from luthien_lab import CallbackListener, PolicyOrchestrator, ScriptedLLMClient
from luthien_lab.errors import ConfigError
from luthien_lab.policies import RegexBlockPolicy, ToolFilterPolicy
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream, tool_chunk


def tools_stream(text: str = "Let me check.") -> list:
    return [
        *text_stream(*(text[:5], text[5:]) if text else (), role_chunk=True)[:-1],
        tool_chunk(0, id="call_a", name="get_weather", args='{"city": "Par'),
        tool_chunk(0, args='is"}'),
        tool_chunk(1, id="call_b", name="delete_file", args='{"path": "/etc/passwd"}'),
        *text_stream(finish="tool_calls", role_chunk=False),
    ]


async def both_ways(policy, chunks):
    """(streamed summary, non-streamed summary, statuses of the two transactions)."""
    statuses = []

    def on_finish(event, _tx, payload):
        if event == "transaction_finished":
            statuses.append(payload["result"].status)

    orchestrator = PolicyOrchestrator(
        policy, ScriptedLLMClient(chunks), listeners=[CallbackListener(on_finish)]
    )
    streamed = stream_summary(await run_stream(orchestrator))
    full = summary(await orchestrator.process_full_response(REQUEST))
    return streamed, full, statuses


async def test_regex_blocks_text_split_across_chunks():
    policy = RegexBlockPolicy(patterns=[r"sk-[a-z0-9]{8,}"], message="[blocked]")
    chunks = text_stream("your key is sk-abc", "def123", "45 enjoy")
    streamed, full, statuses = await both_ways(policy, chunks)
    assert streamed == full
    assert streamed["text"] == "[blocked]"
    assert statuses == ["blocked", "blocked"]


async def test_regex_inline_flags_apply_to_their_own_pattern_only():
    """``(?i)`` is valid at the start of one pattern; it must not make the others
    case-insensitive (nor fail because the patterns are combined)."""
    policy = RegexBlockPolicy(
        patterns=[r"(?i)drop table", r"rm -rf"], case_sensitive=True, message="[blocked]"
    )
    loud, _, loud_statuses = await both_ways(policy, text_stream("DROP ", "TABLE users"))
    assert loud["text"] == "[blocked]" and loud_statuses == ["blocked", "blocked"]
    shout, _, shout_statuses = await both_ways(policy, text_stream("RM -RF /"))
    assert shout["text"] == "RM -RF /" and shout_statuses == ["ok", "ok"]


async def test_regex_leaves_clean_text_alone():
    policy = RegexBlockPolicy(patterns=[r"rm\s+-rf"])
    streamed, full, statuses = await both_ways(policy, text_stream("all ", "good here"))
    assert streamed == full == {"text": "all good here", "tool_calls": [], "finish_reason": "stop"}
    assert statuses == ["ok", "ok"]


async def test_regex_blocks_tool_call_by_arguments_and_keeps_the_other():
    policy = RegexBlockPolicy(patterns=[r"/etc/passwd"])
    streamed, full, statuses = await both_ways(policy, tools_stream())
    assert streamed == full
    assert streamed["tool_calls"] == [("get_weather", {"city": "Paris"})]
    assert streamed["text"] == "Let me check."
    assert statuses == ["blocked", "blocked"]


async def test_regex_blocks_tool_call_by_name_and_only_text_patterns_skip_tools():
    by_name = RegexBlockPolicy(patterns=["nothing"], tool_patterns=["^get_"])
    streamed, full, _ = await both_ways(by_name, tools_stream())
    assert streamed == full
    assert [name for name, _ in streamed["tool_calls"]] == ["delete_file"]
    text_only = RegexBlockPolicy(patterns=["passwd"], tool_patterns=[])
    streamed, full, statuses = await both_ways(text_only, tools_stream())
    assert streamed == full and len(streamed["tool_calls"]) == 2
    assert statuses == ["ok", "ok"]


async def test_regex_on_recorded_streams_same_both_ways(recorded):
    _name, raw = recorded
    policy = RegexBlockPolicy(patterns=["e"], message="nope")
    streamed, full, _ = await both_ways(policy, raw)
    assert streamed == full


async def test_tool_filter_deny_list_with_message():
    policy = ToolFilterPolicy(deny=["delete_file"], blocked_message=" [{name} blocked]")
    streamed, full, statuses = await both_ways(policy, tools_stream())
    assert streamed == full
    assert streamed["tool_calls"] == [("get_weather", {"city": "Paris"})]
    assert streamed["text"] == "Let me check. [delete_file blocked]"
    assert streamed["finish_reason"] == "tool_calls"
    assert statuses == ["blocked", "blocked"]


async def test_tool_filter_allow_list_blocking_everything_finishes_with_stop():
    policy = ToolFilterPolicy(allow=["search"])
    streamed, full, statuses = await both_ways(policy, tools_stream(text=""))
    assert streamed == full
    assert streamed["tool_calls"] == []
    assert streamed["finish_reason"] == "stop"
    assert statuses == ["blocked", "blocked"]


async def test_tool_filter_on_recorded_streams_same_both_ways(recorded):
    _name, raw = recorded
    original = stream_summary(ScriptedLLMClient(raw)._chunks)
    names = [name for name, _ in original["tool_calls"]]
    policy = ToolFilterPolicy(deny=names[:1] or ["x"], blocked_message="(blocked {name})")
    streamed, full, _ = await both_ways(policy, raw)
    assert streamed == full
    assert [n for n, _ in streamed["tool_calls"]] == [n for n in names if n != names[0]]


async def test_concurrent_streams_do_not_share_block_messages():
    import asyncio

    policy = ToolFilterPolicy(deny=["delete_file"], blocked_message="<{name}>")
    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(tools_stream(), delay=0.001))
    results = await asyncio.gather(*(run_stream(orchestrator) for _ in range(10)))
    for out in results:
        assert stream_summary(out)["text"] == "Let me check.<delete_file>"


def test_tool_filter_needs_a_rule_and_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="allow"):
        ToolFilterPolicy()
    with pytest.raises(ConfigError, match=r"'denied'.*valid keys are: allow, deny"):
        ToolFilterPolicy(denied=["x"])
    with pytest.raises(ConfigError, match="invalid regex"):
        RegexBlockPolicy(patterns=["("])
