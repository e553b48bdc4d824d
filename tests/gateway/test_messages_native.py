"""``/v1/messages`` in front of an Anthropic upstream: what the policy does not change
goes through unchanged, and what it changes comes out well-formed.

The upstream is the local provider's Anthropic protocol; the differential tests send
the same request to the gateway (passthrough policy) and to the provider directly and
compare what each client receives, event by event (message ids aside), and what the
provider received.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anthropic
import httpx
import pytest

from luthien_lab import NoOpPolicy, Policy, Request, SimplePolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import StringReplacePolicy, ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.gateway.anthropic_support import accumulate, check_wellformed, parse_sse, without_ids
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "claude_code"
HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,context-management-2025-06-27",
    "x-api-key": "sk-client",
}


def recorded_requests() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            out.append((f"{path.stem}-{record['seq']}", record))
    return out


def settings(provider) -> GatewaySettings:
    return GatewaySettings(upstream=UpstreamSettings(api_base=provider.url, provider="anthropic"))


@pytest.fixture(scope="module")
def passthrough(provider):
    with serve(create_app(NoOpPolicy(), settings=settings(provider))) as url:
        yield url


def post(url: str, body: dict, headers: dict | None = None, query: str = "") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/messages{query}", json=body, headers=headers or HEADERS, timeout=30
    )


def anthropic_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("anthropic-")}


def last_two(provider):
    """The last two requests the provider received (gateway's, then direct)."""
    return provider.requests[-2], provider.requests[-1]


def differential(provider, url: str, body: dict, headers: dict, query: str = ""):
    through = post(url, body, headers, query)
    direct = post(provider.url, body, headers, query)
    assert through.status_code == direct.status_code == 200, through.text
    via_gateway, called_directly = last_two(provider)
    assert via_gateway.body == called_directly.body == body
    assert anthropic_headers(via_gateway.headers) == anthropic_headers(called_directly.headers)
    return through, direct


@pytest.mark.parametrize(
    ("name", "record"), recorded_requests(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_claude_code_requests_pass_through_unchanged(provider, passthrough, name, record):
    headers = {**record["headers"], "x-api-key": "sk-client"}
    query = "?" + record["path"].split("?", 1)[1] if "?" in record["path"] else ""
    through, direct = differential(provider, passthrough, record["body"], headers, query)
    events = parse_sse(through.text)
    check_wellformed(events)
    assert without_ids(events) == without_ids(parse_sse(direct.text))
    # Every header the client sent under anthropic-* reached the upstream as sent.
    sent = provider.requests[-2].headers
    for key, value in record["headers"].items():
        if key.startswith("anthropic-"):
            assert sent[key] == value


SCRIPTS = {
    "thinking_with_signature": ScriptedResponse(
        thinking="weighing it up", text="The answer is 4.", signature="sig-abc=="
    ),
    "text_and_two_tools": ScriptedResponse(
        text="Running both.",
        tool_calls=[
            ScriptedToolCall(name="Bash", arguments={"command": "ls -la"}),
            ScriptedToolCall(name="Read", arguments={"file_path": "/tmp/x"}),
        ],
        chunk_size=3,
    ),
    "max_tokens": ScriptedResponse(text="cut sh", finish_reason="length"),
    "refusal": ScriptedResponse(refusal="I can't help with that."),
    "multibyte": ScriptedResponse(text_chunks=["caf", "é ☕ ", "日本", "語"]),
    "redacted_thinking": ScriptedResponse(
        thinking="first", redacted_thinking=["EncryptedBlob=="], text="ok"
    ),
    "web_search_with_citations": ScriptedResponse(
        web_search={
            "query": "luthien gateway",
            "results": [{"url": "https://example.com/a", "title": "A", "page_age": "1 day"}],
        },
        text="Luthien is a gateway.",
        citations=[{"url": "https://example.com/a", "cited_text": "a gateway", "title": "A"}],
    ),
    "stop_sequence_and_pings": ScriptedResponse(
        text="one two three", stop_sequence="END", pings=3, chunk_size=4
    ),
}


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_responses_pass_through_unchanged(provider, passthrough, script, stream):
    key = provider.script(SCRIPTS[script])
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 200,
        "stream": stream,
        "messages": [{"role": "user", "content": f"script {script}"}],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "some_future_field": {"nested": [1, 2, {"x": None}]},
    }
    through, direct = differential(
        provider, passthrough, body, {**HEADERS, "x-luthien-script": key}
    )
    if stream:
        events = parse_sse(through.text)
        check_wellformed(events)
        assert without_ids(events) == without_ids(parse_sse(direct.text))
        # Passed-through events are the upstream's own bytes.
        assert through.text.split("\n\n")[1:] == direct.text.split("\n\n")[1:]
    else:
        assert {**through.json(), "id": "-"} == {**direct.json(), "id": "-"}


class RewriteSystem(Policy):
    async def on_request(self, request, context):
        messages = [dict(m) for m in request.messages]
        messages[0] = {"role": "system", "content": "Be terse."}
        return request.model_copy(update={"messages": messages})

    async def on_chunk_received(self, ctx):
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])


