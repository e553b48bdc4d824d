"""StringReplacePolicy: streaming replacement with bounded hold-back."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luthien_lab import PolicyContext, PolicyOrchestrator, ScriptedLLMClient
from luthien_lab.errors import ConfigError
from luthien_lab.policies import StringReplacePolicy
from luthien_lab.streaming import reconstruct_full_response
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream, tool_chunk

searches = st.text(alphabet="abcA", min_size=1, max_size=4)
replacement_maps = st.dictionaries(
    searches, st.text(alphabet="abcxA", max_size=5), min_size=1, max_size=4
)


def any_split_text(test):
    """Run ``test(replacements, case_sensitive, text, cuts)`` on 400 examples: a text
    split anywhere, searched for any replacement map."""
    cases = given(
        replacement_maps,
        st.booleans(),
        st.text(alphabet="abcAxy", max_size=40),
        st.lists(st.integers(0, 100), max_size=12),
    )
    return settings(max_examples=400, deadline=None)(cases(test))


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@any_split_text
def test_any_split_gives_the_whole_string_result(replacements, case_sensitive, text, cuts):
    policy = StringReplacePolicy(replacements=replacements, case_sensitive=case_sensitive)
    replacer = policy.replacer()
    longest = max(len(s) for s in replacements)
    out = []
    for piece in split(text, cuts):
        out.append(replacer.feed(piece))
        assert len(replacer.pending) <= longest - 1, "hold-back is bounded"
    out.append(replacer.flush())
    assert "".join(out) == policy.replace(text)


def streaming_rule(searches: dict[str, str], case_sensitive: bool, text: str) -> tuple[str, str]:
    """(emitted, held back) of ``text`` that more may follow, by the module doc's rule,
    the slow way: the hold-back starts at the first position from which the rest is a
    proper prefix of a search string; left to right, the longest search string matching
    at a position wins if it starts before the hold-back (one that runs into the held
    tail moves the hold-back to after it); the scan resumes after a match."""
    fold = (lambda part: part) if case_sensitive else str.lower
    keys = sorted(searches, key=len, reverse=True)  # stable: the policy's order

    def hold_from(position: int) -> int:
        for start in range(position, len(text)):
            rest = fold(text[start:])
            if any(len(rest) < len(s) and fold(s).startswith(rest) for s in keys):
                return start
        return len(text)

    out: list[str] = []
    position, hold = 0, hold_from(0)
    while position < hold:
        found = next((s for s in keys if fold(text[position : position + len(s)]) == fold(s)), None)
        if found is None:
            out.append(text[position])
            position += 1
            continue
        out.append(searches[found])
        position += len(found)
        if position > hold:
            hold = hold_from(position)
    return "".join(out), text[hold:]


@any_split_text
def test_each_piece_emits_what_the_streaming_rule_says(replacements, case_sensitive, text, cuts):
    """Not only the whole: every piece emits as much as the rule allows, and holds back
    exactly the rest (the early emission, the chunk boundaries, depend on it)."""
    policy = StringReplacePolicy(replacements=replacements, case_sensitive=case_sensitive)
    replacer = policy.replacer()
    pending = ""
    for piece in split(text, cuts):
        emitted, pending = streaming_rule(replacements, case_sensitive, pending + piece)
        assert (replacer.feed(piece), replacer.pending) == (emitted, pending)
    assert replacer.flush() == policy.replace(pending)
    assert replacer.pending == ""


def test_a_longer_search_string_that_may_still_follow_holds_a_match_back():
    policy = StringReplacePolicy(replacements={"ab": "X", "abc": "Y", "b": "Z"})
    replacer = policy.replacer()
    assert (replacer.feed("xab"), replacer.pending) == ("x", "ab")  # "abc" may follow
    assert (replacer.feed("d"), replacer.pending) == ("Xd", "")
    assert (replacer.feed("aab"), replacer.pending) == ("a", "ab")
    assert (replacer.feed("c b"), replacer.pending) == ("Y Z", "")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    replacement_maps,
    st.text(alphabet="abcAxy", min_size=1, max_size=30),
    st.lists(st.integers(0, 100), max_size=8),
)
def test_pipeline_streaming_equals_non_streaming_for_any_split(replacements, text, cuts):
    policy = StringReplacePolicy(replacements=replacements)
    chunks = text_stream(*split(text, cuts))

    async def both():
        client = ScriptedLLMClient(chunks)
        orchestrator = PolicyOrchestrator(policy, client)
        streamed = stream_summary(await run_stream(orchestrator))
        full = summary(await orchestrator.process_full_response(REQUEST))
        return streamed, full

    streamed, full = asyncio.run(both())
    assert streamed == full
    assert streamed["text"] == policy.replace(text)


def test_replacement_is_not_rescanned_and_longest_match_wins():
    policy = StringReplacePolicy(replacements={"a": "aa", "ab": "X", "b": "a"})
    assert policy.replace("abba") == "Xaaa"


def test_case_insensitive():
    policy = StringReplacePolicy(replacements={"openai": "ClosedAI"}, case_sensitive=False)
    assert policy.replace("OpenAI and OPENAI") == "ClosedAI and ClosedAI"


async def test_split_search_string_is_replaced_while_streaming_with_early_emission():
    policy = StringReplacePolicy(replacements={"OpenAI": "ClosedAI"})
    client = ScriptedLLMClient(text_stream("I like Open", "AI rocks", " and Op", "era"))
    out = await run_stream(PolicyOrchestrator(policy, client))
    texts = [c.choices[0].delta.content for c in out if c.choices and c.choices[0].delta.content]
    # "I like " goes out before the rest arrives; "Open" is held back, then replaced.
    assert texts[0] == "I like "
    assert stream_summary(out)["text"] == "I like ClosedAI rocks and Opera"


async def test_tool_calls_pass_through_and_pending_text_is_flushed_first():
    policy = StringReplacePolicy(replacements={"Open": "Shut"})
    chunks = [
        *text_stream("Calling Op", role_chunk=True)[:-1],
        tool_chunk(0, id="call_1", name="Open_door", args='{"door": "Open'),
        tool_chunk(0, args='"}'),
        *text_stream(finish="tool_calls", role_chunk=False),
    ]
    client = ScriptedLLMClient(chunks)
    orchestrator = PolicyOrchestrator(policy, client)
    out = await run_stream(orchestrator)
    result = stream_summary(out)
    assert result["text"] == "Calling Op"
    assert result["tool_calls"] == [("Open_door", {"door": "Open"})]
    assert result["finish_reason"] == "tool_calls"
    kinds = [
        c.choices[0].delta.content or "tool"
        for c in out
        if c.choices and (c.choices[0].delta.content or c.choices[0].delta.tool_calls)
    ]
    assert kinds == ["Calling ", "Op", "tool", "tool"], "held-back 'Op' goes out before the call"
    assert summary(await orchestrator.process_full_response(REQUEST)) == result


async def test_recorded_streams_same_both_ways(recorded):
    _name, raw = recorded
    policy = StringReplacePolicy(replacements={"the": "THE", "a": "4"}, case_sensitive=False)
    client = ScriptedLLMClient(raw)
    orchestrator = PolicyOrchestrator(policy, client)
    streamed = stream_summary(await run_stream(orchestrator))
    full = summary(await orchestrator.process_full_response(REQUEST))
    original = stream_summary(client._chunks)
    assert streamed == full
    assert streamed["text"] == policy.replace(original["text"])
    assert streamed["tool_calls"] == original["tool_calls"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"replacements": {}}, "at least one"),
        ({"replacements": {"": "x"}}, "empty"),
        ({"replacements": {"a": "b"}, "casesensitive": True}, "casesensitive"),
    ],
)
def test_bad_config_is_a_config_error(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        StringReplacePolicy(**kwargs)


def test_a_full_response_with_nothing_to_replace_is_returned_as_it_came():
    policy = StringReplacePolicy(replacements={"secret": "[redacted]"})
    context = PolicyContext(transaction_id="t", request=REQUEST)

    def response(text: str):
        return reconstruct_full_response(text_stream(text))

    untouched = response("nothing to hide here")
    assert asyncio.run(policy.process_full_response(untouched, context)) is untouched
    original = response("the secret is out")
    before = original.model_dump()
    changed = asyncio.run(policy.process_full_response(original, context))
    assert changed is not original
    assert changed.choices[0].message.content == "the [redacted] is out"
    assert original.model_dump() == before
