"""``POST /v1/messages`` through the real anthropic SDK, with the local provider upstream."""

from __future__ import annotations

import asyncio
import json

import anthropic
import httpx
import pytest

from luthien_lab import NoOpPolicy, Policy, ScriptedLLMClient, UppercasePolicy
from luthien_lab.gateway import Gateway, GatewaySettings, UpstreamSettings, create_app
from luthien_lab.gateway._anthropic import to_request
from luthien_lab.gateway._anthropic_stream import AnthropicStreamConverter
from luthien_lab.policies import ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk
from tests.gateway.conftest import serve
from tests.support import text_stream, tool_chunk

KEY = "gw-anthropic-key"
pytestmark = pytest.mark.timeout(60)

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
}


def settings_for(base, **kwargs):
    return GatewaySettings(upstream=UpstreamSettings(api_base=base), **kwargs)


@pytest.fixture(scope="module")
def gateway(provider):
    """An uppercase gateway with an API key, upstream = the local provider (OpenAI)."""
    app = create_app(UppercasePolicy(), settings=settings_for(provider.openai_base), api_key=KEY)
    with serve(app) as url:
        yield url


def client(url, key=KEY):
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=30)


def received(provider, prompt):
    """The last request the local provider got whose last user message is ``prompt``."""
    return [r for r in provider.requests if r.prompt == prompt][-1]


def user(text):
    return [{"role": "user", "content": text}]


async def test_text_non_streaming_applies_the_policy(gateway, provider):
    async with client(gateway) as c:
        message = await c.messages.create(
            model="local-model",
            max_tokens=100,
            system=[{"type": "text", "text": "Be brief."}],
            messages=user("hello there"),
            stop_sequences=["END"],
            metadata={"user_id": "u-42"},
            cache_control={"type": "ephemeral"},
            extra_body={"temperature": 0.2},  # not a parameter of the 2.x SDK any more
        )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "local-model"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "LOCAL ECHO: HELLO THERE"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    body = received(provider, "hello there").body
    assert body["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "Be brief."}],
    }
    assert body["messages"][1] == {"role": "user", "content": "hello there"}
    # (metadata.user_id becomes ``user``, which litellm drops for this model: unit-tested)
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (100, 0.2, ["END"])


async def test_text_streaming_applies_the_policy(gateway):
    async with client(gateway) as c:
        async with c.messages.stream(
            model="local-model", max_tokens=100, messages=user("stream me please")
        ) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        raw = await c.messages.create(
            model="local-model", max_tokens=100, messages=user("stream me please"), stream=True
        )
        kinds = [event.type async for event in raw]
    assert "".join(pieces) == final.content[0].text == "LOCAL ECHO: STREAM ME PLEASE"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


@pytest.mark.parametrize("stream", [False, True])
async def test_several_tool_calls(gateway, provider, stream):
    provider.add_case(
        "weather and time",
        ScriptedResponse(
            text="Checking.",
            tool_calls=[
                ScriptedToolCall(name="get_weather", arguments={"city": "Paris"}),
                ScriptedToolCall(name="get_time", arguments={"tz": "Europe/Paris"}),
            ],
            chunk_size=3,
        ),
    )
    kwargs = dict(
        model="local-model",
        max_tokens=100,
        messages=user("weather and time"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "auto"},
    )
    async with client(gateway) as c:
        if stream:
            async with c.messages.stream(**kwargs) as s:
                message = await s.get_final_message()
        else:
            message = await c.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "CHECKING."
    calls = [(b.name, b.input) for b in message.content[1:]]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Europe/Paris"})]
    assert all(b.id for b in message.content[1:])
    assert message.stop_reason == "tool_use"
    body = received(provider, "weather and time").body
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": WEATHER["input_schema"],
        },
    }
    assert body["tool_choice"] == "auto"


@pytest.mark.parametrize("stream", [False, True])
async def test_blocked_tool_call_ends_the_turn(provider, stream):
    provider.add_case(
        "delete everything",
        ScriptedResponse(tool_calls=[ScriptedToolCall(name="delete_file", arguments={"p": "/"})]),
    )
    policy = ToolFilterPolicy(deny=["delete_file"], blocked_message="[blocked {name}]")
    tool = {"name": "delete_file", "input_schema": {"type": "object"}}
    with serve(create_app(policy, settings=settings_for(provider.openai_base))) as url:
        async with client(url, key="any") as c:
            kwargs = dict(
                model="m", max_tokens=50, messages=user("delete everything"), tools=[tool]
            )
            if stream:
                async with c.messages.stream(**kwargs) as s:
                    message = await s.get_final_message()
            else:
                message = await c.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "[blocked delete_file]"
    assert message.stop_reason == "end_turn"


