"""The real Codex CLI (pinned in tools/agents, installed by `make agents`) in front of
the gateway's Responses endpoint, with the local provider as the upstream: a plain
prompt and a shell tool round trip; with a passthrough, a transforming and a
shell-blocking policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import StringReplacePolicy, ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, local_provider
from luthien_lab.store import open_store
from tests.clis.codex import codex_binary, run_codex
from tests.gateway.conftest import serve

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        codex_binary() is None and not os.environ.get("CI"),
        reason="Codex is not installed: run `make agents` (CI always installs it)",
    ),
]


def _after_shell(request):
    _name, text = request.last_tool_result()
    return ScriptedResponse(text="Done: " + " ".join(text.split()[-4:]))


@pytest.fixture(scope="module")
def provider():
    with local_provider() as p:
        p.add_rule({"prompt_contains": "say hello"}, "Hello from the local provider.", name="hello")
        p.add_rule(
            {"prompt_contains": "list files", "offers_tool": "exec_command"},
            {
                "thinking": "I should list.",
                "tool_calls": [{"name": "exec_command", "arguments": {"cmd": "ls"}}],
            },
            name="shell",
        )
        p.add_rule({"after_tool_result": "exec_command"}, _after_shell, name="shell-result")
        yield p


def gateway(provider, policy, store=None, mode="native"):
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
    return serve(create_app(policy, settings=GatewaySettings(upstream=upstream), store=store))


def fired(provider, since: int) -> list[str]:
    return [r.source for r in provider.requests[since:] if r.protocol in ("responses", "openai")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.txt").write_text("hello\n")
    (work / "notes.md").write_text("notes\n")
    return work


@pytest.mark.parametrize("mode", ["native", "chat"])
def test_plain_prompt(provider, workdir, tmp_path, mode):
    store = tmp_path / "codex.duckdb"
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), store, mode) as url:
        result = run_codex(f"{url}/v1", "say hello", cwd=workdir)
    assert result["returncode"] == 0, result["stderr"][-2000:]
    assert result["last_message"].strip() == "Hello from the local provider."
    assert fired(provider, start) == ["rule:hello"]
    with open_store(store) as s:
        assert list(s.transactions()["status"]) == ["ok"]


@pytest.mark.parametrize("mode", ["native", "chat"])
def test_shell_round_trip(provider, workdir, mode):
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), None, mode) as url:
        result = run_codex(f"{url}/v1", "please list files", cwd=workdir)
    assert result["returncode"] == 0, result["stderr"][-2000:]
    message = result["last_message"]
    assert message.startswith("Done: ") and "hello.txt" in message and "notes.md" in message
    assert fired(provider, start) == ["rule:shell", "rule:shell-result"]
    commands = [
        e for e in result["events"] if (e.get("item") or {}).get("type") == "command_execution"
    ]
    assert commands, "Codex ran no command"


def test_transforming_policy_is_visible(provider, workdir):
    policy = StringReplacePolicy(replacements={"local provider": "LUTHIEN GATEWAY"})
    with gateway(provider, policy) as url:
        result = run_codex(f"{url}/v1", "say hello", cwd=workdir)
    assert result["last_message"].strip() == "Hello from the LUTHIEN GATEWAY."


def test_blocked_shell_gets_an_answer_codex_handles(provider, workdir, tmp_path):
    store = tmp_path / "blocked.duckdb"
    policy = ToolFilterPolicy(
        deny=["exec_command"], blocked_message="[luthien: {name} was blocked]"
    )
    start = len(provider.requests)
    with gateway(provider, policy, store) as url:
        result = run_codex(f"{url}/v1", "please list files", cwd=workdir)
    assert result["returncode"] == 0, result["stderr"][-2000:]
    assert "[luthien: exec_command was blocked]" in result["last_message"]
    # One request: no command ran, no retry loop.
    assert fired(provider, start) == ["rule:shell"]
    assert not [
        e for e in result["events"] if (e.get("item") or {}).get("type") == "command_execution"
    ]
    with open_store(store) as s:
        assert list(s.transactions()["status"]) == ["blocked"]