def test_a_rewritten_system_prompt_changes_only_that(provider):
    record = recorded_requests()[0][1]
    body = record["body"]
    with serve(create_app(RewriteSystem(), settings=settings(provider))) as url:
        response = post(url, body, {**record["headers"], "x-api-key": "k"}, "?beta=true")
    assert response.status_code == 200
    sent = provider.requests[-1].body
    assert sent["system"] == "Be terse."
    for key in set(body) - {"system"}:
        assert sent[key] == body[key], key


class ShoutInPlace(Policy):
    """Mutates ingress chunks in place (against the rules): the change must still show."""

    async def on_chunk_received(self, ctx):
        chunk = ctx.ingress_state.raw_chunks[-1]
        if chunk.choices and chunk.choices[0].delta.content:
            chunk.choices[0].delta.content = chunk.choices[0].delta.content.upper()
        ctx.egress_queue.put_nowait(chunk)


def test_a_chunk_changed_in_place_is_rebuilt_not_replayed(provider):
    key = provider.script(ScriptedResponse(text="quiet words here"))
    body = {"model": "claude-x", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "speak"}]}  # fmt: skip
    with serve(create_app(ShoutInPlace(), settings=settings(provider))) as url:
        events = parse_sse(post(url, body, {**HEADERS, "x-luthien-script": key}).text)
    check_wellformed(events)
    assert accumulate(events)["content"] == [{"type": "text", "text": "QUIET WORDS HERE"}]


class Identity(SimplePolicy):
    """Transforms nothing, but holds every block back until it completes."""


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("policy", "expect_text", "expect_tools", "stop"),
    [
        (Identity(), "Running both.", ["Bash", "Read"], "tool_use"),
        (
            StringReplacePolicy(replacements={"both": "BOTH"}),
            "Running BOTH.",
            ["Bash", "Read"],
            "tool_use",
        ),
        (ToolFilterPolicy(deny=["Bash"]), "Running both.", ["Read"], "tool_use"),
        (
            ToolFilterPolicy(deny=["Bash", "Read"], blocked_message=" [{name} blocked]"),
            "Running both. [Bash blocked] [Read blocked]",
            [],
            "end_turn",
        ),
    ],
    ids=["identity", "replace", "block-one", "block-all"],
)
def test_policies_on_native_streams(provider, policy, expect_text, expect_tools, stop, stream):
    key = provider.script(SCRIPTS["text_and_two_tools"])
    body = {"model": "claude-x", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "run both"}]}  # fmt: skip
    with serve(create_app(policy, settings=settings(provider))) as url:
        response = post(url, body, {**HEADERS, "x-luthien-script": key})
    assert response.status_code == 200, response.text
    if stream:
        events = parse_sse(response.text)
        check_wellformed(events)
        message = accumulate(events)
    else:
        message = response.json()
    texts = "".join(b["text"] for b in message["content"] if b["type"] == "text")
    tools = [b["name"] for b in message["content"] if b["type"] == "tool_use"]
    assert (texts, tools, message["stop_reason"]) == (expect_text, expect_tools, stop)
    inputs = {b["name"]: b["input"] for b in message["content"] if b["type"] == "tool_use"}
    assert inputs.get("Read", {"file_path": "/tmp/x"}) == {"file_path": "/tmp/x"}


