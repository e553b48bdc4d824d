"""check_chunk_invariance catches split-dependent policies with a minimal split."""

from __future__ import annotations

import pytest

from examples.naive_replace import NaiveReplacePolicy
from luthien_lab import NoOpPolicy, ScriptedLLMClient, UppercasePolicy
from luthien_lab.datasets import load_recordings
from luthien_lab.evaluate import check_chunk_invariance, resplit
from luthien_lab.evaluate._cases import Case
from luthien_lab.evaluate._replay import run_case

from .helpers import NaiveToolGuard, ReplaceWhole, text_recording, tool_recording

SMALL = [r for r in load_recordings() if "long" not in r.id]


def _builtin_replace():
    try:
        from luthien_lab.policies import StringReplacePolicy
    except ImportError:  # pragma: no cover - the built-in is written in parallel
        return ReplaceWhole()
    return StringReplacePolicy(replacements={"OpenAI": "[REDACTED]"})


@pytest.mark.timeout(60)
def test_naive_replacement_is_caught_with_a_one_cut_split():
    report = check_chunk_invariance(
        NaiveReplacePolicy(), [text_recording("word", "OpenAI")], max_examples=30
    )
    assert not report.ok
    (failure,) = report.failures
    assert failure.cuts == 1
    (pieces,) = failure.split.values()
    assert len(pieces) == 2 and "".join(pieces) == "OpenAI"
    assert failure.focus == [pieces]
    assert failure.expected.text == "[REDACTED]"
    assert failure.actual.text == "OpenAI"
    # The reproducing stream really reproduces it, through the plain pipeline.
    case = Case(id="repro", request={"model": "m", "messages": []}, chunks=failure.chunks)
    import asyncio

    run = asyncio.run(run_case(NaiveReplacePolicy(), case, None))
    assert run.output.text == "OpenAI"
    with pytest.raises(AssertionError, match="word"):
        report.assert_ok()


@pytest.mark.timeout(60)
def test_naive_replacement_is_caught_on_the_bundled_recordings():
    report = check_chunk_invariance(NaiveReplacePolicy(), SMALL, max_examples=10)
    failed = set(report.failed_cases)
    # Every recording mentioning OpenAI fails, and only those.
    mentions = {r.id for r in SMALL if "OpenAI" in r.text()}
    assert mentions and failed == mentions
    for failure in report.failures:
        assert failure.cuts == 1
        assert any(
            "".join(pair).endswith(("OpenAI", "penAI", "enAI", "nAI", "AI", "I"))
            or "Open" in "".join(pair)
            for pair in failure.focus
        )
        assert "[REDACTED]" in failure.expected.text and "OpenAI" in failure.actual.text


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "policy", [_builtin_replace(), UppercasePolicy(), NoOpPolicy()], ids=lambda p: type(p).__name__
)
def test_correct_policies_pass(policy):
    report = check_chunk_invariance(policy, SMALL, max_examples=5)
    assert report.ok, str(report)
    assert report.cases_checked == len(SMALL)
    assert report.splits_tried > 5 * len(SMALL)


@pytest.mark.timeout(60)
def test_split_dependent_tool_call_guard_is_caught():
    rec = tool_recording("shell", "bash", '{"cmd": "rm -rf /tmp/x"}')
    report = check_chunk_invariance(NaiveToolGuard(), [rec], max_examples=30)
    (failure,) = report.failures
    assert failure.expected.tool_calls == (("bash", '"[blocked]"'),)
    assert failure.actual.tool_calls != failure.expected.tool_calls
    assert list(failure.split) == ["tool:0"] and failure.cuts == 1
    assert "".join(failure.split["tool:0"]) == '{"cmd": "rm -rf /tmp/x"}'


@pytest.mark.timeout(60)
def test_deterministic_for_a_seed_and_prompt_cases_skipped():
    data = [text_recording("a", "ask Open", "AI now"), {"id": "p", "prompt": "hi"}]
    first = check_chunk_invariance(NaiveReplacePolicy(), data, max_examples=20, seed=7)
    second = check_chunk_invariance(NaiveReplacePolicy(), data, max_examples=20, seed=7)
    assert [f.split for f in first.failures] == [f.split for f in second.failures]
    assert first.splits_tried == second.splits_tried
    assert first.skipped == ["p"]


@pytest.mark.timeout(60)
async def test_runs_inside_a_running_loop():
    report = check_chunk_invariance(UppercasePolicy(), [text_recording("x", "héllo 👍🏽")])
    assert report.ok


def test_resplit_output_replays():
    chunks = resplit([text_recording("r", "ab")["chunks"]][0], "chars")
    client = ScriptedLLMClient(chunks)
    assert len(client._chunks) == len(chunks)
    with pytest.raises(ValueError, match="how must be"):
        resplit(chunks, "words")
