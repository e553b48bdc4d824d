"""The recorded Claude Code / Codex traffic: every case does what it says, the golden
outputs hold, and every agent policy (and their chain) is chunk-invariant on it."""

from __future__ import annotations

import shutil

import pytest

from luthien_lab.evaluate import assert_matches_golden, check_chunk_invariance
from luthien_lab.policies.agent_tools import request_working_dir
from luthien_lab.policies.agent_traffic import (
    AGENT_GOLDEN,
    AGENT_JUDGE_CACHE,
    CASES,
    load_agent_traffic,
    reference_policies,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def recordings():
    return load_agent_traffic()


@pytest.fixture
def policies(tmp_path):
    """The reference policies, with a copy of the judge's cache (never written to)."""
    cache = tmp_path / "judge.json"
    shutil.copy(AGENT_JUDGE_CACHE, cache)
    return reference_policies(cache)


def test_the_dataset_holds_both_agents_real_request_shapes(recordings):
    assert [r.id for r in recordings] == [c.id for c in CASES]
    by_agent = {c.agent for c in CASES}
    assert by_agent == {"claude_code", "codex"}
    for rec, case in zip(recordings, CASES, strict=True):
        tools = {t.get("function", t).get("name") for t in rec.request["tools"]}
        if case.agent == "claude_code":
            assert (
                rec.protocol == "anthropic"
                and {"Bash", "Write", "Edit", "Read", "WebFetch", "WebSearch"} <= tools
            )
            assert request_working_dir(rec.request) == "/tmp/tmpj23d646c"
            assert "thinking" in rec.request and "context_management" in rec.request
        else:
            assert rec.protocol == "openai" and {"exec_command", "apply_patch"} <= tools
            assert any(t.get("type") == "custom" for t in rec.request["tools"])
            assert request_working_dir(rec.request) == "/tmp/codexcap/fx/work"
            assert rec.request["messages"][0]["role"] == "developer"
        last_user = [m for m in rec.request["messages"] if m["role"] == "user"][-1]
        assert last_user["content"][-1]["text"] == case.prompt
    kinds = {c.expect for c in CASES}
    assert kinds == {"block", "rewrite", "allow"}


async def test_every_case_is_blocked_rewritten_or_left_alone_by_the_stage_it_names(
    recordings, policies
):
    from luthien_lab.evaluate._cases import to_cases
    from luthien_lab.evaluate._replay import run_case
    from luthien_lab.events import CallbackListener

    for case, spec in zip(to_cases(recordings), CASES, strict=True):
        events: list[tuple[str, dict]] = []

        def keep(event: str, _tx: str, payload: dict, events: list = events) -> None:
            if event == "event_emitted":
                events.append((payload["name"], payload["data"]))

        listener = CallbackListener(keep)
        run = await run_case(policies["chain"], case, None, listeners=[listener])
        out = run.output
        calls = " ".join(args for _name, args in out.tool_calls)
        if spec.expect == "block":
            assert run.status == "blocked", spec.id
            assert "[luthien blocked the" in out.text and out.text.startswith(spec.text), spec.id
        elif spec.expect == "rewrite":
            assert run.status == "ok" and "uv pip install" in calls, spec.id
        else:
            assert run.status == "ok" and out.text == spec.text, spec.id
            assert len(out.tool_calls) == len(spec.calls), spec.id
        acted = {
            d["stage_name"]
            for name, d in events
            if name in ("agent_rule", "plain_rule_verdict") and d.get("decision") != "allow"
        }
        assert acted == ({spec.stage} if spec.stage else set()), (spec.id, acted)


def test_golden_outputs(recordings, policies):
    assert_matches_golden(policies, recordings, AGENT_GOLDEN, concurrency=4)


@pytest.mark.parametrize("name", ["shell", "paths", "network", "rewrite", "plain", "chain"])
def test_each_agent_policy_is_chunk_invariant_on_the_traffic(recordings, policies, name):
    report = check_chunk_invariance(policies[name], recordings[::3], max_examples=4)
    assert report.ok, str(report)
    assert report.cases_checked == len(recordings[::3])
