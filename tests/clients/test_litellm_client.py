"""``LiteLLMClient`` against the local provider: litellm's real HTTP and parsing code.

The provider is the session's (``tests/conftest.py``); each test picks its answer with
a script key, so tests sharing it never see each other's answers.
"""

from __future__ import annotations

import pytest

from luthien_lab import LiteLLMClient, Request
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall, shared_local_provider
from tests.support import stream_summary, summary

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANSWER = ScriptedResponse(
    text="Let me check the weather.",
    tool_calls=[ScriptedToolCall(name="get_weather", arguments={"city": "Paris"})],
    chunk_size=4,
)
EXPECTED = {
    "text": "Let me check the weather.",
    "tool_calls": [("get_weather", {"city": "Paris"})],
    "finish_reason": "tool_calls",
}


def to_provider(provider, model: str, key: str, fault: str | None = None, **extra) -> Request:
    """A request for ``model`` sent to ``provider`` explicitly, answered by script ``key``
    (with ``fault`` injected, if given)."""
    return Request(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=TOOLS,
        extra_headers=provider.headers(key, fault),
        num_retries=0,
        **provider.litellm_kwargs(model),
        **extra,
    )


def received(provider, key: str):
    return [r for r in provider.requests if r.script_key == key]


@pytest.mark.parametrize("model", MODELS)
async def test_stream_and_complete_through_the_provider(provider, model):
    key = provider.script(ANSWER)
    client = LiteLLMClient()
    req = to_provider(provider, model, key)

    chunks = [chunk async for chunk in client.stream(req)]
    response = await client.complete(req)

    assert stream_summary(chunks) == summary(response) == EXPECTED
    assert len(chunks) > 5, "the text arrives in pieces, as the provider sent it"
    assert type(chunks[0]).__name__ == "ModelResponseStream"
    assert type(response).__name__ == "ModelResponse"
    sent = received(provider, key)
    assert [r.stream for r in sent] == [True, False]
    assert [
        r.body["tools"][0].get("name") or r.body["tools"][0]["function"]["name"] for r in sent
    ] == [
        "get_weather",
        "get_weather",
    ]


async def test_a_stream_asks_for_usage_and_ends_with_it(provider):
    key = provider.script(ScriptedResponse(text="counted"))
    chunks = [
        chunk async for chunk in LiteLLMClient().stream(to_provider(provider, MODELS[0], key))
    ]
    [sent] = received(provider, key)
    assert sent.body["stream_options"] == {"include_usage": True}
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage and usage[-1].completion_tokens > 0


async def test_defaults_fill_what_the_request_leaves_out(provider):
    key = provider.script(ScriptedResponse(text="ok"))
    client = LiteLLMClient(temperature=0.25, max_tokens=99)
    await client.complete(to_provider(provider, MODELS[0], key, max_tokens=7))
    [sent] = received(provider, key)
    assert sent.body["temperature"] == 0.25  # from the client's defaults
    assert sent.body["max_tokens"] == 7  # the request's own value wins


async def test_provider_errors_surface_from_the_client(provider):
    """The client does not map errors (the orchestrator does): litellm's arrive as is."""
    import litellm

    key = provider.script(ScriptedResponse(text="never sent"))
    req = to_provider(provider, MODELS[0], key, fault="http_500")
    with pytest.raises(litellm.InternalServerError):
        await LiteLLMClient().complete(req)
    with pytest.raises(litellm.InternalServerError):
        async for _ in LiteLLMClient().stream(req):
            pass
    assert [r.status for r in received(provider, key)] == [500, 500]


async def test_a_request_without_api_base_goes_to_the_shared_local_provider():
    """``route_local``: offline, a request that names no ``api_base`` reaches the
    process's local provider (``LUTHIEN_LAB_PROVIDER=local`` in tests/conftest.py)."""
    prompt = "tests/clients: routed to the shared provider"
    req = Request(model=MODELS[0], messages=[{"role": "user", "content": prompt}], num_retries=0)
    client = LiteLLMClient()

    assert client.provider_for(req) == "local:openai"
    chunks = [chunk async for chunk in client.stream(req)]
    assert stream_summary(chunks)["text"] == f"Local echo: {prompt}"
    shared = shared_local_provider()
    assert [r.prompt for r in shared.requests if r.prompt == prompt] == [prompt]


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("anthropic/claude-sonnet-4", "anthropic"),
        ("claude-sonnet-4", "anthropic"),
        ("gpt-4o", "openai"),
        ("gemini/gemini-2.0-flash", "gemini"),
    ],
)
def test_provider_names_for_routing_off_and_explicit_targets(model, named):
    req = Request(model=model, messages=[])
    assert LiteLLMClient(route_local=False).provider_for(req) == named
    # an explicit api_base (on the request or in the defaults) is not the local provider
    explicit = Request(model=model, messages=[], api_base="http://127.0.0.1:9/v1")
    assert LiteLLMClient().provider_for(explicit) == named
    assert LiteLLMClient(api_base="http://127.0.0.1:9/v1").provider_for(req) == named
