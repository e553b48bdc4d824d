"""The richer Anthropic Messages surface, checked with the anthropic SDK itself: redacted
thinking, web search (server tool use + result), citations, stop sequences, pings; the
request shapes Claude Code sends; ``count_tokens``, ``models`` and error routes."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from luthien_lab.provider import (
    LocalProvider,
    ScriptedCitation,
    ScriptedResponse,
    ScriptedSearchResult,
    ScriptedWebSearch,
    local_provider,
)

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]

RICH = ScriptedResponse(
    thinking="The user wants the weather.",
    signature="sig-fixed",
    redacted_thinking=["RedactedOne==", "RedactedTwo=="],
    web_search=ScriptedWebSearch(
        query="paris weather",
        results=[
            ScriptedSearchResult(url="https://w.example/paris", title="Paris", page_age="1 day"),
            ScriptedSearchResult(
                url="https://w.example/fr", title="France", encrypted_content="E2"
            ),
        ],
    ),
    citations=[
        ScriptedCitation(url="https://w.example/paris", title="Paris", cited_text="Sunny, 21C"),
        ScriptedCitation(url="https://w.example/fr", cited_text="Mild", encrypted_index="I2"),
    ],
    text="It is sunny and 21C in Paris.",
    chunk_size=6,
)


def client(p: LocalProvider, key: str | None = None) -> anthropic.Anthropic:
    headers = {"x-luthien-script": key} if key else None
    return anthropic.Anthropic(
        base_url=p.url, api_key="sk-local", default_headers=headers, max_retries=0, timeout=10
    )


def sse_events(text: str) -> list[tuple[str, dict]]:
    """``(event name, data)`` of every SSE event of a raw body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def check_rich_content(message) -> None:
    """Every block of RICH, as the SDK parsed it (streamed or not)."""
    kinds = [b.type for b in message.content]
    assert kinds == [
        "thinking",
        "redacted_thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    thinking, red1, red2, use, result, text = message.content
    assert (thinking.thinking, thinking.signature) == ("The user wants the weather.", "sig-fixed")
    assert [red1.data, red2.data] == ["RedactedOne==", "RedactedTwo=="]
    assert isinstance(use, anthropic.types.ServerToolUseBlock)
    assert use.name == "web_search" and use.input == {"query": "paris weather"}
    assert use.id.startswith("srvtoolu_") and len(use.id) > len("srvtoolu_")
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert result.tool_use_id == use.id
    first, second = result.content
    assert isinstance(first, anthropic.types.WebSearchResultBlock)
    assert (first.url, first.title, first.page_age) == ("https://w.example/paris", "Paris", "1 day")
    assert first.encrypted_content.startswith("enc-local-")
    assert (second.title, second.page_age, second.encrypted_content) == ("France", None, "E2")
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "It is sunny and 21C in Paris."
    c1, c2 = text.citations
    assert isinstance(c1, anthropic.types.CitationsWebSearchResultLocation)
    assert (c1.type, c1.url, c1.title, c1.cited_text) == (
        "web_search_result_location",
        "https://w.example/paris",
        "Paris",
        "Sunny, 21C",
    )
    assert c1.encrypted_index.startswith("idx-local-")
    assert (c2.title, c2.cited_text, c2.encrypted_index) == (None, "Mild", "I2")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.server_tool_use.web_search_requests == 1


def test_rich_stream_through_the_sdk(provider):
    key = provider.script(RICH)
    with client(provider, key).messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    check_rich_content(message)
    assert kinds.count("citation") == 2  # the SDK's own event per citations_delta
    assert kinds.count("text") == 5  # 29 characters in chunks of 6


def test_rich_json_through_the_sdk(provider):
    key = provider.script(RICH)
    message = client(provider, key).messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
    )
    check_rich_content(message)


