"""``/v1/chat/completions`` in front of an OpenAI-compatible upstream: what the policy
does not change goes through unchanged (compared with calling the upstream directly),
and client mistakes are 400s naming the field."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import StringReplacePolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)


def settings(provider) -> GatewaySettings:
    return GatewaySettings(upstream=UpstreamSettings(api_base=provider.openai_base))


@pytest.fixture(scope="module")
def passthrough(provider):
    with serve(create_app(NoOpPolicy(), settings=settings(provider))) as url:
        yield url


def post(base: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{base}/chat/completions", json=body, headers=headers or {}, timeout=30)


def frames(text: str) -> list[str]:
    """The SSE frames, each upstream call's own response id and time blanked."""
    out = []
    for frame in text.split("\n\n"):
        if frame.strip():
            frame = re.sub(r"chatcmpl-local\d+", "<id>", frame)
            out.append(re.sub(r'"created": \d+', '"created": 0', frame))
    return out


def normalized(frame: str) -> str:
    if frame.strip() == "data: [DONE]":
        return frame
    event = json.loads(frame.removeprefix("data: "))
    event["id"] = "-"
    event["created"] = 0
    return json.dumps(event)


SCRIPT = ScriptedResponse(
    thinking="check",
    text_chunks=["Open", "AI is ", "here ☕"],
    tool_calls=[ScriptedToolCall(name="get_time", arguments={"tz": "UTC"})],
)


@pytest.mark.parametrize("usage", [True, False])
@pytest.mark.parametrize("stream", [True, False])
def test_passthrough_equals_the_upstream(provider, passthrough, stream, usage):
    key = provider.script(SCRIPT)
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "time please"}],
        "stream": stream,
        "prompt_cache_key": "session-42",
        "safety_identifier": "user-7",
        "prompt_cache_retention": "24h",
        "a_field_from_tomorrow": {"x": [1, None]},
        "stop": None,
    }
    if stream and usage:
        body["stream_options"] = {"include_usage": True}
    headers = {"x-luthien-script": key, "openai-beta": "assistants=v2"}
    through = post(f"{passthrough}/v1", body, headers)
    direct = post(provider.openai_base, body, headers)
    assert through.status_code == direct.status_code == 200, through.text
    via_gateway, called_directly = provider.requests[-2], provider.requests[-1]
    expected = dict(body)
    if stream and not usage:
        expected["stream_options"] = {"include_usage": True}  # asked for the recording
    assert via_gateway.body == expected
    if not (stream and not usage):
        assert via_gateway.body == called_directly.body
    assert via_gateway.headers["openai-beta"] == "assistants=v2"
    if stream:
        got, want = frames(through.text), frames(direct.text)
        # Passed-through chunks are the upstream's own bytes.
        assert got == want
    else:
        assert {**through.json(), "id": "-", "created": 0} == {
            **direct.json(),
            "id": "-",
            "created": 0,
        }


def test_a_transforming_policy_changes_only_its_chunks(provider):
    key = provider.script(SCRIPT)
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "time please"}]}  # fmt: skip
    policy = StringReplacePolicy(replacements={"OpenAI": "ClosedAI"})
    with serve(create_app(policy, settings=settings(provider))) as url:
        through = post(f"{url}/v1", body, {"x-luthien-script": key})
    direct = post(provider.openai_base, body, {"x-luthien-script": key})
    got = frames(through.text)
    text = "".join(
        json.loads(f[6:])["choices"][0]["delta"].get("content") or ""
        for f in got
        if f != "data: [DONE]" and json.loads(f[6:])["choices"]
    )
    assert text == "ClosedAI is here ☕"
    # The thinking and tool-call chunks are the upstream's own bytes.
    untouched = [f for f in frames(direct.text) if '"content"' not in f or '"tool_calls"' in f]
    assert [f for f in untouched if f in got] == untouched


async def test_openai_sdk_fields_the_gateway_used_to_refuse(provider, passthrough):
    key = provider.script(ScriptedResponse(text="fine"))
    async with openai.AsyncOpenAI(base_url=f"{passthrough}/v1", api_key="k", max_retries=0) as c:
        reply = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            prompt_cache_key="k1",
            safety_identifier="s1",
            extra_body={"prompt_cache_retention": "24h"},
            extra_headers={"x-luthien-script": key},
        )
        models = await c.models.list()
    assert reply.choices[0].message.content == "fine"
    sent = [r.body for r in provider.requests if r.protocol == "openai"][-1]
    assert (sent["prompt_cache_key"], sent["safety_identifier"]) == ("k1", "s1")
    assert sent["prompt_cache_retention"] == "24h"
    assert [m.id for m in models.data]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": 123}]}, "messages.0.content"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": 2}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"tools": 5}, "tools"),
        ({"api_key": "sk-steal"}, "api_key"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_client_mistakes_are_400_naming_the_field(passthrough, body, param):
    full = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]} | body
    response = httpx.post(
        f"{passthrough}/v1/chat/completions",
        content=json.dumps(full).encode(),  # NaN included: Python writes it, JSON parsers read it
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert param in error["message"]


class _EditsInPlace(NoOpPolicy):
    async def on_request(self, request, context):
        request.messages[-1]["content"] += " (edited)"
        request.temperature = 0.25
        return request


class _BuildsANewOne(NoOpPolicy):
    async def on_request(self, request, context):
        messages = [*request.messages, {"role": "user", "content": "and one more"}]
        return request.model_copy(update={"messages": messages})


@pytest.mark.parametrize("policy", [_EditsInPlace(), _BuildsANewOne()], ids=["in place", "new"])
@pytest.mark.parametrize("stream", [True, False])
def test_what_on_request_changes_reaches_the_upstream_and_nothing_else(provider, policy, stream):
    body = {"model": "gpt-4o-mini", "stream": stream, "a_field_from_tomorrow": [1, 2],
            "messages": [{"role": "user", "content": "hello"}]}  # fmt: skip
    with serve(create_app(policy, settings=settings(provider))) as url:
        response = post(f"{url}/v1", body)
    assert response.status_code == 200, response.text
    sent = provider.requests[-1].body
    assert sent["a_field_from_tomorrow"] == [1, 2]
    if isinstance(policy, _EditsInPlace):
        assert sent["messages"] == [{"role": "user", "content": "hello (edited)"}]
        assert sent["temperature"] == 0.25
    else:
        assert sent["messages"][-1] == {"role": "user", "content": "and one more"}
        assert "temperature" not in sent


async def test_the_upstreams_model_list_comes_over_the_gateways_own_connections_closed_with_it(
    provider,
):
    app = create_app(NoOpPolicy(), settings=settings(provider))
    pool = app.state.gateway.plain
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            listed = await client.get("/v1/models")
        session = pool._session
    assert listed.status_code == 200
    upstream = httpx.get(f"{provider.openai_base}/models").json()
    assert [m["id"] for m in listed.json()["data"]] == [m["id"] for m in upstream["data"]]
    # Asked over the gateway's own pool, and closed when the app stopped: none is left
    # for the interpreter's exit to find open.
    assert session is not None and session.closed and pool._session is None
