"""The real Claude Code CLI (pinned in tools/agents, installed by `make agents`) in front
of the gateway, with the local provider's Anthropic protocol as the upstream, default
settings: a plain prompt, a Bash round trip, reading an image, a web search; with a
passthrough, a transforming and a Bash-blocking policy. Everything is recorded.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import StringReplacePolicy, ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, local_provider
from luthien_lab.store import open_store
from tests.clis.claude_code import claude_binary, run_claude
from tests.gateway.conftest import serve

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        claude_binary() is None and not os.environ.get("CI"),
        reason="Claude Code is not installed: run `make agents` (CI always installs it)",
    ),
]

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _after(tool: str, prefix: str):
    def answer(request):
        _name, text = request.last_tool_result()
        return ScriptedResponse(text=f"{prefix}{text.strip()[:60]}")

    return {"after_tool_result": tool}, answer


@pytest.fixture(scope="module")
def provider():
    with local_provider() as p:
        p.add_rule({"prompt_contains": "say hello"}, "Hello from the local provider.", name="hello")
        p.add_rule(
            {"prompt_contains": "list files", "offers_tool": "Bash"},
            {
                "tool_calls": [
                    {"name": "Bash", "arguments": {"command": "ls", "description": "List files"}}
                ]
            },
            name="bash",
        )
        p.add_rule(*_after("Bash", "Done: "), name="bash-result")
        p.add_rule(
            {"prompt_contains": "read the image", "offers_tool": "Read"},
            lambda r: ScriptedResponse(tool_calls=[{"name": "Read", "arguments": {
                "file_path": r.body["messages"][0]["content"][-1]["text"].split("image ")[-1].split()[0]}}]),
            name="read",
        )  # fmt: skip
        p.add_rule(*_after("Read", "Saw: "), name="read-result")
        p.add_rule(
            {"offers_tool": "web_search"},
            ScriptedResponse(
                web_search={"query": "luthien gateway", "results": [
                    {"url": "https://example.com/luthien", "title": "Luthien"}]},
                text="Luthien is a policy gateway.",
                citations=[{"url": "https://example.com/luthien", "cited_text": "a policy gateway",
                            "title": "Luthien"}],
            ),
            name="server-search",
        )  # fmt: skip
        p.add_rule(
            {"prompt_contains": "search the web", "offers_tool": "WebSearch"},
            {"tool_calls": [{"name": "WebSearch", "arguments": {"query": "luthien gateway"}}]},
            name="websearch",
        )
        p.add_rule(*_after("WebSearch", "Found: "), name="websearch-result")
        yield p


def gateway(provider, policy, store):
    upstream = UpstreamSettings(api_base=provider.url, provider="anthropic")
    return serve(create_app(policy, settings=GatewaySettings(upstream=upstream), store=store))


def fired(provider, since: int) -> list[str]:
    return [r.source for r in provider.requests[since:] if r.protocol == "anthropic"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_text("hello\n")
    (tmp_path / "dot.png").write_bytes(PNG)
    return tmp_path


def test_plain_prompt_passthrough_and_recorded(provider, workdir, tmp_path):
    store = tmp_path / "store.duckdb"
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), store) as url:
        result = run_claude(url, "say hello", cwd=workdir)
    assert result["is_error"] is False, result
    assert result["result"] == "Hello from the local provider."
    assert fired(provider, start) == ["rule:hello"]
    with open_store(store) as s:
        tx = s.transactions()
    assert list(tx["status"]) == ["ok"]
    assert tx["streaming"].all()


def test_bash_round_trip(provider, workdir, tmp_path):
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), None) as url:
        result = run_claude(url, "please list files", cwd=workdir, allowed_tools=["Bash"])
    assert result["is_error"] is False, result
    assert result["result"].startswith("Done: ")
    assert "hello.txt" in result["result"] and "dot.png" in result["result"]
    assert fired(provider, start) == ["rule:bash", "rule:bash-result"]


def test_transforming_policy_is_visible(provider, workdir):
    policy = StringReplacePolicy(replacements={"local provider": "LUTHIEN GATEWAY"})
    with gateway(provider, policy, None) as url:
        result = run_claude(url, "say hello", cwd=workdir)
    assert result["result"] == "Hello from the LUTHIEN GATEWAY."


def test_blocked_bash_gets_an_answer_the_agent_handles(provider, workdir, tmp_path):
    store = tmp_path / "blocked.duckdb"
    policy = ToolFilterPolicy(deny=["Bash"], blocked_message="[luthien: {name} was blocked]")
    start = len(provider.requests)
    with gateway(provider, policy, store) as url:
        result = run_claude(url, "please list files", cwd=workdir, allowed_tools=["Bash"])
    assert result["is_error"] is False, result
    assert "[luthien: Bash was blocked]" in result["result"]
    # One request, answered end_turn: no tool ran, no retry loop.
    assert fired(provider, start) == ["rule:bash"]
    with open_store(store) as s:
        assert list(s.transactions()["status"]) == ["blocked"]


def test_reading_an_image(provider, workdir):
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), None) as url:
        result = run_claude(
            url, f"please read the image {workdir / 'dot.png'} now", cwd=workdir,
            allowed_tools=["Read"],
        )  # fmt: skip
    assert result["is_error"] is False, result
    assert result["result"] == "Saw: [image]"
    assert fired(provider, start) == ["rule:read", "rule:read-result"]
    image = provider.requests[-1].body["messages"][-1]["content"][0]["content"][0]
    assert image["type"] == "image" and base64.b64decode(image["source"]["data"]) == PNG


def test_web_search(provider, workdir):
    start = len(provider.requests)
    with gateway(provider, NoOpPolicy(), None) as url:
        result = run_claude(
            url, "please search the web for the luthien gateway", cwd=workdir,
            allowed_tools=["WebSearch"], env={"ENABLE_TOOL_SEARCH": "false"},
        )  # fmt: skip
    assert result["is_error"] is False, result
    assert result["result"].startswith("Found: ")
    assert fired(provider, start) == [
        "rule:websearch",
        "rule:server-search",
        "rule:websearch-result",
    ]
    # The server tool's result (with its citation) reached Claude Code, which quoted it.
    tool_result = provider.requests[-1].body["messages"][-1]["content"][0]
    assert "example.com/luthien" in str(tool_result["content"])
