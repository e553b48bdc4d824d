"""Errors of ``POST /v1/responses``, in OpenAI's format: client mistakes are 400s naming
the field, upstream errors keep the upstream's own body, a stream that breaks after it
started ends with ``response.failed``."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy, Policy
from luthien_lab.errors import RequestRefused
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.provider import ScriptedResponse
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

KEY = "gw-responses-key"


@pytest.fixture(scope="module", params=["native", "chat"])
def gateway(request, provider):
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=request.param)
    app = create_app(NoOpPolicy(), settings=GatewaySettings(upstream=upstream), api_key=KEY)
    with serve(app) as url:
        yield url, request.param


async def post(url, body, headers=None, **kwargs):
    headers = {"authorization": f"Bearer {KEY}", **(headers or {})}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{url}/v1/responses", headers=headers, **({"json": body} | kwargs))


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": 5}, "input"),
        ({"stream": "yes"}, "stream"),
        ({"tools": 5}, "tools"),
        ({"max_output_tokens": -1}, "max_output_tokens"),
        ({"max_output_tokens": "10"}, "max_output_tokens"),
        ({"temperature": True}, "temperature"),
        ({"model": ""}, "model"),
        ({"metadata": {"a": 1}}, "metadata.a"),
        ({"include": [3]}, "include.0"),
        ({"tools": [{"type": "function"}]}, "tools.0.name"),
        ({"tools": ["x"]}, "tools.0"),
        ({"tool_choice": 3}, "tool_choice"),
        ({"input": [5]}, "input.0"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
        ({"input": [{"role": "user", "content": 7}]}, "input.0.content"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
            "input.0.arguments",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
    ],
)
async def test_client_mistakes_are_400s_naming_the_field(gateway, change, param):
    url, _mode = gateway
    response = await post(url, {"model": "gpt-4o", "input": "hi", **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split(".")[0] in error["message"]


async def test_missing_model_and_bad_json(gateway):
    url, _mode = gateway
    missing = await post(url, {"input": "hi"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    broken = await post(
        url, None, content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]["message"]
    listed = await post(url, None, content=b"[1]", headers={"content-type": "application/json"})
    assert listed.status_code == 400


async def test_the_gateway_key_is_required(gateway):
    url, _mode = gateway
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as caught:
            await c.responses.create(model="gpt-4o", input="hi")
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"


async def test_unknown_fields_go_to_a_native_upstream_and_are_refused_for_chat(gateway, provider):
    url, mode = gateway
    response = await post(url, {"model": "gpt-4o", "input": "unknown field", "frobnicate": 1})
    if mode == "native":
        assert response.status_code == 200
        assert provider.requests[-1].body["frobnicate"] == 1
    else:
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "frobnicate"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "status"), [("http_429", 429), ("http_500", None)])
async def test_upstream_errors(gateway, provider, stream, fault, status):
    url, mode = gateway
    prompt = f"fail with {fault} {mode} {stream}"
    provider.add_case(prompt, ScriptedResponse(fault=fault))
    response = await post(url, {"model": "gpt-4o", "input": prompt, "stream": stream})
    error = response.json()["error"]
    assert "local provider fault" in error["message"]
    # The provider's own status and body, as they came (both upstream APIs answer
    # errors in OpenAI's format).
    assert response.status_code == (status or 500)
    assert (error["type"], error["code"]) == (
        ("requests", "rate_limit_exceeded") if status else ("server_error", None)
    )
    assert provider.requests[-1].protocol == ("responses" if mode == "native" else "openai")


async def test_a_stream_that_breaks_ends_with_response_failed(gateway, provider):
    url, mode = gateway
    prompt = f"drop it midway {mode}"
    provider.add_case(
        prompt,
        ScriptedResponse(
            text_chunks=["one ", "two ", "three ", "four"], fault="drop", fault_after=2
        ),
    )
    events = []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            f"{url}/v1/responses",
            json={"model": "gpt-4o", "input": prompt, "stream": True},
            headers={"authorization": f"Bearer {KEY}"},
        ) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["one ", "two "]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["id"] == events[0]["response"]["id"]
    assert [item["status"] for item in failed["output"]] == ["incomplete"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


class Broken(Policy):
    async def on_request(self, request, context):
        raise RuntimeError("policy bug")


async def test_a_policy_error_is_a_500(provider):
    with serve(
        create_app(
            Broken(),
            settings=GatewaySettings(upstream=UpstreamSettings(api_base=provider.openai_base)),
        )
    ) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{url}/v1/responses", json={"model": "gpt-4o", "input": "hi"}
            )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "policy_error"
    assert "policy bug" in response.json()["error"]["message"]


class Refuse(Policy):
    async def on_request(self, request, context):
        raise RequestRefused("Not today.")


@pytest.mark.parametrize("mode", ["native", "chat"])
async def test_a_refused_request_is_a_well_formed_answer(provider, mode):
    upstream = UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
    count = len(provider.requests)
    with serve(create_app(Refuse(), settings=GatewaySettings(upstream=upstream))) as url:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as c:
            whole = await c.responses.create(model="gpt-4o", input="hi", metadata={"k": "v"})
            async with c.responses.stream(model="gpt-4o", input="hi") as s:
                streamed = await s.get_final_response()
    assert len(provider.requests) == count  # nothing went upstream
    for response in (whole, streamed):
        assert response.output_text == "Not today."
        assert response.status == "completed"
        assert response.model == "gpt-4o"
    assert whole.metadata == {"k": "v"}