async def test_the_anthropic_sdk_through_the_native_gateway(provider, passthrough):
    provider.add_case(
        "sdk thinking and tools",
        ScriptedResponse(
            thinking="plan", signature="sig-sdk", text="Let me check.",
            tool_calls=[ScriptedToolCall(name="get_time", arguments={"tz": "UTC"})],
        ),
    )  # fmt: skip
    tools = [{"name": "get_time", "description": "time",
              "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}]  # fmt: skip
    kwargs = dict(
        model="claude-opus-5-5",
        max_tokens=1000,
        messages=[{"role": "user", "content": "sdk thinking and tools"}],
        tools=tools,
        tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 500},
    )
    async with anthropic.AsyncAnthropic(base_url=passthrough, api_key="k", max_retries=0) as c:
        async with c.messages.stream(**kwargs) as stream:
            streamed = await stream.get_final_message()
        created = await c.messages.create(**kwargs)
        count = await c.messages.count_tokens(
            model="claude-opus-5-5", messages=kwargs["messages"], tools=tools
        )
        models = await c.models.list()
    for message in (streamed, created):
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
        assert message.content[0].signature == "sig-sdk"
        assert message.content[2].input == {"tz": "UTC"}
        assert message.stop_reason == "tool_use"
    assert count.input_tokens > 0
    assert [m.id for m in models.data]
    # The thinking block goes back with its signature on the next turn, unchanged.
    follow = {
        "model": "claude-opus-5-5",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "sdk thinking and tools"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in created.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": created.content[2].id,
                                          "content": [{"type": "text", "text": "12:00"}]}]},
        ],
    }  # fmt: skip
    response = post(passthrough, follow)
    assert response.status_code == 200
    assert provider.requests[-1].body == follow


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"stream": "false"}, "stream"),
        ({"metadata": "x"}, "metadata"),
        ({"tools": 5}, "tools"),
        ({"messages": []}, "messages"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "\ud800 lone"}]}, "surrogate"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "n": [[[[[[]]]]]] * 1}]}],
          "deep": json.loads("[" * 150 + "]" * 150)}, "nested"),
    ],
    ids=["stream-str", "metadata-str", "tools-int", "no-messages", "max-tokens-str", "role", "surrogate", "deep"],
)  # fmt: skip
def test_client_mistakes_are_400_naming_the_field(passthrough, change, needle):
    body = {"model": "claude-x", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]} | change  # fmt: skip
    response = httpx.post(
        f"{passthrough}/v1/messages",
        content=json.dumps(body).encode(),
        headers={**HEADERS, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def test_routes_and_methods_answer_in_the_api_format(passthrough):
    missing = httpx.get(f"{passthrough}/v1/messages/nope", headers=HEADERS)
    wrong_method = httpx.get(f"{passthrough}/v1/messages", headers=HEADERS)
    openai_missing = httpx.get(f"{passthrough}/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert missing.json()["type"] == "error"
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
    assert openai_missing.status_code == 404
    assert set(openai_missing.json()["error"]) == {"message", "type", "param", "code"}


def test_count_tokens_and_models_are_the_upstreams(provider, passthrough):
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "count these words"}]}
    through = httpx.post(
        f"{passthrough}/v1/messages/count_tokens?beta=true", json=body, headers=HEADERS
    )
    direct = httpx.post(f"{provider.url}/v1/messages/count_tokens", json=body, headers=HEADERS)
    assert through.status_code == 200 and through.json() == direct.json()
    assert provider.requests[-2].body == body
    listed = httpx.get(f"{passthrough}/v1/models", headers=HEADERS)
    assert listed.json() == httpx.get(f"{provider.url}/v1/models", headers=HEADERS).json()
    assert listed.json()["data"][0]["type"] == "model"


