"""Items the local provider does not send, from a canned Responses upstream: a custom
tool call (Codex's ``apply_patch``), a hosted web search call, encrypted-only reasoning.
A policy sees the custom call as a tool call (and can block or change it); the rest
passes through as the upstream sent it."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from luthien_lab import NoOpPolicy, SimplePolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.policies import ToolFilterPolicy
from tests.gateway.conftest import serve

pytestmark = pytest.mark.timeout(60)

PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
OUTPUT = [
    {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA-opaque"},
    {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "lark grammar"},
    },
    {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Patching now.", "annotations": []}],
    },
    {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "apply_patch",
        "input": PATCH,
    },
]
RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
            "model": "gpt-5.5", "output": OUTPUT, "usage": {"input_tokens": 5, "output_tokens": 9,
            "total_tokens": 14}}  # fmt: skip


def sse_stream():
    """The stream an upstream sends for :data:`RESPONSE`, as bytes."""
    events = []

    def ev(kind, **fields):
        events.append({"type": kind, **fields})

    start = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
    ev("response.created", response=start)
    ev("response.in_progress", response=start)
    for index, item in enumerate(OUTPUT):
        ids = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        added = {**item, "status": "in_progress"} if "status" in item else item
        if kind == "message":
            added = {**added, "content": []}
        if kind == "custom_tool_call":
            added = {**added, "input": ""}
        ev("response.output_item.added", output_index=index, item=added)
        if kind == "web_search_call":
            for step in ("in_progress", "searching", "completed"):
                ev(f"response.web_search_call.{step}", **ids)
        elif kind == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            ev("response.content_part.added", **ids, content_index=0, part=part)
            for piece in ("Patching ", "now."):
                ev("response.output_text.delta", **ids, content_index=0, delta=piece)
            ev("response.output_text.done", **ids, content_index=0, text="Patching now.")
            ev("response.content_part.done", **ids, content_index=0, part=item["content"][0])
        elif kind == "custom_tool_call":
            for piece in (PATCH[:20], PATCH[20:]):
                ev("response.custom_tool_call_input.delta", **ids, delta=piece)
            ev("response.custom_tool_call_input.done", **ids, input=PATCH)
        ev("response.output_item.done", output_index=index, item=item)
    ev("response.completed", response=RESPONSE)
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': i})}\n\n".encode()
        for i, e in enumerate(events)
    )


@pytest.fixture(scope="module")
def upstream():
    app = FastAPI()
    app.state.bodies = []

    @app.post("/v1/responses")
    async def responses(http: Request) -> Response:
        body = await http.json()
        app.state.bodies.append(body)
        if body.get("stream"):
            return Response(sse_stream(), media_type="text/event-stream")
        return JSONResponse(RESPONSE)

    with serve(app) as url:
        yield url, app.state.bodies


class PatchOtherFile(SimplePolicy):
    async def on_response_tool_call(self, tool_call, request):
        changed = tool_call.model_copy(deep=True)
        changed.function.arguments = tool_call.function.arguments.replace("a.txt", "b.txt")
        return changed


async def through(upstream, policy, stream=True):
    settings = GatewaySettings(
        upstream=UpstreamSettings(api_base=f"{upstream[0]}/v1", responses_api="native")
    )
    body = {"model": "gpt-5.5", "input": "patch it", "stream": stream,
            "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "web_search"}]}  # fmt: skip
    with serve(create_app(policy, settings=settings)) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{url}/v1/responses", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        return response.json(), response.content
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]
    return events, response.content


async def test_noop_passes_every_item_as_sent(upstream):
    events, raw = await through(upstream, NoOpPolicy())
    assert raw == sse_stream()
    assert [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"] == [
        "rs_1", "ws_1", "msg_1", "ctc_1",
    ]  # fmt: skip
    whole, _ = await through(upstream, NoOpPolicy(), stream=False)
    assert whole == RESPONSE
    assert upstream[1][-1]["tools"][0] == {"type": "custom", "name": "apply_patch"}


async def test_a_blocked_custom_call_is_gone(upstream):
    events, _raw = await through(upstream, ToolFilterPolicy(deny=["apply_patch"]))
    kinds = [e["type"] for e in events]
    assert not any(k.startswith("response.custom_tool_call_input") for k in kinds)
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["rs_1", "ws_1", "msg_1"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert final["output"] == OUTPUT[:3]  # reasoning, search, message: as the upstream sent them
    assert final["status"] == "completed"
    whole, _ = await through(upstream, ToolFilterPolicy(deny=["apply_patch"]), stream=False)
    assert whole["output"] == OUTPUT[:3]


async def test_a_changed_custom_call_is_rebuilt_as_a_custom_call(upstream):
    events, _raw = await through(upstream, PatchOtherFile())
    changed = PATCH.replace("a.txt", "b.txt")
    deltas = [e for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(e["delta"] for e in deltas) == changed
    assert {e["item_id"] for e in deltas} == {"ctc_1"}  # the upstream's item, rebuilt
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == changed
    final = events[-1]["response"]
    assert final["output"][:3] == OUTPUT[:3]
    assert final["output"][3] == {**OUTPUT[3], "input": changed}
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    whole, _ = await through(upstream, PatchOtherFile(), stream=False)
    assert whole["output"][3] == {**OUTPUT[3], "input": changed}
    assert whole["output"][:3] == OUTPUT[:3]
