"""The gateway through the real openai SDK, with the local provider upstream."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy, Policy, ScriptedLLMClient, UppercasePolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.gateway.conftest import serve
from tests.support import text_stream

KEY = "gw-test-key"
pytestmark = pytest.mark.timeout(60)


def settings_for(provider, **kwargs):
    return GatewaySettings(upstream=UpstreamSettings(api_base=provider.openai_base), **kwargs)


@pytest.fixture(scope="module")
def gateway(provider):
    """An uppercase gateway with an API key, upstream = the local provider."""
    app = create_app(UppercasePolicy(), settings=settings_for(provider), api_key=KEY)
    with serve(app) as url:
        yield url


def client(url, key=KEY):
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


async def test_non_streaming_applies_the_policy(gateway):
    async with client(gateway) as c:
        response = await c.chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": "hello there"}]
        )
    assert response.choices[0].message.content == "LOCAL ECHO: HELLO THERE"
    assert response.choices[0].finish_reason == "stop"


async def test_streaming_applies_the_policy(gateway):
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="local-model",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "LOCAL ECHO: STREAM ME"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


async def test_tool_calls_streaming_and_not(gateway, provider):
    provider.add_case(
        "what is the weather",
        ScriptedResponse(
            text="Checking.",
            tool_calls=[ScriptedToolCall(name="get_weather", arguments={"city": "Paris"})],
        ),
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages = [{"role": "user", "content": "what is the weather"}]
    async with client(gateway) as c:
        full = await c.chat.completions.create(model="local-model", messages=messages, tools=tools)
        stream = await c.chat.completions.create(
            model="local-model", messages=messages, tools=tools, stream=True
        )
        chunks = [chunk async for chunk in stream]
    call = full.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert full.choices[0].message.content == "CHECKING."
    assert full.choices[0].finish_reason == "tool_calls"
    args = "".join(
        tc.function.arguments or ""
        for ch in chunks
        if ch.choices
        for tc in ch.choices[0].delta.tool_calls or []
    )
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason in (None, "tool_calls")


async def test_wrong_or_missing_key_is_refused(gateway):
    for key in ("wrong", ""):
        async with client(gateway, key=key or "unused") as c:
            headers = {"Authorization": ""} if not key else None
            with pytest.raises(openai.AuthenticationError) as caught:
                await c.chat.completions.create(
                    model="local-model",
                    messages=[{"role": "user", "content": "hi"}],
                    extra_headers=headers,
                )
        assert caught.value.status_code == 401
        assert caught.value.body["type"] == "authentication_error"
    async with httpx.AsyncClient() as h:
        ok = await h.post(
            f"{gateway}/v1/chat/completions",
            headers={"x-api-key": KEY},
            json={"model": "m", "messages": [{"role": "user", "content": "x-api-key works"}]},
        )
        assert ok.status_code == 200
        health = await h.get(f"{gateway}/health", headers={"x-api-key": KEY})
        assert health.json()["status"] == "ok"


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_are_mapped(gateway, provider, stream):
    provider.add_case("fail please", ScriptedResponse(fault="http_500"))
    async with client(gateway) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            result = await c.chat.completions.create(
                model="local-model",
                messages=[{"role": "user", "content": "fail please"}],
                stream=stream,
            )
            if stream:
                async for _ in result:
                    pass
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"


async def test_upstream_error_mid_stream_is_a_final_error_event(gateway, provider):
    provider.add_case("drop midway", ScriptedResponse(text="a" * 64, fault="drop", fault_after=3))
    async with httpx.AsyncClient(timeout=30) as h:
        response = await h.post(
            f"{gateway}/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={
                "model": "m",
                "stream": True,
                "messages": [{"role": "user", "content": "drop midway"}],
            },
        )
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert response.status_code == 200
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "upstream_error", last


async def test_bad_requests_are_400(gateway):
    cases = [
        (b"{not json", "not valid JSON"),
        (json.dumps({"model": "m"}).encode(), "messages"),
        (json.dumps({"model": "m", "messages": [], "api_base": "http://x"}).encode(), "api_base"),
    ]
    async with httpx.AsyncClient() as h:
        for body, needle in cases:
            response = await h.post(
                f"{gateway}/v1/chat/completions",
                headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
                content=body,
            )
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert needle in error["message"]


async def test_request_too_large_is_413(provider):
    app = create_app(NoOpPolicy(), settings=settings_for(provider, max_request_bytes=1000))
    with serve(app) as url:
        async with client(url) as c:
            with pytest.raises(openai.APIStatusError) as caught:
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x" * 5000}]
                )
            small = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "small"}]
            )
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"
    assert small.choices[0].message.content == "Local echo: small"


class Boom(Policy):
    async def on_chunk_received(self, ctx):
        raise RuntimeError("policy bug")

    async def process_full_response(self, response, context):
        raise RuntimeError("policy bug")


async def test_policy_error_is_500(provider):
    with serve(create_app(Boom(), settings=settings_for(provider))) as url:
        async with client(url) as c:
            for stream in (False, True):
                with pytest.raises(openai.APIStatusError) as caught:
                    await c.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "x"}], stream=stream
                    )
                assert caught.value.status_code == 500
                assert "policy bug" in caught.value.message


async def test_blocked_tool_call_reaches_client_as_stop(provider):
    provider.add_case(
        "delete it",
        ScriptedResponse(tool_calls=[ScriptedToolCall(name="delete_file", arguments={"p": "/"})]),
    )
    policy = ToolFilterPolicy(deny=["delete_file"], blocked_message="[blocked {name}]")
    with serve(create_app(policy, settings=settings_for(provider))) as url:
        async with client(url) as c:
            full = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "delete it"}]
            )
    assert full.choices[0].message.tool_calls is None
    assert full.choices[0].message.content == "[blocked delete_file]"
    assert full.choices[0].finish_reason == "stop"


async def test_fifty_concurrent_streams_get_their_own_answers(provider):
    with serve(create_app(UppercasePolicy(), settings=settings_for(provider))) as url:
        async with client(url) as c:

            async def ask(i):
                stream = await c.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": f"prompt number {i} " + "x" * (i % 7)}],
                    stream=True,
                )
                return "".join(
                    [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
                )

            answers = await asyncio.gather(*(ask(i) for i in range(50)))
    for i, answer in enumerate(answers):
        assert answer == f"LOCAL ECHO: PROMPT NUMBER {i} " + "X" * (i % 7)


async def test_client_disconnect_cancels_upstream():
    chunks = text_stream(*[f"piece {i} " for i in range(200)])
    scripted = ScriptedLLMClient(chunks, delay=0.02)
    with serve(create_app(NoOpPolicy(), llm_client=scripted)) as url:
        async with (
            httpx.AsyncClient(timeout=10) as h,
            h.stream(
                "POST",
                f"{url}/v1/chat/completions",
                json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            ) as response,
        ):
            received = 0
            async for _line in response.aiter_lines():
                received += 1
                if received > 6:
                    assert scripted.open_streams == 1, "upstream open mid-response"
                    break
        for _ in range(200):
            if scripted.open_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert scripted.open_streams == 0, "disconnect closed the upstream stream"


async def test_stalled_upstream_is_504(provider):
    provider.add_case("stall now", ScriptedResponse(text="abc", fault="stall", stall_seconds=5))
    settings = GatewaySettings(
        upstream=UpstreamSettings(api_base=provider.openai_base, timeout=0.5)
    )
    with serve(create_app(NoOpPolicy(), settings=settings)) as url:
        async with client(url, key="k") as c:
            with pytest.raises(openai.APIStatusError) as caught:
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "stall now"}]
                )
    assert caught.value.status_code == 504


async def test_lean_http_upstream_client_streaming_and_errors(provider):
    settings = GatewaySettings(
        upstream=UpstreamSettings(api_base=provider.openai_base, client="http")
    )
    provider.add_case("http fail", ScriptedResponse(fault="http_500"))
    with serve(create_app(UppercasePolicy(), settings=settings)) as url:
        async with client(url) as c:
            full = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "via http"}]
            )
            stream = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "via http"}], stream=True
            )
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            with pytest.raises(openai.APIStatusError) as caught:
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "http fail"}]
                )
    assert full.choices[0].message.content == text == "LOCAL ECHO: VIA HTTP"
    assert caught.value.status_code == 502


async def test_transactions_are_recorded_to_duckdb(provider, tmp_path):
    from luthien_lab.store import open_store

    path = tmp_path / "gw.duckdb"
    app = create_app(UppercasePolicy(), settings=settings_for(provider), store=str(path))
    with serve(app) as url:
        async with client(url) as c:
            await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "record me"}]
            )
    # Leaving serve() ran the app's shutdown, which flushed and closed the recorder.
    transactions = open_store(str(path)).transactions()
    assert len(transactions) == 1
    assert transactions.iloc[0]["status"] == "ok"