@pytest.mark.parametrize("stream", [True, False])
def test_an_upstream_error_reaches_the_client_as_the_upstream_sent_it(
    provider, passthrough, stream
):
    body = {"model": "claude-x", "max_tokens": 10, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    headers = {**HEADERS, "x-luthien-fault": "http_429"}
    through = post(passthrough, body, headers)
    direct = post(provider.url, body, headers)
    assert through.status_code == direct.status_code == 429
    assert through.json() == direct.json()


def test_a_request_for_an_openai_upstream_still_translates(provider):
    """Without an Anthropic upstream the same request is translated, and what has no
    OpenAI form is refused with a 400 naming it."""
    app = create_app(
        NoOpPolicy(),
        settings=GatewaySettings(upstream=UpstreamSettings(api_base=provider.openai_base)),
    )
    body = {"model": "gpt-x", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hello again"}, {"role": "system", "content": "be nice"}],
        "context_management": {"edits": []}, "thinking": {"type": "adaptive"}}  # fmt: skip
    with serve(app) as url:
        ok = post(url, body)
        server_tool = post(
            url, body | {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}
        )
        document = post(url, body | {"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["content"][0]["text"] == "Local echo: hello again"
    sent = provider.requests[-1].body
    assert sent["messages"][1] == {"role": "system", "content": "be nice"}
    assert sent["reasoning_effort"] == "medium" and "context_management" not in sent
    assert server_tool.status_code == 400 and "tools.0" in server_tool.json()["error"]["message"]
    assert document.status_code == 400 and "document" in document.json()["error"]["message"]


def test_requests_are_policy_visible(provider):
    """The policy sees Claude Code's request in the common form, images in tool results
    included, and the fields it does not know by their own names."""
    seen: list[Request] = []

    class Look(NoOpPolicy):
        async def on_request(self, request, context):
            seen.append(request)
            return request

    record = dict(recorded_requests())["image_read-2"]
    with serve(create_app(Look(), settings=settings(provider))) as url:
        assert post(url, record["body"], {**record["headers"], "x-api-key": "k"}).status_code == 200
    request = seen[0]
    assert request.messages[0]["role"] == "system"
    tool_messages = [m for m in request.messages if m["role"] == "tool"]
    assert tool_messages and tool_messages[-1]["content"][0]["type"] == "image_url"
    assert tool_messages[-1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    extra = request.model_extra or {}
    assert extra["context_management"] == record["body"]["context_management"]
    assert extra["thinking"] == record["body"]["thinking"]
    assert [t["function"]["name"] for t in request.tools if t["type"] == "function"]  # type: ignore[attr-defined]


RICH = [
    "thinking_with_signature",
    "redacted_thinking",
    "web_search_with_citations",
    "stop_sequence_and_pings",
]


@pytest.mark.parametrize("script", RICH)
@pytest.mark.parametrize(
    "policy",
    [
        Identity(),
        StringReplacePolicy(replacements={"gateway": "GATEWAY", "one": "1"}),
        ToolFilterPolicy(deny=["x"]),
    ],
    ids=["identity", "replace", "tool-filter"],
)
def test_content_a_policy_cannot_see_is_never_dropped(provider, passthrough, policy, script):
    """Server tool blocks, citations, redacted thinking and signatures survive any
    policy; the stream stays well-formed whatever the policy holds back."""
    key = provider.script(SCRIPTS[script])
    body = {"model": "claude-x", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "rich"}]}  # fmt: skip
    headers = {**HEADERS, "x-luthien-script": key}
    reference = accumulate(parse_sse(post(passthrough, body, headers).text))
    with serve(create_app(policy, settings=settings(provider))) as url:
        events = parse_sse(post(url, body, headers).text)
    check_wellformed(events)
    message = accumulate(events)
    opaque = ("thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result")
    assert [b for b in message["content"] if b["type"] in opaque] == [
        b for b in reference["content"] if b["type"] in opaque
    ]
    text = "".join(b["text"] for b in message["content"] if b["type"] == "text")
    original = "".join(b["text"] for b in reference["content"] if b["type"] == "text")
    expected = policy.replace(original) if isinstance(policy, StringReplacePolicy) else original
    assert text == expected
    citations = [c for b in message["content"] for c in b.get("citations") or []]
    assert citations == [c for b in reference["content"] for c in b.get("citations") or []]
    assert (message["stop_reason"], message.get("stop_sequence")) == (
        reference["stop_reason"],
        reference.get("stop_sequence"),
    )


class DropBash(Policy):
    """Removes the Bash tool from what the model is offered."""

    async def on_request(self, request, context):
        tools = [t for t in request.tools if t.get("function", {}).get("name") != "Bash"]  # type: ignore[attr-defined]
        return request.model_copy(update={"tools": tools})

    async def on_chunk_received(self, ctx):
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])


def test_a_policy_can_rewrite_the_tools_and_only_they_change(provider):
    record = dict(recorded_requests())["all_tools-1"]
    body = record["body"]
    with serve(create_app(DropBash(), settings=settings(provider))) as url:
        assert post(url, body, {**record["headers"], "x-api-key": "k"}).status_code == 200
    sent = provider.requests[-1].body
    assert [t["name"] for t in sent["tools"]] == [
        t["name"] for t in body["tools"] if t["name"] != "Bash"
    ]
    # The tools it kept are the client's own dicts (cache_control and all).
    assert sent["tools"] == [t for t in body["tools"] if t["name"] != "Bash"]
    assert {k: v for k, v in sent.items() if k != "tools"} == {
        k: v for k, v in body.items() if k != "tools"
    }