def test_stream_event_shapes_on_the_wire(provider):
    key = provider.script(RICH)
    r = httpx.post(
        f"{provider.url}/v1/messages",
        json={"model": "claude", "messages": MESSAGES, "stream": True, "max_tokens": 5},
        headers={"x-luthien-script": key},
    )
    events = sse_events(r.text)
    starts = [d["content_block"] for e, d in events if e == "content_block_start"]
    # whole blocks in their start event; streamed blocks start empty
    assert starts[1] == {"type": "redacted_thinking", "data": "RedactedOne=="}
    assert starts[3] == {
        "type": "server_tool_use",
        "id": starts[4]["tool_use_id"],
        "name": "web_search",
        "input": {},
    }
    assert starts[4]["content"][1] == {
        "type": "web_search_result",
        "url": "https://w.example/fr",
        "title": "France",
        "encrypted_content": "E2",
        "page_age": None,
    }
    assert starts[5] == {"type": "text", "text": "", "citations": []}
    redacted = [i for i, (e, d) in enumerate(events) if d.get("index") == 1]
    assert [events[i][0] for i in redacted] == ["content_block_start", "content_block_stop"]
    use_json = "".join(
        d["delta"]["partial_json"]
        for e, d in events
        if e == "content_block_delta" and d["index"] == 3
    )
    assert json.loads(use_json) == {"query": "paris weather"}
    text_deltas = [d["delta"] for e, d in events if e == "content_block_delta" and d["index"] == 5]
    # citations first, then the text
    assert [d["type"] for d in text_deltas] == ["citations_delta"] * 2 + ["text_delta"] * 5
    assert text_deltas[1]["citation"] == {
        "type": "web_search_result_location",
        "cited_text": "Mild",
        "url": "https://w.example/fr",
        "title": None,
        "encrypted_index": "I2",
    }
    final = next(d for e, d in events if e == "message_delta")
    assert final["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}


def test_web_search_ids_are_deterministic_and_overridable(provider):
    search = {"query": "q", "results": [{"url": "https://u.example", "title": "U"}]}
    ids = []
    for script in (
        {"web_search": search, "text": "a"},
        {"web_search": search, "text": "b"},
        {"web_search": {**search, "id": "srvtoolu_mine"}, "text": "c"},
    ):
        message = client(provider, provider.script(script)).messages.create(
            model="claude", max_tokens=5, messages=MESSAGES
        )
        ids.append(message.content[0].id)
        assert message.content[1].tool_use_id == message.content[0].id
    assert ids[0] == ids[1] != ids[2] == "srvtoolu_mine"


def test_citations_need_text():
    with pytest.raises(ValueError, match="citations need text"):
        ScriptedResponse(citations=[{"url": "https://u.example", "cited_text": "x"}])


@pytest.mark.parametrize("stream", [True, False])
def test_stop_sequence(provider, stream):
    key = provider.script(ScriptedResponse(text="Counting: 1, 2", stop_sequence="3"))
    c = client(provider, key)
    kwargs = {"model": "claude", "max_tokens": 10, "messages": MESSAGES, "stop_sequences": ["3"]}
    if stream:
        with c.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = c.messages.create(**kwargs)
    assert message.content[0].text == "Counting: 1, 2"
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "3")


def test_stop_sequence_needs_no_explicit_sequence_for_the_reason(provider):
    key = provider.script(ScriptedResponse(text="x", finish_reason="stop_sequence"))
    message = client(provider, key).messages.create(model="c", max_tokens=5, messages=MESSAGES)
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", None)


@pytest.mark.parametrize("pings", [0, 1, 3, 40])
def test_extra_pings_between_content_events(provider, pings):
    key = provider.script(ScriptedResponse(thinking="think", text="abcdefghij", pings=pings))
    r = httpx.post(
        f"{provider.url}/v1/messages",
        json={"model": "claude", "messages": MESSAGES, "stream": True},
        headers={"x-luthien-script": key},
    )
    names = [e for e, _ in sse_events(r.text)]
    assert names.count("ping") == 1 + pings
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    inner = names[2:-2]
    assert inner[0] != "ping" and inner[-1] != "ping"  # between content events only
    assert [n for n in inner if n != "ping"] == [
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop",
    ]  # fmt: skip
    # and the SDK takes them in its stride
    with client(provider, key).messages.stream(
        model="claude", max_tokens=5, messages=MESSAGES
    ) as s:
        assert s.get_final_text() == "abcdefghij"


def test_openai_protocol_renders_the_equivalents_and_skips_the_rest(provider):
    script = RICH.model_copy(update={"stop_sequence": "END", "pings": 2})
    key = provider.script(script)
    oa = openai.OpenAI(base_url=provider.openai_base, api_key="sk-local", max_retries=0)
    stream = oa.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-luthien-script": key},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is sunny and 21C in Paris."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    raw = httpx.post(
        f"{provider.openai_base}/chat/completions",
        json={"model": "m", "messages": MESSAGES},
        headers={"x-luthien-script": key},
    ).json()
    message = raw["choices"][0]["message"]
    assert message["content"] == "It is sunny and 21C in Paris."
    assert message["reasoning_content"] == "The user wants the weather."
    assert raw["choices"][0]["finish_reason"] == "stop"
    for absent in ("Redacted", "srvtoolu_", "web_search", "citation"):
        assert absent not in json.dumps(raw)


