"""``POST /v1/responses`` through the real openai SDK, with the local provider upstream,
in both upstream modes: ``native`` (the provider's ``/v1/responses``) and ``chat`` (the
request translated to the provider's ``/v1/chat/completions``, the answer rebuilt)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import ToolFilterPolicy
from luthien_lab.policies.string_replace import StringReplacePolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

MODES = ("native", "chat")
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
DELETE = {"type": "function", "name": "delete_file", "parameters": {"type": "object"}}


def settings(provider, mode):
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
    return GatewaySettings(upstream=upstream)


@pytest.fixture(scope="module")
def gateways(provider):
    """A NoOp gateway per upstream mode."""
    with (
        serve(create_app(NoOpPolicy(), settings=settings(provider, "native"))) as native,
        serve(create_app(NoOpPolicy(), settings=settings(provider, "chat"))) as chat,
    ):
        yield {"native": native, "chat": chat}


def client(url):
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=30)


def received(provider, prompt):
    """The last request the provider got whose last user message is ``prompt``."""
    return [r for r in provider.requests if r.prompt == prompt][-1]


async def run(url, stream, **kwargs):
    """The final response (and the streamed events, [] when not streaming)."""
    async with client(url) as c:
        if not stream:
            return await c.responses.create(**kwargs), []
        async with c.responses.stream(**kwargs) as s:
            events = [event async for event in s]
            if events[-1].type == "response.incomplete":  # the SDK's final is completed only
                return events[-1].response, events
            return await s.get_final_response(), events


async def raw_events(url, body, headers=None):
    """The SSE events of a streaming request, parsed, as the client got them."""
    events = []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST", f"{url}/v1/responses", json={**body, "stream": True}, headers=headers
        ) as r,
    ):
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def check_numbering(events):
    """Sequence numbers count from 0 without gaps; output indexes are consecutive from 0
    in the order items are added, and every item event points at an added item."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert added == list(range(len(added)))
    ids = {
        e["output_index"]: e["item"]["id"]
        for e in events
        if e["type"] == "response.output_item.added"
    }
    for event in events:
        if "output_index" in event and "item_id" in event:
            assert ids[event["output_index"]] == event["item_id"], event


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_text(gateways, provider, mode, stream):
    prompt = f"say hello {mode} {stream}"
    provider.add_case(prompt, ScriptedResponse(text_chunks=["Hello ", "from ", "upstream"]))
    response, events = await run(
        gateways[mode], stream, model="gpt-4o", instructions="Be brief.", input=prompt
    )
    assert response.output_text == "Hello from upstream"
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.input_tokens > 0 and response.usage.output_tokens == 3
    if stream:
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        assert deltas == ["Hello ", "from ", "upstream"]
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert events[0].response.id == response.id
    upstream = received(provider, prompt)
    if mode == "native":
        assert upstream.protocol == "responses"
        assert upstream.body["instructions"] == "Be brief."
        assert upstream.body["input"] == prompt
    else:
        assert upstream.protocol == "openai"
        assert upstream.body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": prompt},
        ]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_function_tool_round_trip(gateways, provider, mode, stream):
    prompt = f"weather in Paris {mode} {stream}"
    provider.add_case(
        prompt,
        ScriptedResponse(
            tool_calls=[ScriptedToolCall(name="get_weather", arguments={"city": "Paris"})],
            chunk_size=5,
        ),
    )
    first, events = await run(gateways[mode], stream, model="gpt-4o", input=prompt, tools=[WEATHER])
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    if stream:
        pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
        assert "".join(pieces) == call.arguments and len(pieces) > 1
    second, _ = await run(
        gateways[mode],
        stream,
        model="gpt-4o",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": prompt},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
        ],
    )
    assert second.output_text == "Local echo: tool result received."
    upstream = [r for r in provider.requests if r.prompt == prompt][-1].body
    if mode == "native":
        assert upstream["input"][2] == {
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": "sunny, 21 C",
        }
        assert upstream["tools"] == [WEATHER]
    else:
        assert upstream["messages"][1]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": call.arguments,
        }
        assert upstream["messages"][2] == {
            "role": "tool",
            "tool_call_id": call.call_id,
            "content": "sunny, 21 C",
        }
        assert upstream["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_encrypted_content_goes_back_unchanged(gateways, provider, stream):
    """Native upstream: the reasoning item (with ``encrypted_content``, asked for with
    ``include``) comes back as the upstream sent it and, passed back on the next turn,
    reaches the upstream unchanged."""
    prompt = f"think hard {stream}"
    provider.add_case(
        prompt, ScriptedResponse(thinking="Let me think.", text="42", signature="enc-sig-1")
    )
    first, events = await run(
        gateways["native"],
        stream,
        model="o4-mini",
        input=prompt,
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    reasoning, message = first.output
    assert message.type == "message" and message.content[0].text == "42"
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "enc-sig-1"
    assert [s.text for s in reasoning.summary] == ["Let me think."]
    assert first.output_text == "42"
    if stream:
        summary = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
        assert "".join(summary) == "Let me think."
    follow = f"and then? {stream}"
    items = [item.model_dump(exclude_none=True) for item in first.output]
    await run(
        gateways["native"],
        False,
        model="o4-mini",
        input=[{"role": "user", "content": prompt}, *items, {"role": "user", "content": follow}],
        include=["reasoning.encrypted_content"],
        store=False,
    )
    sent = received(provider, follow).body["input"]
    assert sent[1] == items[0]  # the reasoning item, encrypted_content and all
    assert sent[1]["encrypted_content"] == "enc-sig-1"
    assert sent[2] == items[1]


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_through_a_chat_upstream(gateways, provider, stream):
    prompt = f"ponder chat {stream}"
    provider.add_case(prompt, ScriptedResponse(thinking="Pondering.", text="Done."))
    response, _ = await run(
        gateways["chat"], stream, model="o4-mini", input=prompt, reasoning={"effort": "low"}
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and [s.text for s in reasoning.summary] == ["Pondering."]
    assert message.type == "message" and reasoning.id != message.id
    assert response.output_text == "Done."
    assert received(provider, prompt).body["reasoning_effort"] == "low"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_parameters_reach_the_upstream(gateways, provider, mode, stream):
    prompt = f"give me json {mode} {stream}"
    provider.add_case(prompt, ScriptedResponse(text='{"answer": 42}'))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
    response, _ = await run(
        gateways[mode],
        stream,
        model="gpt-4o",
        input=prompt,
        text={"format": fmt},
        max_output_tokens=64,
        metadata={"ticket": "T-1"},
        store=False,
        temperature=0.3,
    )
    assert json.loads(response.output_text) == {"answer": 42}
    assert response.metadata == {"ticket": "T-1"}
    assert response.max_output_tokens == 64
    assert response.store is False
    assert response.text.format.type == "json_schema"
    body = received(provider, prompt).body
    if mode == "native":
        assert body["text"] == {"format": fmt}
        assert (body["max_output_tokens"], body["metadata"], body["store"]) == (
            64,
            {"ticket": "T-1"},
            False,
        )
        assert body["temperature"] == 0.3
    else:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {k: fmt[k] for k in ("name", "schema", "strict")},
        }
        assert (body["max_tokens"], body["temperature"]) == (64, 0.3)
        assert "metadata" not in body and "store" not in body


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_a_cut_answer_is_incomplete(gateways, provider, mode, stream):
    prompt = f"write a long essay {mode} {stream}"
    provider.add_case(prompt, ScriptedResponse(text="It was a dark and", finish_reason="length"))
    response, events = await run(
        gateways[mode], stream, model="gpt-4o", input=prompt, max_output_tokens=5
    )
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "It was a dark and"
    if stream:
        assert events[-1].type == "response.incomplete"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_string_replace_is_visible(provider, mode, stream):
    prompt = f"tell me about OpenAI {mode} {stream}"
    provider.add_case(
        prompt,
        ScriptedResponse(
            thinking="About OpenAI.", text_chunks=["Open", "AI is Open", "AI."], signature="s-2"
        ),
    )
    policy = StringReplacePolicy(replacements={"OpenAI": "ClosedAI"})
    with serve(create_app(policy, settings=settings(provider, mode))) as url:
        response, events = await run(
            url, stream, model="gpt-4o", input=prompt, include=["reasoning.encrypted_content"]
        )
        body = {"model": "gpt-4o", "input": prompt, "include": ["reasoning.encrypted_content"]}
        raw = await raw_events(url, body)
    assert response.output_text == "ClosedAI is ClosedAI."
    if stream:  # what the SDK saw streaming, too
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == "ClosedAI is ClosedAI."
    reasoning = response.output[0]
    assert [s.text for s in reasoning.summary] == ["About OpenAI."]  # thinking is not text
    if mode == "native":
        assert reasoning.encrypted_content == "s-2"
    check_numbering(raw)
    deltas = "".join(e["delta"] for e in raw if e["type"] == "response.output_text.delta")
    assert deltas == "ClosedAI is ClosedAI."
    [done] = [e for e in raw if e["type"] == "response.output_text.done"]
    assert done["text"] == "ClosedAI is ClosedAI."
    final = raw[-1]["response"]
    assert final["output"][1]["content"][0]["text"] == "ClosedAI is ClosedAI."
    [item_done] = [
        e["item"]
        for e in raw
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "message"
    ]
    assert item_done == final["output"][1]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_tool_filter_removes_the_call(provider, mode, stream):
    prompt = f"clean up and check the weather {mode} {stream}"
    provider.add_case(
        prompt,
        ScriptedResponse(
            text="On it.",
            tool_calls=[
                ScriptedToolCall(name="delete_file", arguments={"path": "/"}),
                ScriptedToolCall(name="get_weather", arguments={"city": "Oslo"}),
            ],
            chunk_size=4,
        ),
    )
    policy = ToolFilterPolicy(deny=["delete_file"])
    kwargs = {"model": "gpt-4o", "input": prompt, "tools": [WEATHER, DELETE]}
    with serve(create_app(policy, settings=settings(provider, mode))) as url:
        response, _ = await run(url, stream, **kwargs)
        raw = await raw_events(url, {**kwargs})
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.output_text == "On it."
    assert response.output[1].name == "get_weather"
    assert json.loads(response.output[1].arguments) == {"city": "Oslo"}
    assert response.status == "completed"
    check_numbering(raw)
    added = [e["item"] for e in raw if e["type"] == "response.output_item.added"]
    assert [i.get("name") for i in added if i["type"] == "function_call"] == ["get_weather"]
    final = raw[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    done = [e["item"] for e in raw if e["type"] == "response.output_item.done"]
    assert done == final["output"]  # the final output lists exactly the items streamed


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_every_call_blocked_leaves_the_message(provider, mode, stream):
    prompt = f"wipe the disk {mode} {stream}"
    provider.add_case(
        prompt,
        ScriptedResponse(tool_calls=[ScriptedToolCall(name="delete_file", arguments={"p": "/"})]),
    )
    policy = ToolFilterPolicy(deny=["delete_file"], blocked_message="[blocked {name}]")
    with serve(create_app(policy, settings=settings(provider, mode))) as url:
        response, _ = await run(url, stream, model="gpt-4o", input=prompt, tools=[DELETE])
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text == "[blocked delete_file]"
    assert response.status == "completed"
