"""The seed's phase-6 matrix, end to end with nothing mocked:

LiteLLMClient -> litellm -> HTTP -> local provider -> PolicyOrchestrator, for
{OpenAI, Anthropic} x {streaming, non-streaming} x {text, tool calls} x
{passthrough, uppercase}; then every provider fault.
"""

from __future__ import annotations

import asyncio

import pytest

from luthien_lab import (
    LiteLLMClient,
    NoOpPolicy,
    PolicyOrchestrator,
    Request,
    UppercasePolicy,
    UpstreamError,
    UpstreamTimeoutError,
)
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from tests.support import run_stream, stream_summary, summary

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} for a place",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("get_weather", "get_time")
]
ANSWERS = {
    "text": ScriptedResponse(
        text="Hello from the local provider: OpenAI and Anthropic both stream, naïve café 日本.",
        chunk_size=6,
    ),
    "tools": ScriptedResponse(
        text="Let me check both.",
        tool_calls=[
            ScriptedToolCall(name="get_weather", arguments={"city": "Paris"}),
            ScriptedToolCall(name="get_time", arguments={"city": "Tōkyō"}),
        ],
        chunk_size=5,
    ),
}


def make_request(provider, protocol: str, kind: str, stream: bool, key: str) -> Request:
    model = MODELS[protocol]
    extra = {"tools": TOOLS} if kind == "tools" else {}
    return Request(
        model=model,
        messages=[{"role": "user", "content": f"matrix {protocol} {kind}"}],
        stream=stream,
        api_base=provider.openai_base if protocol == "openai" else provider.anthropic_base,
        api_key="sk-local",
        extra_headers={"x-luthien-script": key},
        num_retries=0,
        max_tokens=256,
        **extra,
    )


def expected(kind: str, uppercase: bool) -> dict:
    answer = ANSWERS[kind]
    text = answer.full_text()
    return {
        "text": text.upper() if uppercase else text,
        "tool_calls": [(call.name, call.arguments_dict()) for call in answer.tool_calls],
        "finish_reason": "tool_calls" if answer.tool_calls else "stop",
    }


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy_name", ["passthrough", "uppercase"])
@pytest.mark.parametrize("kind", ["text", "tools"])
@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "non-streaming"])
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_matrix(provider, protocol, stream, kind, policy_name):
    policy = UppercasePolicy() if policy_name == "uppercase" else NoOpPolicy()
    key = provider.script(ANSWERS[kind])
    request = make_request(provider, protocol, kind, stream, key)
    orchestrator = PolicyOrchestrator(policy, LiteLLMClient())
    if stream:
        result = stream_summary(await run_stream(orchestrator, request))
    else:
        result = summary(await orchestrator.process_full_response(request))
    assert result == expected(kind, policy_name == "uppercase")
    sent = [r for r in provider.requests if r.headers.get("x-luthien-script") == key]
    assert len(sent) == 1, "exactly one upstream call, no hidden retry"


FAULTS = ["http_429", "http_500", "drop", "malformed", "stall", "empty"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "non-streaming"])
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_faults_end_cleanly_with_a_clear_error(provider, protocol, fault, stream):
    spec = f"{fault};seconds=5" if fault == "stall" else fault
    key = provider.script(ScriptedResponse(text="one two three four five six", chunk_size=3))
    request = make_request(provider, protocol, "text", stream, key)
    request.extra_headers["x-luthien-fault"] = spec
    request.timeout = 10
    orchestrator = PolicyOrchestrator(NoOpPolicy(), LiteLLMClient(), chunk_timeout=1.0)
    tasks_before = asyncio.all_tasks()
    tx = f"tx-{protocol}-{fault}-{stream}"
    try:
        if stream:
            async for _chunk in orchestrator.process_streaming_response(request, tx):
                pass
        else:
            await orchestrator.process_full_response(request, tx)
    except UpstreamError as error:
        message = str(error)
        assert tx in message, message
        assert protocol in message, message
        if fault == "stall":
            assert isinstance(error, UpstreamTimeoutError) or "timeout" in message.lower()
    else:
        # Only an empty answer may come back without an error: litellm reports an
        # empty stream as an empty response.
        assert fault == "empty", f"{fault} should have raised"
    await assert_no_task_left(tasks_before)


async def assert_no_task_left(before: set) -> None:
    """Every task the transaction started has ended. litellm leaves generator
    finalisers (``aclose`` tasks the event loop schedules) that end on their own
    within a few loop turns: allow them a moment, then insist."""
    allowed = before | {asyncio.current_task()}

    def left() -> set:
        # litellm starts one logging worker per event loop on its first call: it is
        # litellm's, lives as long as the loop, and belongs to no transaction.
        return {
            task
            for task in asyncio.all_tasks() - allowed
            if "LoggingWorker" not in repr(task.get_coro())
        }

    for _ in range(50):
        if not left():
            return
        await asyncio.sleep(0.01)
    assert not left()
