"""A chain from YAML, and what each stage did: stage summaries, a diff between any two
stages, the timeline's stage lanes and event marks."""

from __future__ import annotations

import pytest

from luthien_lab import PolicyOrchestrator, ScriptedLLMClient, SerialPolicy, UppercasePolicy
from luthien_lab.errors import ConfigError
from luthien_lab.gateway import load_config
from luthien_lab.policies import (
    RewriteRulesPolicy,
    ShellRulesPolicy,
    StringReplacePolicy,
    load_policy,
)
from luthien_lab.policies.serial_view import stage_summaries, stage_trace
from tests.policies.agent_support import CC_REQUEST, calls_stream

YAML = """
policy:
  - name: shell
    class: "luthien_lab.policies.shell_rules:ShellRulesPolicy"
    config: {deny_commands: [sudo]}
  - class: "luthien_lab.policies.rewrite_rules:RewriteRulesPolicy"
    config:
      rules: [{name: uv, command: pip, prefix: [install], replace_with: [uv, pip, install]}]
  - name: redact
    class: "luthien_lab.policies.string_replace:StringReplacePolicy"
    config: {replacements: {secret: "[redacted]"}}
gateway: {port: 9999}
"""


def test_a_yaml_list_under_policy_is_a_chain(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(YAML)
    loaded = load_config(path)
    chain = loaded.policy
    assert isinstance(chain, SerialPolicy) and loaded.gateway.port == 9999
    assert chain.names == ["shell", "RewriteRulesPolicy", "redact"]
    assert isinstance(chain.stages[0], ShellRulesPolicy)
    assert chain.stages[0].config.deny_commands == ["sudo"]
    assert isinstance(chain.stages[1], RewriteRulesPolicy)
    nested = load_policy({"policy": [{"class": "luthien_lab.policies.uppercase:UppercasePolicy"}, [
        {"class": "luthien_lab.policies.passthrough:NoOpPolicy"}]]})  # fmt: skip
    assert isinstance(nested, SerialPolicy) and isinstance(nested.stages[1], SerialPolicy)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ([], "empty list"),
        (["x"], "stage 0 .* must be a mapping"),
        ([{"class": "luthien_lab.policies.uppercase:UppercasePolicy", "bogus": 1}], "unknown key"),
        (
            [{"class": "luthien_lab.policies.shell_rules:ShellRulesPolicy", "config": {"nope": 1}}],
            "nope",
        ),
        ([{"class": "nowhere:Nothing"}], "cannot be imported"),
    ],
)
def test_chain_config_errors_name_the_stage(policy, message):
    with pytest.raises(ConfigError, match=message):
        load_policy({"policy": policy})


async def traced(chain, chunks):
    from luthien_lab.widgets import TraceListener

    listener = TraceListener()
    orchestrator = PolicyOrchestrator(chain, ScriptedLLMClient(chunks), listeners=[listener])
    async for _ in orchestrator.process_streaming_response(CC_REQUEST):
        pass
    return listener.trace


async def test_a_diff_between_any_two_stages():
    from luthien_lab.widgets import ResponseDiff

    chain = SerialPolicy(
        {
            "redact": StringReplacePolicy(replacements={"OpenAI": "[vendor]"}),
            "upper": UppercasePolicy(),
            "shell": ShellRulesPolicy(),
        }
    )
    chunks = calls_stream(("Bash", {"command": "rm -rf /"}), text="OpenAI says hi. ")
    trace = await traced(chain, chunks)
    summaries = stage_summaries(trace)
    assert [s["name"] for s in summaries] == ["redact", "upper", "shell"]
    assert [s["text"] for s in summaries[:2]] == ["[vendor] says hi. ", "[VENDOR] SAYS HI. "]
    assert summaries[2]["text"].startswith("[VENDOR] SAYS HI. \n[luthien blocked")
    assert [len(s["tool_calls"]) for s in summaries] == [1, 1, 0]
    redact_to_upper = ResponseDiff(stage_trace(trace, "redact", "upper")).result
    assert redact_to_upper["raw_text"] == "[vendor] says hi. "
    assert redact_to_upper["tool_calls"][0]["status"] == "unchanged"
    upper_to_final = ResponseDiff(stage_trace(trace, 1, "final")).result
    assert [r["status"] for r in upper_to_final["tool_calls"]] == ["blocked"]
    provider_to_redact = ResponseDiff(stage_trace(trace, "provider", 0)).result
    assert provider_to_redact["raw_text"] == "OpenAI says hi. "
    with pytest.raises(KeyError, match="stages: 0:redact"):
        stage_trace(trace, "nope", 0)


async def test_the_timeline_draws_a_group_of_lanes_per_stage_and_the_verdicts():
    from luthien_lab.widgets import Timeline

    chain = SerialPolicy({"upper": UppercasePolicy(), "shell": ShellRulesPolicy()})
    chunks = calls_stream(("Bash", {"command": "ls"}), ("Bash", {"command": "rm -rf ~"}), text="hi")
    trace = await traced(chain, chunks)
    drawing = Timeline(trace).drawing
    assert drawing.lanes[:3] == ["on_request", "on_chunk_received", "on_stream_complete"]
    labels = [(g.label, drawing.lanes[g.first : g.last + 1]) for g in drawing.groups]
    assert labels[0][0] == "stage 0:upper" and "0:upper/on_content_complete" in labels[0][1]
    assert labels[1][0] == "stage 1:shell"
    assert "1:shell/on_tool_call_complete" in labels[1][1]
    assert "1:shell/event: agent_rule" in labels[1][1]
    (mark,) = [e for e in drawing.events if e.name == "agent_rule"]
    assert mark.decision == "block" and "rm -rf" in mark.detail
    assert drawing.lanes[mark.lane] == "1:shell/event: agent_rule"
    assert mark.column == drawing.column_of(len(chunks) - 1)  # the finish completes the call
    # the egress lane counts what the client got, not what stages passed each other
    assert sum(e.count for e in drawing.egress) == len(trace.egress)
    svg = Timeline(trace).svg
    assert 'class="stage-group"' in svg and "[1:shell] on_tool_call_complete" in svg
    assert '<circle class="event"' in svg
