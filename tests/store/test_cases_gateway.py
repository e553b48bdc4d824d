"""Transactions really recorded through the gateway, on each wire API it serves
(Chat Completions, Anthropic Messages, OpenAI Responses; streaming and not), become
evaluation cases whose replay reproduces production, and a candidate is compared
with what production sent."""

from __future__ import annotations

import httpx
import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.evaluate import evaluate
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import StringReplacePolicy, ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall, local_provider
from luthien_lab.store import Store
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(120)

TOOL_PROMPT = "weather please"
APIS = ("chat", "messages", "responses")


def production_policy() -> StringReplacePolicy:
    return StringReplacePolicy(replacements={"echo": "ECHO"})


def _settings(provider, api: str) -> GatewaySettings:
    if api == "chat":
        return GatewaySettings(upstream=UpstreamSettings(api_base=provider.openai_base))
    if api == "messages":
        return GatewaySettings(
            upstream=UpstreamSettings(api_base=provider.url, provider="anthropic")
        )
    return GatewaySettings(
        upstream=UpstreamSettings(api_base=provider.openai_base, responses_api="native")
    )


def _post(url: str, api: str, prompt: str, stream: bool) -> None:
    if api == "chat":
        path = "/v1/chat/completions"
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}
        headers: dict[str, str] = {}
    elif api == "messages":
        path = "/v1/messages"
        body = {
            "model": "claude-sonnet-4",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": prompt}],
        }
        headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    else:
        path, body, headers = "/v1/responses", {"model": "gpt-4o", "input": prompt}, {}
    response = httpx.post(url + path, json={**body, "stream": stream}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Per API: streaming and non-streaming text, and a streaming tool call."""
    path = tmp_path_factory.mktemp("gw") / "gateway.duckdb"
    with local_provider() as provider:
        provider.add_case(
            TOOL_PROMPT,
            ScriptedResponse(
                text_chunks=["Let me check the echo."],
                tool_calls=[ScriptedToolCall(name="get_weather", arguments={"city": "Paris"})],
            ),
        )
        for api in APIS:
            app = create_app(production_policy(), settings=_settings(provider, api), store=path)
            with serve(app) as url:
                for stream in (True, False):
                    _post(url, api, f"hello {api} {stream}", stream)
                _post(url, api, TOOL_PROMPT, True)
    return path


def test_every_api_and_mode_becomes_a_case(recorded):
    store = Store(recorded, read_only=True)
    cases = store.cases()
    assert len(cases) == 9
    listed = list(cases)
    assert [c.id for c in listed] == list(
        store.sql("SELECT transaction_id FROM transactions ORDER BY started_at, transaction_id")[
            "transaction_id"
        ]
    )
    for api in APIS:
        mine = list(store.cases(api=api))
        assert len(mine) == 3 and {c.production.api for c in mine} == {api}
        streamed = [c for c in mine if c.production.streaming]
        plain = [c for c in mine if not c.production.streaming]
        assert len(streamed) == 2 and len(plain) == 1
        for case in streamed:
            assert case.chunks and len(case.offsets) == len(case.chunks)
            assert case.offsets == sorted(case.offsets) and case.offsets[-1] > 0
            assert case.production.egress  # what the client was sent
        assert plain[0].chunks is None and plain[0].response is not None
        assert "echo" in plain[0].response["choices"][0]["message"]["content"]
        for case in mine:
            # Production's policy replaced the word: the client saw ECHO, upstream said echo.
            assert "ECHO" in case.production.text and "echo" not in case.production.text
            assert case.production.status == "ok"
            assert case.request["messages"][-1]["content"]
            assert "stream" not in case.request
        tool = next(c for c in mine if c.request["messages"][-1]["content"] == TOOL_PROMPT)
        assert [call[1] for call in tool.production.tool_calls] == ["get_weather"]
        assert tool.production.finish_reason == "tool_calls"


def test_replaying_the_production_policy_reproduces_production(recorded):
    store = Store(recorded, read_only=True)
    result = evaluate({"same": production_policy()}, store.cases(), progress=False)
    assert len(result) == 9
    assert set(result.df["reference"]) == {"production"}
    assert not result.df["changed"].any(), result.df[result.df["changed"]]["diff"].tolist()
    assert result.df["diff"].isna().all()
    # Production is the reference: no baseline run by default for stored cases.
    assert result.baseline_df is None
    assert set(result.df["model"]) == {"openai/gpt-4o", "anthropic/claude-sonnet-4"}


def test_a_candidate_that_differs_from_production_is_reported_with_a_diff(recorded):
    store = Store(recorded, read_only=True)
    candidates = {
        "noop": NoOpPolicy(),
        "no-tools": ToolFilterPolicy(deny=["get_weather"]),
    }
    result = evaluate(candidates, store.cases(), progress=False)
    noop = result.for_policy("noop")
    assert noop["changed"].all()
    for diff in noop["diff"]:
        assert "--- production" in diff and "+++ candidate" in diff
        assert any(line.startswith("-") and "ECHO" in line for line in diff.splitlines())
        assert any(line.startswith("+") and "echo" in line for line in diff.splitlines())
    blocked = result.for_policy("no-tools")
    tool_rows = blocked[blocked["diff"].fillna("").str.contains("tool calls: 1 -> 0")]
    assert len(tool_rows) == 3  # the tool call of each API, removed
    assert (tool_rows["status"] == "blocked").all()
    assert tool_rows["diff"].str.contains("blocked: False -> True").all()
    assert tool_rows["diff"].str.contains("finish_reason: tool_calls -> stop").all()


def test_a_stored_stream_replays_at_its_recorded_pace(recorded):
    store = Store(recorded, read_only=True)
    (case,) = [c for c in store.cases(api="chat", limit=1)]
    assert case.offsets[-1] > 0
    fast = evaluate({"same": production_policy()}, [case], progress=False)
    paced = evaluate({"same": production_policy()}, [case], progress=False, pacing="original")
    assert not paced.df["changed"].any()
    # The last chunk is not sent before its recorded offset.
    assert paced.df["total_ms"].iloc[0] >= case.offsets[-1] * 1000
    assert list(paced.df["text"]) == list(fast.df["text"])
