"""The OpenAI Agents SDK (which speaks the Responses API by default) runs an agent with
one function tool through the gateway; the local provider, scripted by rules, calls
the tool and then answers with its result."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import ToolFilterPolicy
from luthien_lab.policies.string_replace import StringReplacePolicy
from luthien_lab.provider import local_provider
from tests.gateway.conftest import serve

set_tracing_disabled(True)
pytestmark = pytest.mark.timeout(60)

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"Sunny in {city}, 21 C"


@pytest.fixture
def provider():
    """A provider of its own: the rules below answer every tool result."""
    with local_provider() as p:
        p.add_rule(
            {"prompt_contains": "weather", "offers_tool": "get_weather"},
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        )
        p.add_rule(
            {"after_tool_result": "get_weather"},
            lambda r: f"The tool says: {r.last_tool_result()[1]}",
        )
        yield p


async def run_agent(url, prompt="What is the weather in Paris?", stream=False):
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer with the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
    )
    if not stream:
        return await Runner.run(agent, prompt)
    result = Runner.run_streamed(agent, prompt)
    async for _event in result.stream_events():
        pass
    return result


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["native", "chat"])
async def test_an_agent_calls_its_tool_through_the_gateway(provider, mode, stream):
    CALLS.clear()
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
    with serve(create_app(NoOpPolicy(), settings=GatewaySettings(upstream=upstream))) as url:
        result = await run_agent(url, stream=stream)
    assert CALLS == ["Paris"]
    assert result.final_output == "The tool says: Sunny in Paris, 21 C"
    sent = [r for r in provider.requests if r.source.startswith("rule:")]
    assert [r.source for r in sent] == ["rule:rule-1", "rule:rule-2"]
    assert {r.protocol for r in sent} == {"responses" if mode == "native" else "openai"}
    assert {r.stream for r in sent} == {stream}
    if mode == "native":
        output = sent[1].body["input"][-1]
        assert output["type"] == "function_call_output"
        assert output["output"] == "Sunny in Paris, 21 C"
    else:
        assert sent[1].body["messages"][-1]["content"] == "Sunny in Paris, 21 C"


async def test_policies_apply_to_the_agent(provider):
    CALLS.clear()
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api="native")
    settings = GatewaySettings(upstream=upstream)
    with serve(
        create_app(StringReplacePolicy(replacements={"Sunny": "Cloudy"}), settings=settings)
    ) as url:
        replaced = await run_agent(url)
    assert replaced.final_output == "The tool says: Cloudy in Paris, 21 C"
    with serve(create_app(ToolFilterPolicy(deny=["get_weather"]), settings=settings)) as url:
        blocked = await run_agent(url, "What is the weather in Oslo?")
    assert CALLS == ["Paris"]  # the blocked call never reached the agent
    assert blocked.final_output == ""
