"""Whatever a policy does to the stream (pass it, rewrite text, hold blocks back, drop or
change calls, add text of its own), the client gets a well-formed Responses stream
whose ``*.done`` events and final ``response.completed`` say what was streamed."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from luthien_lab import NoOpPolicy, Policy, SimplePolicy, UppercasePolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import ToolFilterPolicy
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from luthien_lab.streaming.chunks import create_text_chunk
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

TOOLS = [
    {"type": "function", "name": name, "parameters": {"type": "object"}}
    for name in ("get_weather", "delete_file")
]
SCRIPTS = {
    "everything": ScriptedResponse(
        thinking="Weighing it up.",
        text="Checking both.",
        tool_calls=[
            ScriptedToolCall(name="delete_file", arguments={"path": "/tmp/x"}),
            ScriptedToolCall(name="get_weather", arguments={"city": "Rome"}),
        ],
        chunk_size=4,
    ),
    "text": ScriptedResponse(text_chunks=["plain ", "answer ", "here"]),
    "calls": ScriptedResponse(
        tool_calls=[ScriptedToolCall(name="get_weather", arguments={"city": "Oslo"})], chunk_size=3
    ),
    "empty": ScriptedResponse(text=""),
}


class HoldText(Policy):
    """Holds the text (and the finish) until the upstream is done: text after calls."""

    async def on_chunk_received(self, ctx):
        chunk = ctx.ingress_state.raw_chunks[-1]
        choice = chunk.choices[0] if chunk.choices else None
        if choice is not None and (choice.delta.content or choice.finish_reason):
            ctx.scratchpad.setdefault("held", []).append(chunk)
        else:
            ctx.egress_queue.put_nowait(chunk)

    async def on_stream_complete(self, ctx):
        for chunk in ctx.scratchpad.get("held", []):
            ctx.egress_queue.put_nowait(chunk)


class Preamble(Policy):
    """Sends a note of its own before anything the upstream said."""

    async def on_chunk_received(self, ctx):
        raw = ctx.ingress_state.raw_chunks
        if len(raw) == 1:
            ctx.egress_queue.put_nowait(create_text_chunk("NOTE. ", raw[0]))
        ctx.egress_queue.put_nowait(raw[-1])

    async def process_full_response(self, response, context):
        response = response.model_copy(deep=True)
        message = response.choices[0].message
        message.content = "NOTE. " + (message.content or "")
        return response


class ChangeArgs(SimplePolicy):
    """Sends every call to Berlin."""

    async def on_response_tool_call(self, tool_call, request):
        changed = tool_call.model_copy(deep=True)
        changed.function.arguments = json.dumps({"city": "Berlin"})
        return changed


class ShoutArgs(Policy):
    """Rewrites each argument fragment as it passes (the call's head goes as it came)."""

    async def on_chunk_received(self, ctx):
        chunk = ctx.ingress_state.raw_chunks[-1]
        calls = chunk.choices[0].delta.tool_calls if chunk.choices else None
        if calls and calls[0].function.arguments:
            chunk = chunk.model_copy(deep=True)
            call = chunk.choices[0].delta.tool_calls[0]
            call.function.arguments = call.function.arguments.upper()
        ctx.egress_queue.put_nowait(chunk)

    async def process_full_response(self, response, context):
        response = response.model_copy(deep=True)
        for call in response.choices[0].message.tool_calls or []:
            call.function.arguments = call.function.arguments.upper()
        return response


def _shout(calls):
    return [(n, {k.upper(): v.upper() for k, v in args.items()}) for n, args in calls]


POLICIES = {
    "shout": (ShoutArgs, lambda text: text, _shout),
    "noop": (NoOpPolicy, lambda text: text, lambda calls: calls),
    "upper": (UppercasePolicy, str.upper, lambda calls: calls),
    "hold": (HoldText, lambda text: text, lambda calls: calls),
    "preamble": (Preamble, lambda text: "NOTE. " + text, lambda calls: calls),
    "args": (
        ChangeArgs,
        lambda text: text,
        lambda calls: [(n, {"city": "Berlin"}) for n, _ in calls],
    ),
    "filter": (
        lambda: ToolFilterPolicy(deny=["delete_file"]),
        lambda text: text,
        lambda calls: [c for c in calls if c[0] != "delete_file"],
    ),
}


def well_formed(events):
    """The stream's structure, and its ``*.done`` events against its deltas; returns the
    final response object."""
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert kinds.count("response.created") == kinds.count("response.in_progress") == 1
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    response_id = events[0]["response"]["id"]
    assert events[-1]["response"]["id"] == response_id
    done_items = []
    current = None  # the output index of the open item
    texts: dict[tuple[int, str, int], str] = {}
    arguments: dict[int, str] = {}
    for event in events[2:-1]:
        kind = event["type"]
        index = event.get("output_index")
        if kind == "response.output_item.added":
            assert current is None, f"item {index} added while {current} is open"
            assert index == len(done_items)
            current, item_id = index, event["item"]["id"]
            continue
        assert index == current, f"{kind} for item {index} while {current} is open"
        if "item_id" in event:
            assert event["item_id"] == item_id
        if kind == "response.output_text.delta":
            key = (index, "text", event["content_index"])
            texts[key] = texts.get(key, "") + event["delta"]
        elif kind == "response.reasoning_summary_text.delta":
            key = (index, "summary", event["summary_index"])
            texts[key] = texts.get(key, "") + event["delta"]
        elif kind == "response.function_call_arguments.delta":
            arguments[index] = arguments.get(index, "") + event["delta"]
        elif kind == "response.output_text.done":
            assert event["text"] == texts.get((index, "text", event["content_index"]), "")
        elif kind == "response.reasoning_summary_text.done":
            assert event["text"] == texts.get((index, "summary", event["summary_index"]), "")
        elif kind == "response.function_call_arguments.done":
            assert event["arguments"] == arguments.get(index, "")
        elif kind == "response.output_item.done":
            item = event["item"]
            assert item["id"] == item_id
            if item["type"] == "message":
                for i, part in enumerate(item["content"]):
                    assert part["text"] == texts.get((index, "text", i), "")
            elif item["type"] == "reasoning":
                for i, part in enumerate(item["summary"]):
                    assert part["text"] == texts.get((index, "summary", i), "")
            elif item["type"] == "function_call":
                assert item["arguments"] == arguments.get(index, "")
            done_items.append(item)
            current = None
    assert current is None
    final = events[-1]["response"]
    assert final["output"] == done_items
    return final


def summary(output):
    """(message text, reasoning text, [(call name, arguments)]) of output items."""
    text = "".join(
        p["text"]
        for i in output
        if i["type"] == "message"
        for p in i["content"]
        if p["type"] == "output_text"
    )
    reasoning = "".join(p["text"] for i in output if i["type"] == "reasoning" for p in i["summary"])
    calls = [
        (i["name"], json.loads(i["arguments"])) for i in output if i["type"] == "function_call"
    ]
    return text, reasoning, calls


@pytest.fixture(scope="module")
def gateways(provider):
    urls = {}
    with serve_all(provider, urls):
        yield urls


class serve_all:
    """Every policy behind a gateway of its own, in both upstream modes."""

    def __init__(self, provider, urls):
        self.provider, self.urls, self.stack = provider, urls, []

    def __enter__(self):
        for name, (make, _text, _calls) in POLICIES.items():
            for mode in ("native", "chat"):
                upstream = UpstreamSettings(api_base=self.provider.openai_base, responses_api=mode)
                server = serve(create_app(make(), settings=GatewaySettings(upstream=upstream)))
                self.urls[(name, mode)] = server.__enter__()
                self.stack.append(server)
        return self

    def __exit__(self, *exc):
        for server in reversed(self.stack):
            server.__exit__(*exc)


@pytest.mark.parametrize("script", list(SCRIPTS))
@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("mode", ["native", "chat"])
async def test_the_stream_is_well_formed(gateways, provider, mode, policy, script):
    url = gateways[(policy, mode)]
    prompt = f"{script} please, {policy} {mode}"  # a chat upstream gets no script header
    provider.add_case(prompt, SCRIPTS[script])
    body = {"model": "gpt-4o", "input": prompt, "tools": TOOLS}
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("POST", f"{url}/v1/responses", json={**body, "stream": True}) as r,
    ):
        assert r.status_code == 200
        events = [
            json.loads(line[6:]) async for line in r.aiter_lines() if line.startswith("data: ")
        ]
    final = well_formed(events)
    scripted = SCRIPTS[script]
    _make, expect_text, expect_calls = POLICIES[policy]
    calls = [(c.name, c.arguments) for c in scripted.tool_calls]
    text, reasoning, streamed_calls = summary(final["output"])
    assert text == expect_text(scripted.full_text())
    assert reasoning == scripted.full_thinking()
    assert streamed_calls == expect_calls(calls)
    assert final["status"] == "completed"
    # The SDK reads the same stream, and the non-streaming answer says the same.
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as c:
        async with c.responses.stream(**body) as s:
            parsed = await s.get_final_response()
        whole = await c.responses.create(**body)
    assert parsed.output_text == text
    assert summary(whole.model_dump()["output"]) == (text, reasoning, streamed_calls)
    if mode == "native" and policy in ("noop", "upper", "filter"):
        # Items the policy left in place keep the upstream's ids.
        assert all(
            i["id"].startswith(("msg_local", "rs_local", "fc_local")) for i in final["output"]
        )