async def test_tool_result_turn_is_converted(gateway, provider):
    messages = [
        {"role": "user", "content": "what is the weather in Oslo"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]  # fmt: skip
    async with client(gateway) as c:
        message = await c.messages.create(
            model="local-model",
            max_tokens=100,
            messages=messages,
            tools=[WEATHER],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        )
    assert message.content[0].text == "LOCAL ECHO: AND TOMORROW?"
    body = received(provider, "and tomorrow?").body
    assert body["messages"] == [
        {"role": "user", "content": "what is the weather in Oslo"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


async def test_anthropic_upstream_round_trip_with_thinking(provider):
    """``anthropic/...`` models reach the provider's Anthropic protocol through litellm;
    thinking (with its signature) and tool_result blocks survive both conversions."""
    provider.add_case(
        "think about it",
        ScriptedResponse(thinking="pondering deeply", text="Done thinking.", signature="sig-1"),
    )
    kwargs = dict(
        model="anthropic/claude-sonnet-4",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=user("think about it"),
    )
    app = create_app(NoOpPolicy(), settings=settings_for(provider.anthropic_base))
    with serve(app) as url:
        async with client(url, key="any") as c:
            full = await c.messages.create(**kwargs)
            async with c.messages.stream(**kwargs) as s:
                streamed = await s.get_final_message()
            follow = await c.messages.create(
                model="anthropic/claude-sonnet-4",
                max_tokens=100,
                messages=[
                    {"role": "user", "content": "weather please"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "tool_use",
                                "id": "toolu_9",
                                "name": "get_weather",
                                "input": {"city": "Rome"},
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "hot"}
                        ],
                    },
                ],
                tools=[WEATHER],
            )
    for message in (full, streamed):
        assert [b.type for b in message.content] == ["thinking", "text"]
        assert message.content[0].thinking == "pondering deeply"
        assert message.content[0].signature == "sig-1"
        assert message.content[1].text == "Done thinking."
    upstream = received(provider, "think about it")
    assert upstream.protocol == "anthropic"
    assert upstream.body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert follow.content[0].text == "Local echo: tool result received."
    sent = [r for r in provider.requests if r.prompt == "weather please"][-1].body["messages"]
    assert sent[1]["content"][-1]["type"] == "tool_use"
    assert sent[1]["content"][-1]["input"] == {"city": "Rome"}
    assert sent[2]["content"][0]["type"] == "tool_result"
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_9"


async def test_wrong_or_missing_key_is_401(gateway):
    async with client(gateway, key="wrong") as c:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await c.messages.create(model="m", max_tokens=10, messages=user("hi"))
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "incorrect API key provided"},
    }
    async with httpx.AsyncClient(timeout=10) as h:
        missing = await h.post(
            f"{gateway}/v1/messages",
            json={"model": "m", "max_tokens": 10, "messages": user("hi")},
        )
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"


async def test_malformed_bodies_are_400(gateway):
    good = {"model": "m", "max_tokens": 10, "messages": user("hi")}
    cases = [
        (b"{not json", "not valid JSON"),
        (json.dumps({"model": "m", "messages": user("hi")}).encode(), "max_tokens"),
        (json.dumps(good | {"api_base": "http://evil"}).encode(), "api_base"),
        (json.dumps(good | {"messages": [{"role": "tool", "content": "x"}]}).encode(), "role"),
        (
            json.dumps(good | {"messages": [{"role": "user", "content": [{"type": "document"}]}]}).encode(),
            "document",
        ),
        (json.dumps(good | {"tool_choice": {"type": "sometimes"}}).encode(), "tool_choice"),
    ]  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as h:
        for body, needle in cases:
            response = await h.post(
                f"{gateway}/v1/messages",
                headers={"x-api-key": KEY, "content-type": "application/json"},
                content=body,
            )
            assert response.status_code == 400, response.text
            payload = response.json()
            assert payload["type"] == "error"
            assert payload["error"]["type"] == "invalid_request_error"
            assert needle in payload["error"]["message"]
    async with client(gateway) as c:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.create(
                model="m", max_tokens=10, messages=user("hi"), extra_body={"api_key": "x"}
            )
    assert caught.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [("http_500", 502, "api_error"), ("http_429", 429, "rate_limit_error")],
)
async def test_upstream_faults_are_mapped(gateway, provider, stream, fault, status, kind):
    prompt = f"please fail with {fault}"
    provider.add_case(prompt, ScriptedResponse(fault=fault))
    async with client(gateway) as c:
        with pytest.raises(anthropic.APIStatusError) as caught:
            result = await c.messages.create(
                model="local-model", max_tokens=10, messages=user(prompt), stream=stream
            )
            if stream:
                async for _ in result:
                    pass
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == kind