def test_without_an_anthropic_upstream_tokens_are_counted_locally_and_models_mapped(provider):
    upstream = UpstreamSettings(
        api_base=provider.openai_base, model_map={"claude-opus-5-5": "gpt-4o-mini"}
    )
    app = create_app(NoOpPolicy(), settings=GatewaySettings(upstream=upstream))
    body = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "x " * 400}]}
    with serve(app) as url:
        before = len(provider.requests)
        counted = httpx.post(f"{url}/v1/messages/count_tokens", json=body, headers=HEADERS)
        models = httpx.get(f"{url}/v1/models", headers=HEADERS).json()
        openai_models = httpx.get(f"{url}/v1/models").json()
        one = httpx.get(f"{url}/v1/models/claude-opus-5-5", headers=HEADERS)
        missing = httpx.get(f"{url}/v1/models/nope", headers=HEADERS)
    assert len(provider.requests) == before  # counted here, not upstream
    assert counted.status_code == 200 and 200 <= counted.json()["input_tokens"] <= 300
    assert [m["id"] for m in models["data"]] == ["claude-opus-5-5"]
    assert models["data"][0]["type"] == "model" and models["has_more"] is False
    assert openai_models["object"] == "list" and openai_models["data"][0]["id"] == "claude-opus-5-5"
    assert one.json()["id"] == "claude-opus-5-5"
    assert missing.status_code == 404 and missing.json()["type"] == "error"


def test_the_gateway_imports_litellm_before_it_is_ready(tmp_path):
    """Readiness: the slow import happens in the app's start-up, not on a request."""
    script = (
        "import asyncio, sys\n"
        "from luthien_lab import NoOpPolicy, ScriptedLLMClient\n"
        "from luthien_lab.gateway import create_app\n"
        "app = create_app(NoOpPolicy(), llm_client=ScriptedLLMClient([]))\n"
        "before = 'litellm' in sys.modules\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        print(before, 'litellm' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    import subprocess
    import sys

    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.stdout.split() == ["False", "True"], out.stderr


class HoldAtRandom(Policy):
    """Forwards chunks with no payload at once (as SimplePolicy does with block starts,
    stops and pings) and holds the rest, releasing them in order at random moments:
    whatever the timing, the client must get a well-formed stream with all content."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    async def on_chunk_received(self, ctx):
        import random

        from luthien_lab.streaming.fields import NO_CHOICES, read_chunk, read_delta

        state = ctx.scratchpad.setdefault("hold", {"rng": random.Random(self.seed), "held": []})
        chunk = ctx.ingress_state.raw_chunks[-1]
        _usage, delta, finish = read_chunk(chunk)
        payload = delta is not NO_CHOICES and delta is not None and any(read_delta(delta))
        if payload or finish:
            state["held"].append(chunk)
        else:
            ctx.egress_queue.put_nowait(chunk)
        if state["rng"].random() < 0.3:
            for held in state["held"]:
                ctx.egress_queue.put_nowait(held)
            state["held"].clear()

    async def on_stream_complete(self, ctx):
        for held in ctx.scratchpad.get("hold", {}).get("held", []):
            ctx.egress_queue.put_nowait(held)


@pytest.mark.parametrize("script", ["text_and_two_tools", "web_search_with_citations"])
def test_any_release_timing_gives_a_wellformed_stream(provider, passthrough, script):
    key = provider.script(SCRIPTS[script])
    body = {"model": "claude-x", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "hold"}]}  # fmt: skip
    headers = {**HEADERS, "x-luthien-script": key}
    reference = accumulate(parse_sse(post(passthrough, body, headers).text))

    def summary(message):
        text = "".join(b.get("text", "") for b in message["content"] if b["type"] == "text")
        tools = [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]
        opaque = [
            b
            for b in message["content"]
            if b["type"] in ("server_tool_use", "web_search_tool_result")
        ]
        return text, tools, opaque, message["stop_reason"]

    for seed in range(12):
        with serve(create_app(HoldAtRandom(seed), settings=settings(provider))) as url:
            events = parse_sse(post(url, body, headers).text)
        check_wellformed(events)
        assert summary(accumulate(events)) == summary(reference), seed
