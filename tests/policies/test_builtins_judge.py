"""ToolCallJudgePolicy: fake judges and the local provider as the judge."""

from __future__ import annotations

import asyncio
import json

import pytest

from luthien_lab import CallbackListener, PolicyOrchestrator, ScriptedLLMClient
from luthien_lab.policies import ToolCallJudgePolicy
from luthien_lab.policies.llm_judge import parse_verdict
from luthien_lab.provider import ScriptedResponse, local_provider
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream, tool_chunk

CHUNKS = [
    *text_stream("Checking.")[:-1],
    tool_chunk(0, id="call_1", name="run_shell", args='{"cmd": "rm -rf /"}'),
    *text_stream(finish="tool_calls", role_chunk=False),
]


def verdict(probability, explanation="because"):
    return json.dumps({"probability": probability, "explanation": explanation})


async def run_both(policy):
    events = []

    def listen(event, _tx, payload):
        if event == "event_emitted" and payload["name"] == "judge_verdict":
            events.append(payload["data"])

    orchestrator = PolicyOrchestrator(
        policy, ScriptedLLMClient(CHUNKS), listeners=[CallbackListener(listen)]
    )
    streamed = stream_summary(await run_stream(orchestrator))
    full = summary(await orchestrator.process_full_response(REQUEST))
    assert streamed == full, "streaming and non-streaming agree"
    return streamed, events


def fake(answer=None, error=None, sleep=0.0):
    seen = []

    async def judge(messages):
        seen.append(messages)
        if sleep:
            await asyncio.sleep(sleep)
        if error:
            raise error
        return answer

    judge.seen = seen
    return judge


@pytest.mark.parametrize(
    ("judge", "kwargs", "kept", "blocked_event"),
    [
        (fake(verdict(0.1)), {}, True, False),
        (fake(verdict(0.9)), {}, False, True),
        (fake(verdict(0.5)), {"threshold": 0.5}, False, True),  # >= threshold blocks
        (fake("I think it is fine"), {}, False, True),  # garbage fails closed
        (fake("I think it is fine"), {"on_judge_error": "allow"}, True, False),
        (fake(error=RuntimeError("boom")), {}, False, True),
        (fake(verdict(0.0), sleep=1.0), {"timeout": 0.05}, False, True),
    ],
)
@pytest.mark.timeout(20)
async def test_verdicts_with_a_fake_judge(judge, kwargs, kept, blocked_event):
    policy = ToolCallJudgePolicy(judge=judge, **kwargs)
    result, events = await run_both(policy)
    assert (result["tool_calls"] == [("run_shell", {"cmd": "rm -rf /"})]) is kept
    assert result["finish_reason"] == ("tool_calls" if kept else "stop")
    assert len(events) == 2 and all(e["blocked"] is blocked_event for e in events)
    assert "rm -rf /" in judge.seen[0][0]["content"], "the judge sees the arguments"


def test_parse_verdict_tolerates_fences_and_rejects_garbage():
    assert (
        parse_verdict('```json\n{"probability": 0.3, "explanation": "x"}\n```').probability == 0.3
    )
    for bad in ["", "no", '{"explanation": "x"}', '{"probability": 3}', "{bad json}"]:
        with pytest.raises(ValueError):
            parse_verdict(bad)


@pytest.fixture(scope="module")
def judge_provider():
    with local_provider() as provider:
        yield provider


@pytest.mark.parametrize(
    ("answer", "kept", "error"),
    [
        (ScriptedResponse(text=verdict(0.05, "harmless")), True, False),
        (ScriptedResponse(text=verdict(0.97, "deletes the disk")), False, False),
        (ScriptedResponse(text="sure, looks fine to me"), False, True),
        (ScriptedResponse(fault="http_500"), False, True),
    ],
    ids=["allow", "block", "garbage", "http_500"],
)
@pytest.mark.timeout(60)
async def test_local_provider_as_judge(judge_provider, answer, kept, error):
    key = judge_provider.script(answer)
    policy = ToolCallJudgePolicy(
        model="openai/judge-model",
        api_base=judge_provider.openai_base,
        api_key="sk-local",
        extra_headers=judge_provider.headers(key),
        blocked_message=" [blocked {name}]",
        timeout=20,
    )
    result, events = await run_both(policy)
    assert bool(result["tool_calls"]) is kept
    assert result["text"] == "Checking." + ("" if kept else " [blocked run_shell]")
    assert all((e["error"] is not None) is error for e in events)
    if not error:
        assert events[0]["explanation"] in ("harmless", "deletes the disk")
    sent = [r for r in judge_provider.requests if r.script_key == key]
    assert len(sent) == 2 and "run_shell" in sent[0].prompt
