"""A Responses-capable upstream gets the client's request, and the client the upstream's
answer, as they were: what the policy does not change goes through unchanged."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy, Policy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

# The ids the provider mints differ per request (``resp_local000007``, ``msg_local000007_1``)
# and so may the clock: everything else must be the same, byte for byte.
_IDS = re.compile(rb"\b(resp|msg|rs|fc)_local\d+")
_CLOCK = re.compile(rb'"(created_at|completed_at)": ?\d+')


def normalized(raw: bytes) -> bytes:
    return _CLOCK.sub(rb'"\1": 0', _IDS.sub(rb"\1_ID", raw))


def settings(provider, mode="native"):
    return GatewaySettings(
        upstream=UpstreamSettings(api_base=provider.openai_base, responses_api=mode)
    )


@pytest.fixture(scope="module")
def gateway(provider):
    with serve(create_app(NoOpPolicy(), settings=settings(provider))) as url:
        yield url


def rich_body(prompt):
    """A request using much of the API, unknown fields included."""
    return {
        "model": "gpt-4o",
        "instructions": "You are terse.",
        "input": [
            {"role": "developer", "content": "Answer in English."},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "earlier"}],
            },
            {
                "type": "reasoning",
                "id": "rs_old",
                "summary": [{"type": "summary_text", "text": "thought"}],
                "encrypted_content": "opaque-bytes",
            },
            {
                "type": "message",
                "id": "msg_old",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Sure.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_old",
                "call_id": "call_a",
                "name": "lookup",
                "arguments": "{}",
            },
            {
                "type": "function_call",
                "id": "fc_old2",
                "call_id": "call_b",
                "name": "lookup",
                "arguments": '{"q": 1}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "A"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "B"}],
            },
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "x"},
            },
            {"role": "user", "content": prompt},
        ],
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "parameters": {"type": "object"},
                "strict": True,
            },
            {"type": "web_search"},
            {"type": "custom", "name": "apply_patch", "description": "Patch files"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "low"},
        "metadata": {"run": "r1"},
        "store": False,
        "prompt_cache_key": "k-1",
        "some_future_field": {"nested": [1, 2, 3]},
    }


def script(provider):
    return provider.script(
        ScriptedResponse(
            thinking="Considering.",
            text_chunks=["First ", "then ", "second."],
            tool_calls=[ScriptedToolCall(name="lookup", arguments={"q": "z"})],
            chunk_size=3,
        )
    )


async def post(url, body, headers, stream):
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{url}/responses", json={**body, "stream": stream}, headers=headers
        )
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("stream", [False, True])
async def test_noop_is_transparent(gateway, provider, stream):
    """With NoOpPolicy the upstream gets the client's body, and the client the
    upstream's answer: event by event (ids aside), or the same JSON."""
    body = rich_body(f"differential {stream}")
    headers = provider.headers(script(provider))
    direct = await post(provider.openai_base, body, headers, stream)
    through = await post(f"{gateway}/v1", body, headers, stream)
    sent = provider.requests[-1]
    assert sent.protocol == "responses"
    assert sent.body == {**body, "stream": stream}
    if not stream:
        assert normalized(through.content) == normalized(direct.content)  # the same bytes
        assert through.json()["output"][0]["encrypted_content"]  # asked for with include
        return
    upstream = direct.content.split(b"\n\n")
    client = through.content.split(b"\n\n")
    assert len(client) == len(upstream) > 20
    for ours, theirs in zip(client, upstream, strict=True):
        assert normalized(ours) == normalized(theirs)


async def test_previous_response_id_goes_to_a_native_upstream(gateway, provider):
    provider.add_case("remember 7", ScriptedResponse(text="Noted."))
    async with openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="k", max_retries=0) as c:
        first = await c.responses.create(model="gpt-4o", input="remember 7")
        second = await c.responses.create(
            model="gpt-4o", input="what did I say?", previous_response_id=first.id
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="gpt-4o", input="hi", previous_response_id="resp_nope")
    assert second.previous_response_id == first.id
    sent = [r for r in provider.requests if r.prompt == "what did I say?"][-1]
    assert sent.body["previous_response_id"] == first.id
    assert second.output_text == "Local echo: what did I say?"
    # The upstream's own error body, as it came.
    assert caught.value.body["param"] == "previous_response_id"
    assert caught.value.body["code"] == "previous_response_not_found"


@pytest.mark.parametrize("stream", [False, True])
async def test_previous_response_id_with_a_chat_upstream_is_a_400(provider, stream):
    with serve(create_app(NoOpPolicy(), settings=settings(provider, "chat"))) as url:
        count = len(provider.requests)
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{url}/v1/responses",
                json={
                    "model": "gpt-4o",
                    "input": "hi",
                    "previous_response_id": "resp_1",
                    "stream": stream,
                },
            )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "previous_response_id"
    assert error["type"] == "invalid_request_error"
    assert "previous_response_id" in error["message"] and "input" in error["message"]
    assert len(provider.requests) == count  # nothing went upstream


class EditingPolicy(Policy):
    """Changes the last user message, the instructions and two parameters (one under
    its chat name), and passes the response through."""

    async def on_request(self, request, context):
        request = request.model_copy(deep=True)
        request.messages[-1]["content"] = "EDITED " + request.messages[-1]["content"]
        request.messages[0]["content"] = "You are verbose."
        request.temperature = 0.1
        request.max_tokens = 33
        return request

    async def on_chunk_received(self, ctx):
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])


async def test_a_policy_change_reaches_the_upstream_and_only_it(provider):
    body = rich_body("edit me")
    with serve(create_app(EditingPolicy(), settings=settings(provider))) as url:
        await post(f"{url}/v1", body, None, False)
    sent = [r for r in provider.requests if r.prompt == "EDITED edit me"][-1].body
    assert sent["input"][:-1] == body["input"][:-1]  # every item the policy left alone
    assert sent["input"][-1] == {"type": "message", "role": "user", "content": "EDITED edit me"}
    assert sent["instructions"] == "You are verbose."
    assert (sent["temperature"], sent["max_output_tokens"]) == (0.1, 33)
    assert "max_tokens" not in sent
    rest = {k: v for k, v in body.items() if k not in ("input", "instructions")}
    assert {k: sent[k] for k in rest} == rest