async def test_upstream_drop_mid_stream_is_an_error_event(gateway, provider):
    provider.add_case(
        "drop it midway", ScriptedResponse(text="a" * 64, fault="drop", fault_after=3)
    )
    async with httpx.AsyncClient(timeout=30) as h:
        response = await h.post(
            f"{gateway}/v1/messages",
            headers={"x-api-key": KEY},
            json={
                "model": "m",
                "max_tokens": 50,
                "stream": True,
                "messages": user("drop it midway"),
            },
        )
    assert response.status_code == 200
    events = [e.split("\n") for e in response.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names[0] == "message_start"
    assert names[-1] == "error" and "message_stop" not in names
    error = json.loads(events[-1][1].removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    async with client(gateway) as c:
        with pytest.raises(anthropic.APIStatusError):
            async with c.messages.stream(
                model="m", max_tokens=50, messages=user("drop it midway")
            ) as s:
                await s.get_final_message()


async def test_request_too_large_is_413(provider):
    settings = settings_for(provider.openai_base, max_request_bytes=1000)
    with serve(create_app(NoOpPolicy(), settings=settings)) as url:
        async with client(url) as c:
            with pytest.raises(anthropic.APIStatusError) as caught:
                await c.messages.create(model="m", max_tokens=10, messages=user("x" * 5000))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"


class Boom(Policy):
    async def on_chunk_received(self, ctx):
        raise RuntimeError("policy bug")

    async def process_full_response(self, response, context):
        raise RuntimeError("policy bug")


async def test_policy_error_is_500(provider):
    with serve(create_app(Boom(), settings=settings_for(provider.openai_base))) as url:
        async with client(url) as c:
            for stream in (False, True):
                with pytest.raises(anthropic.InternalServerError) as caught:
                    await c.messages.create(
                        model="m", max_tokens=10, messages=user("x"), stream=stream
                    )
                assert caught.value.status_code == 500
                assert caught.value.body["error"]["type"] == "api_error"
                assert "policy bug" in caught.value.body["error"]["message"]


async def test_client_disconnect_cancels_upstream():
    scripted = ScriptedLLMClient(text_stream(*[f"piece {i} " for i in range(200)]), delay=0.02)
    with serve(create_app(NoOpPolicy(), llm_client=scripted)) as url:
        async with (
            httpx.AsyncClient(timeout=10) as h,
            h.stream(
                "POST",
                f"{url}/v1/messages",
                json={"model": "m", "max_tokens": 10, "stream": True, "messages": user("x")},
            ) as response,
        ):
            lines = 0
            async for _line in response.aiter_lines():
                lines += 1
                if lines > 10:
                    assert scripted.open_streams == 1, "upstream open mid-response"
                    break
        for _ in range(200):
            if scripted.open_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert scripted.open_streams == 0, "disconnect closed the upstream stream"


# ----- conversion units -----


def _accumulate(events):
    """Rebuild the message from Anthropic events, checking their order on the way."""
    assert events[0]["type"] == "message_start"
    message = events[0]["message"]
    open_index = None
    for event in events[1:]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "a block starts before the previous one stopped"
            assert event["index"] == len(message["content"])
            open_index = event["index"]
            message["content"].append(dict(event["content_block"], partial=""))
        elif kind == "content_block_delta":
            assert event["index"] == open_index
            block, delta = message["content"][open_index], event["delta"]
            field = {"text_delta": "text", "thinking_delta": "thinking"}.get(delta["type"])
            if field:
                block[field] += delta[field]
            elif delta["type"] == "input_json_delta":
                block["partial"] += delta["partial_json"]
            else:
                block["signature"] = delta["signature"]
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            block = message["content"][open_index]
            if block["type"] == "tool_use":
                block["input"] = json.loads(block["partial"])
            del block["partial"]
            open_index = None
        elif kind == "message_delta":
            assert open_index is None
            message.update(event["delta"], usage=event["usage"])
    assert events[-1]["type"] == "message_stop"
    return message


def _convert(chunks):
    converter = AnthropicStreamConverter("msg_unit", "unit-model")
    events = [event for chunk in chunks for event in converter.feed(chunk)]
    return events + converter.finish()


@pytest.mark.timeout(10)
def test_stream_converter_opens_and_closes_blocks():
    chunks = [
        create_chunk(None, role="assistant", content=""),
        create_chunk(None, reasoning_content="let me "),
        create_chunk(None, reasoning_content="see"),
        create_chunk(None, content="Calling "),
        create_chunk(None, content="tools."),
        tool_chunk(0, id="toolu_a", name="get_weather", args=""),
        tool_chunk(0, args='{"city":'),
        tool_chunk(0, args=' "Paris"}'),
        tool_chunk(1, id="toolu_b", name="get_time", args='{"tz": "UTC"}'),  # whole, one chunk
        create_chunk(None, content="Done."),
        create_chunk(None, finish_reason="tool_calls"),
        create_usage_chunk({"prompt_tokens": 7, "completion_tokens": 11, "total_tokens": 18}),
    ]
    events = _convert(chunks)
    message = _accumulate(events)
    assert [b["type"] for b in message["content"]] == [
        "thinking", "text", "tool_use", "tool_use", "text",
    ]  # fmt: skip
    thinking, text, weather, time_, done = message["content"]
    assert thinking["thinking"] == "let me see"
    assert text["text"] == "Calling tools." and done["text"] == "Done."
    assert (weather["id"], weather["name"], weather["input"]) == (
        "toolu_a",
        "get_weather",
        {"city": "Paris"},
    )
    assert (time_["id"], time_["name"], time_["input"]) == ("toolu_b", "get_time", {"tz": "UTC"})
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 7, "output_tokens": 11}
    assert message["id"] == "msg_unit" and message["model"] == "unit-model"
    assert [e["type"] for e in events].count("message_start") == 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "end_turn"),  # no tool_use block survived: not a tool turn
        (None, "end_turn"),
    ],
)
def test_stream_converter_stop_reasons(finish, expected):
    chunks = text_stream("[blocked]", finish=finish) if finish else text_stream("x")[:-1]
    message = _accumulate(_convert(chunks))
    assert message["stop_reason"] == expected
    assert message["content"][0]["text"] == ("[blocked]" if finish else "x")


