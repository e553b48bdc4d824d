"""The agent chain behind the gateway, with the CLIs' recorded requests: Claude Code
(Messages, native Anthropic upstream) gets ``end_turn`` and the reason when every
call is blocked, and a well-formed rewritten ``tool_use``; Codex (Responses, native
upstream) gets its ``apply_patch`` blocked and ``exec_command`` rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from luthien_lab import SerialPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import PathRulesPolicy, RewriteRulesPolicy, ShellRulesPolicy
from luthien_lab.provider import local_provider
from tests.gateway.anthropic_support import accumulate, check_wellformed, parse_sse
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UV = [
    {
        "name": "uv",
        "command": "pip",
        "prefix": ["install"],
        "replace_with": ["uv", "pip", "install"],
    }
]


def chain() -> SerialPolicy:
    return SerialPolicy([ShellRulesPolicy(), PathRulesPolicy(), RewriteRulesPolicy(rules=UV)])


def recorded(agent: str, name: str) -> dict:
    return json.loads((FIXTURES / agent / name).read_text().splitlines()[0])


@pytest.mark.parametrize(
    ("commands", "stop_reason", "inputs"),
    [
        (["cd /tmp && rm -rf ~/"], "end_turn", []),
        (["ls", "sudo pip install requests"], "tool_use", ["ls", "sudo uv pip install requests"]),
    ],
)
def test_claude_code_through_the_gateway(commands, stop_reason, inputs):
    record = recorded("claude_code", "tool_round_trip.jsonl")
    with local_provider() as provider:
        calls = [
            {"name": "Bash", "arguments": {"command": c, "description": "x"}} for c in commands
        ]
        provider.add_rule(
            {"prompt_contains": "please list files"}, {"text": "On it.", "tool_calls": calls}
        )
        settings = GatewaySettings(
            store=None, upstream=UpstreamSettings(api_base=provider.url, provider="anthropic")
        )
        with serve(create_app(chain(), settings=settings)) as url:
            reply = httpx.post(
                f"{url}/v1/messages?beta=true",
                json=record["body"],
                headers=record["headers"],
                timeout=30,
            )
    assert reply.status_code == 200, reply.text
    events = parse_sse(reply.text)
    check_wellformed(events)
    message = accumulate(events)
    assert message["stop_reason"] == stop_reason
    assert [b["input"]["command"] for b in message["content"] if b["type"] == "tool_use"] == inputs
    text = "".join(b.get("text", "") for b in message["content"] if b["type"] == "text")
    assert text.startswith("On it.")
    if not inputs:
        assert "[luthien blocked the Bash call: recursive delete" in text


def test_codex_through_the_gateway():
    record = recorded("codex", "apply_patch_round_trip.jsonl")
    body = {**record["body"], "stream": False}
    patch = "*** Begin Patch\n*** Add File: ../../../../etc/cron.d/x\n+* * * * * root true\n*** End Patch\n"
    with local_provider() as provider:
        provider.add_rule(
            {"prompt_contains": "please apply patch"},
            {"tool_calls": [
                {"name": "apply_patch", "arguments": patch},
                {"name": "exec_command", "arguments": {"cmd": "pip install -e ."}},
            ]},
        )  # fmt: skip
        settings = GatewaySettings(
            store=None,
            upstream=UpstreamSettings(api_base=provider.openai_base, responses_api="native"),
        )
        with serve(create_app(chain(), settings=settings)) as url:
            reply = httpx.post(
                f"{url}/v1/responses",
                json=body,
                headers={"authorization": "Bearer sk-test"},
                timeout=30,
            )
    assert reply.status_code == 200, reply.text
    output = reply.json()["output"]
    calls = [item for item in output if item["type"] in ("function_call", "custom_tool_call")]
    assert [(c["type"], c["name"]) for c in calls] == [("function_call", "exec_command")]
    assert json.loads(calls[0]["arguments"]) == {"cmd": "uv pip install -e ."}
    texts = [p["text"] for item in output if item["type"] == "message" for p in item["content"]]
    assert "write of /etc/cron.d/x is denied" in "".join(texts)