# -- requests -------------------------------------------------------------------------
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
DOCUMENT = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "A plain text document."},
    "title": "Notes",
}
TOOLS = [
    {
        "name": "Bash",
        "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
]
CONVERSATION = [
    {
        "role": "user",
        "content": [{"type": "text", "text": "Describe these files"}, IMAGE, DOCUMENT],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": [{"type": "text", "text": "a.png b.txt"}, IMAGE],
            }
        ],
    },
]
SYSTEM = [
    {"type": "text", "text": "You are Claude Code."},
    {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
]


def test_claude_code_shaped_request_is_accepted_and_recorded():
    with local_provider() as p:
        c = client(p)
        message = c.beta.messages.create(  # POST /v1/messages?beta=true
            model="claude-sonnet-4-6",
            max_tokens=100,
            system=SYSTEM,
            messages=CONVERSATION,
            tools=TOOLS,
            metadata={"user_id": "u1"},
            extra_body={"context_management": {"edits": []}, "some_future_field": {"x": 1}},
            betas=["interleaved-thinking-2025-05-14"],
        )
        assert message.content[0].text == "Local echo: tool result received."
        (record,) = p.requests
        assert (record.path, record.protocol, record.status) == ("/v1/messages", "anthropic", 200)
        assert record.prompt == "Describe these files"
        assert record.body["some_future_field"] == {"x": 1}
        assert record.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
        assert [a["type"] for a in record.attachments()] == ["image", "document", "image"]
        assert record.system_text() == "You are Claude Code.\nBe terse."
        assert record.last_tool_result() == ("Bash", "a.png b.txt\n[image]")
        assert record.ends_with_tool_result() and record.offered_tools() == ["Bash"]


def test_system_as_a_string_and_stream_with_beta(provider):
    with client(provider).beta.messages.stream(
        model="claude", max_tokens=10, system="Be terse.", messages=MESSAGES
    ) as s:
        assert s.get_final_text() == "Local echo: What is the weather in Paris?"
    assert provider.requests[-1].system_text() == "Be terse."


# -- count_tokens, models, errors -----------------------------------------------------
def test_count_tokens(provider):
    c = client(provider)
    plain = c.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "a b c"}])
    assert plain.input_tokens == 3
    # system 4+2 words; messages: 3 (text) + 1 (text) + 1 (tool_use input JSON) + 2 (tool
    # result text), images and documents 0; tools: 129 characters of compact JSON // 4
    full = c.beta.messages.count_tokens(
        model="claude", system=SYSTEM, messages=CONVERSATION, tools=TOOLS
    )
    assert full.input_tokens == (4 + 2) + (3 + 1 + 1 + 2) + 129 // 4 == 45
    record = provider.requests[-1]
    assert (record.path, record.protocol, record.source) == (
        "/v1/messages/count_tokens",
        "anthropic",
        "count_tokens",
    )


@pytest.mark.parametrize(
    "body", [{"messages": MESSAGES}, {"model": "claude"}, {"model": "claude", "messages": []}]
)
def test_count_tokens_requires_model_and_messages(provider, body):
    r = httpx.post(f"{provider.url}/v1/messages/count_tokens?beta=true", json=body)
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_models_in_both_formats(provider):
    page = client(provider).models.list()
    ids = [m.id for m in page.data]
    assert ids == ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"]
    assert page.data[0].display_name == "Claude Sonnet 4.6"
    assert page.data[0].created_at.year == 2025 and page.data[0].type == "model"
    raw = httpx.get(f"{provider.url}/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert raw.json()["has_more"] is False
    assert (raw.json()["first_id"], raw.json()["last_id"]) == (ids[0], ids[-1])
    one = client(provider).models.retrieve("claude-3-5-haiku-20241022")
    assert (one.id, one.display_name) == ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku 20241022")
    oa = openai.OpenAI(base_url=provider.openai_base, api_key="sk-local", max_retries=0)
    assert [m.id for m in oa.models.list()] == ["gpt-4o-mini", "claude-sonnet-4-5"]
    got = oa.models.retrieve("gpt-4o")
    assert (got.id, got.object, got.owned_by) == ("gpt-4o", "model", "luthien-local")


@pytest.mark.parametrize(
    ("method", "path", "anthropic_header", "status", "fmt"),
    [
        ("GET", "/v1/messages", False, 405, "anthropic"),
        ("GET", "/v1/messages/count_tokens", False, 405, "anthropic"),
        ("POST", "/v1/messages/batches/x", False, 404, "anthropic"),
        ("POST", "/v1/models", True, 405, "anthropic"),
        ("POST", "/v1/models", False, 405, "openai"),
        ("GET", "/v1/chat/completions", False, 405, "openai"),
        ("GET", "/v1/nowhere", False, 404, "openai"),
        ("GET", "/v1/nowhere", True, 404, "anthropic"),
    ],
)
def test_error_routes_answer_in_the_protocol_format(
    provider, method, path, anthropic_header, status, fmt
):
    headers = {"anthropic-version": "2023-06-01"} if anthropic_header else {}
    r = httpx.request(method, f"{provider.url}{path}", headers=headers, json={})
    assert r.status_code == status
    body = r.json()
    if fmt == "anthropic":
        expected = "not_found_error" if status == 404 else "invalid_request_error"
        assert body["type"] == "error" and body["error"]["type"] == expected
    else:
        assert set(body) == {"error"} and "type" not in body
        assert body["error"]["message"]


def test_sdk_raises_typed_errors_on_error_routes(provider):
    c = client(provider)
    with pytest.raises(anthropic.NotFoundError):
        c.get("/v1/messages/batches/nope", cast_to=object)
    with pytest.raises(anthropic.BadRequestError):
        c.messages.count_tokens(model="", messages=MESSAGES)
