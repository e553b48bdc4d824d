"""PlainRulesPolicy against the local provider: decisions, fail open/closed, the cache."""

from __future__ import annotations

import json

import pytest

from luthien_lab.policies import PlainRulesPolicy
from luthien_lab.policies.plain_rules import parse_decision
from luthien_lab.provider import local_provider
from tests.policies.agent_support import CX_REQUEST, calls_stream, run_both

RULES = "Never push to the main branch. Never deploy to production."
BLOCK = '{"decision": "block", "reason": "pushing to main is forbidden"}'
ALLOW = '```json\n{"decision": "allow", "reason": "fine"}\n```'


@pytest.fixture
def provider():
    with local_provider() as p:
        p.add_rule({"prompt_contains": "git push origin main"}, BLOCK)
        p.add_rule({"prompt_contains": "</rules>"}, ALLOW)
        yield p


def judge(provider, **kw):
    kw.setdefault("instructions", RULES)
    return PlainRulesPolicy(api_base=provider.openai_base, api_key="sk-local", **kw)


def judged(provider):
    return [r for r in provider.requests if r.source.startswith("rule:")]


async def test_the_judge_blocks_and_allows_calls_and_every_decision_is_an_event(provider):
    chunks = calls_stream(
        ("exec_command", {"cmd": "git status"}), ("exec_command", {"cmd": "git push origin main"})
    )
    out = await run_both(judge(provider), chunks, CX_REQUEST)
    assert out["tool_calls"] == [("exec_command", '{"cmd": "git status"}')]
    assert "pushing to main is forbidden" in out["text"]
    verdicts = [d for n, d in out["events"] if n == "plain_rule_verdict"]
    assert [(v["tool"], v["decision"]) for v in verdicts] == [
        ("exec_command", "allow"), ("exec_command", "block"),
        ("exec_command", "allow"), ("exec_command", "block"),
    ]  # fmt: skip
    assert [v["cached"] for v in verdicts] == [False, False, True, True]  # the 2nd run: cached
    assert all(v["chunk_index"] >= 0 for v in verdicts[:2])
    prompt = judged(provider)[0].prompt
    assert RULES in prompt and "/work/app" in prompt and '{"cmd": "git status"}' in prompt
    assert len(judged(provider)) == 2


async def test_answers_are_cached_on_disk_and_reused(provider, tmp_path):
    path = tmp_path / "cache.json"
    first = judge(provider, cache_path=str(path))
    await first.verdict("Bash", '{"command": "git push origin main"}', "/w")
    stored = json.loads(path.read_text())
    assert list(stored.values()) == [
        {"decision": "block", "reason": "pushing to main is forbidden"}
    ]
    again = judge(provider, cache_path=str(path))  # a new process, say
    verdict = await again.verdict("Bash", '{"command": "git push origin main"}', "/w")
    assert verdict.decision == "block" and len(judged(provider)) == 1
    other_rules = judge(provider, cache_path=str(path), instructions="Anything goes.")
    await other_rules.verdict("Bash", '{"command": "git push origin main"}', "/w")
    assert len(judged(provider)) == 2  # the key covers the instructions


@pytest.mark.parametrize(("on_error", "decision"), [("block", "block"), ("allow", "allow")])
async def test_a_judge_that_fails_fails_closed_or_open(on_error, decision):
    with local_provider() as p:
        p.add_rule({"prompt_contains": "</rules>"}, "I think it is probably fine?")
        policy = PlainRulesPolicy(
            instructions=RULES, api_base=p.openai_base, api_key="sk-local", on_error=on_error
        )
        verdict = await policy.verdict("Bash", '{"command": "ls"}', None)
        assert verdict.decision == decision
        assert len(policy.cache) == 0  # errors are never cached
        bad = PlainRulesPolicy(
            instructions=RULES, api_base="http://127.0.0.1:9", api_key="x", on_error=on_error
        )
        assert (await bad.verdict("Bash", '{"command": "ls"}', None)).decision == decision


async def test_a_judge_that_does_not_answer_in_time_is_an_error():
    with local_provider() as p:
        p.add_rule(
            {"prompt_contains": "</rules>"}, {"text": ALLOW, "fault": "stall", "stall_seconds": 30}
        )
        policy = PlainRulesPolicy(
            instructions=RULES, api_base=p.openai_base, api_key="sk-local", timeout=0.3
        )
        data = await policy.decide("tool_call", "x", "judge this </rules>")
    assert data["decision"] == "block" and "did not answer within 0.3 s" in data["error"]


async def test_text_is_judged_only_when_asked():
    with local_provider() as p:
        p.add_rule({"prompt_contains": "<reply>\nDeploying to production"}, BLOCK)
        p.add_rule({"prompt_contains": "</rules>"}, ALLOW)
        chunks = calls_stream(text="Deploying to production now.")
        out = await run_both(judge(p, judge_text=True), chunks)
        assert out["text"] == "[luthien: this reply was withheld: pushing to main is forbidden]"
        assert out["statuses"] == ["blocked", "blocked"]
        verdict = next(d for n, d in out["events"] if n == "plain_rule_verdict")
        assert verdict["target"] == "text" and verdict["decision"] == "block"
        plain = await run_both(judge(p), chunks)
        assert plain["text"] == "Deploying to production now." and plain["events"] == []


def test_parse_decision():
    assert parse_decision('{"decision": "BLOCK", "reason": "r"}') == ("block", "r")
    assert parse_decision('sure: {"decision": "allow"}') == ("allow", "")
    for bad in ["nope", '{"reason": "x"}', '{"decision": "maybe"}', "{oops}"]:
        with pytest.raises(ValueError):
            parse_decision(bad)