@pytest.mark.timeout(10)
def test_stream_converter_empty_stream_is_a_valid_message():
    message = _accumulate(_convert([]))
    assert message["content"] == [] and message["stop_reason"] == "end_turn"


@pytest.mark.timeout(10)
def test_request_conversion_details():
    upstream = UpstreamSettings(
        api_base="http://127.0.0.1:9/v1", model_map={"sonnet": "anthropic/claude-sonnet-4"}
    )
    gateway = Gateway(NoOpPolicy(), settings=GatewaySettings(upstream=upstream))
    body = {
        "model": "sonnet",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
            ]},
        ],
        "tool_choice": {"type": "any"},
        "tools": [TIME],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 3,
        "metadata": {"user_id": "u-7"},
    }  # fmt: skip
    request = to_request(body, gateway)
    assert request.model == "anthropic/claude-sonnet-4"
    assert request.messages[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
    }
    assert request.messages[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAA"},
    }
    extra = request.model_extra
    assert extra["tool_choice"] == "required" and extra["top_k"] == 3
    assert extra["user"] == "u-7"
    assert extra["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    # An OpenAI-protocol model gets an effort level and no Anthropic-only cache_control.
    openai_request = to_request(body | {"model": "gpt-x"}, gateway)
    assert openai_request.model == "openai/gpt-x"
    assert openai_request.model_extra["reasoning_effort"] == "low"
    assert "thinking" not in openai_request.model_extra
    assert openai_request.messages[0]["content"] == [{"type": "text", "text": "sys"}]
