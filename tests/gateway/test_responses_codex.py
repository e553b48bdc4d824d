"""Codex CLI through the gateway. Requests recorded from the real CLI
(``tests/fixtures/codex``) go through in both upstream modes: a Responses upstream gets
them as Codex sent them (headers that tie a session together included); a chat upstream
gets a faithful translation (the custom ``apply_patch`` tool and its call as a function
tool and call). Then the real CLI (pinned in tools/agents, ``make agents``) runs a tool
round trip through the gateway, with a passthrough, a transforming and a blocking
policy."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "codex"
SESSION_HEADERS = ("session-id", "thread-id", "x-client-request-id", "originator")


def recorded(name):
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def gateways(provider):
    urls = {}
    servers = []
    for mode in ("native", "chat"):
        upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
        servers.append(serve(create_app(NoOpPolicy(), settings=GatewaySettings(upstream=upstream))))
        urls[mode] = servers[-1].__enter__()
    yield urls
    for server in reversed(servers):
        server.__exit__(None, None, None)


@pytest.mark.parametrize(
    "fixture", ["requests", "tool_round_trip", "reasoning_round_trip", "apply_patch_round_trip"]
)
@pytest.mark.parametrize("mode", ["native", "chat"])
async def test_codex_requests_go_through(gateways, provider, mode, fixture):
    for record in recorded(fixture):
        body = record["body"]
        headers = {
            k: v
            for k, v in record["headers"].items()
            if k in SESSION_HEADERS or k.startswith("x-codex-")
        }
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", f"{gateways[mode]}/v1/responses", json=body, headers=headers) as r,
        ):
            assert r.status_code == 200, await r.aread()
            events = [json.loads(x[6:]) async for x in r.aiter_lines() if x.startswith("data: ")]
        assert events[-1]["type"] == "response.completed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        sent = provider.requests[-1]
        if mode == "native":
            assert sent.body == body
            assert {k: sent.headers.get(k) for k in headers} == headers
            continue
        tools = {t["function"]["name"]: t for t in sent.body["tools"] if t["type"] == "function"}
        assert "apply_patch" in tools and "exec_command" in tools
        assert [m["role"] for m in sent.body["messages"][:4]] == [
            "developer",
            "developer",
            "user",
            "user",
        ]
        assert sent.body["reasoning_effort"] == body["reasoning"]["effort"]
        last = body["input"][-1]
        if last.get("type") in ("function_call_output", "custom_tool_call_output"):
            call = sent.body["messages"][-2]["tool_calls"][0]
            assert sent.body["messages"][-1] == {
                "role": "tool",
                "tool_call_id": last["call_id"],
                "content": last["output"],
            }
            assert call["id"] == last["call_id"]
            if last["type"] == "custom_tool_call_output":
                patch = body["input"][-2]["input"]
                assert call["function"]["name"] == "apply_patch"
                assert json.loads(call["function"]["arguments"]) == {"content": patch}


# ----- the real CLI -----
