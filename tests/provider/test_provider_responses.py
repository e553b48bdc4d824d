"""The OpenAI Responses API (``POST /v1/responses``) of the local provider, through the
real ``openai`` SDK over HTTP: items, events, state (``previous_response_id``), faults."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from luthien_lab.provider import LocalProvider, ScriptedResponse, ScriptedToolCall, _responses

pytestmark = pytest.mark.timeout(30)

SCRIPT = "x-luthien-script"
FAULT = "x-luthien-fault"


@pytest.fixture
def client(provider):
    """A sync SDK client without retries (a retry would hide a fault) and a short timeout."""
    with openai.OpenAI(
        base_url=provider.openai_base, api_key="sk-local", max_retries=0, timeout=5
    ) as c:
        yield c


def _mine(provider: LocalProvider, key: str):
    return [r for r in provider.requests if r.script_key == key]


def _stream(client, **kwargs):
    """Every event of a streamed response, and the SDK's final response."""
    with client.responses.stream(**kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    return events, final


# -- non-streaming --------------------------------------------------------------------------
def test_text_answer(provider, client):
    script = ScriptedResponse(
        text="Plain answer.", usage={"prompt_tokens": 12, "completion_tokens": 3}
    )
    key = provider.script(script)
    resp = client.responses.create(
        model="gpt-5-mini", input="Say something", extra_headers={SCRIPT: key}
    )
    assert resp.output_text == "Plain answer."
    assert resp.id.startswith("resp_") and resp.object == "response"
    assert resp.status == "completed" and resp.incomplete_details is None
    assert resp.model == "gpt-5-mini"
    [message] = resp.output
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.status == "completed"
    assert [c.model_dump() for c in message.content] == [
        {"type": "output_text", "text": "Plain answer.", "annotations": [], "logprobs": []}
    ]
    usage = resp.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (12, 3, 15)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    [record] = _mine(provider, key)
    assert (record.protocol, record.path, record.stream) == ("responses", "/v1/responses", False)
    assert record.prompt == "Say something" and record.source == "script"


def test_tool_calls_are_function_call_items(provider, client):
    script = ScriptedResponse(
        tool_calls=[
            ScriptedToolCall(name="get_weather", arguments={"city": "Oslo"}, id="call_w"),
            ScriptedToolCall(name="lookup", arguments='{"q": "x"}'),
        ]
    )
    key = provider.script(script)
    resp = client.responses.create(model="m", input="weather?", extra_headers={SCRIPT: key})
    assert [o.type for o in resp.output] == ["function_call", "function_call"]
    first, second = resp.output
    assert (first.name, first.call_id, first.status) == ("get_weather", "call_w", "completed")
    assert json.loads(first.arguments) == {"city": "Oslo"}
    assert first.id and first.id.startswith("fc_")
    assert (second.name, second.arguments) == ("lookup", '{"q": "x"}')
    assert second.call_id == script.tool_call_id(1, "openai")
    assert resp.output_text == ""


def test_reasoning_item_with_encrypted_content(provider, client):
    script = ScriptedResponse(thinking="Think it through.", text="42", signature="sig-abc")
    key = provider.script(script)
    resp = client.responses.create(
        model="o4-mini",
        input="meaning?",
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "high", "summary": "auto"},
        extra_headers={SCRIPT: key},
    )
    assert [o.type for o in resp.output] == ["reasoning", "message"]
    reasoning = resp.output[0]
    assert reasoning.id.startswith("rs_")
    assert [s.model_dump() for s in reasoning.summary] == [
        {"type": "summary_text", "text": "Think it through."}
    ]
    assert reasoning.encrypted_content == "sig-abc"
    assert resp.output_text == "42"
    assert resp.usage.output_tokens_details.reasoning_tokens == 3
    assert (resp.reasoning.effort, resp.reasoning.summary) == ("high", "auto")
    plain = client.responses.create(model="o4-mini", input="meaning?", extra_headers={SCRIPT: key})
    assert plain.output[0].encrypted_content is None
    assert "encrypted_content" not in plain.output[0].model_dump(exclude_unset=True)


def test_refusal_is_a_refusal_part(provider, client):
    key = provider.script(ScriptedResponse(refusal="I can't help with that."))
    resp = client.responses.create(model="m", input="bad", extra_headers={SCRIPT: key})
    [message] = resp.output
    assert [c.model_dump() for c in message.content] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]
    assert resp.output_text == ""


class Weather(BaseModel):
    city: str
    celsius: int


def test_json_output_parsed_by_the_sdk(provider, client):
    key = provider.script(ScriptedResponse(text='{"city": "Oslo", "celsius": -3}'))
    resp = client.responses.parse(
        model="m", input="weather as JSON", text_format=Weather, extra_headers={SCRIPT: key}
    )
    assert resp.output_parsed == Weather(city="Oslo", celsius=-3)
    assert resp.text.format.type == "json_schema"
    assert resp.text.format.name == "Weather"
    sent = _mine(provider, key)[0].body["text"]["format"]
    assert sent["type"] == "json_schema" and sent["schema"]["required"] == ["city", "celsius"]


def test_request_parameters_are_echoed(provider, client):
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": False,
        }
    ]
    key = provider.script("ok")
    resp = client.responses.create(
        model="m",
        input="hi",
        instructions="Be brief.",
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=77,
        metadata={"run": "r1"},
        temperature=0.2,
        extra_headers={SCRIPT: key},
    )
    assert resp.instructions == "Be brief."
    assert [t.model_dump(exclude_unset=True) for t in resp.tools] == tools
    assert resp.tool_choice == "required"
    assert resp.parallel_tool_calls is False
    assert resp.max_output_tokens == 77
    assert resp.metadata == {"run": "r1"}
    assert resp.temperature == 0.2
    assert resp.store is True  # the API default
    assert resp.text.format.type == "text"
    assert resp.previous_response_id is None


def test_length_is_incomplete(provider, client):
    key = provider.script(ScriptedResponse(text="cut sh", finish_reason="length"))
    resp = client.responses.create(model="m", input="long", extra_headers={SCRIPT: key})
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete"
    assert resp.output_text == "cut sh"
    # (the SDK's get_final_response() wants response.completed, so read the events)
    with client.responses.stream(model="m", input="long", extra_headers={SCRIPT: key}) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert "response.completed" not in [e.type for e in events]
    assert final.status == "incomplete" and final.output_text == "cut sh"
    assert final.incomplete_details.reason == "max_output_tokens"


# -- streaming ------------------------------------------------------------------------------
def test_stream_text_events_in_order(provider, client):
    script = ScriptedResponse(
        text_chunks=["Open", "AI rocks"], usage={"prompt_tokens": 5, "completion_tokens": 2}
    )
    key = provider.script(script)
    events, final = _stream(client, model="gpt-5", input="hi", extra_headers={SCRIPT: key})
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    created = events[0].response
    assert (created.status, created.output, created.usage) == ("in_progress", [], None)
    assert events[1].response.status == "in_progress"
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [d.delta for d in deltas] == ["Open", "AI rocks"]
    message_id = events[2].item.id
    assert events[2].item.status == "in_progress" and events[2].item.content == []
    assert {(d.item_id, d.output_index, d.content_index) for d in deltas} == {(message_id, 0, 0)}
    assert all(d.logprobs == [] for d in deltas)
    assert events[6].text == "OpenAI rocks"
    assert events[7].part.text == "OpenAI rocks"
    assert events[8].item.status == "completed"
    completed = events[-1].response
    assert completed.id == created.id and completed.status == "completed"
    assert (completed.usage.input_tokens, completed.usage.output_tokens) == (5, 2)
    assert final.output_text == "OpenAI rocks" and final.id == created.id
    [record] = _mine(provider, key)
    assert record.stream is True and record.protocol == "responses"


def test_stream_reasoning_then_tool_call(provider, client):
    call = ScriptedToolCall(name="f", arguments='{"a": 1}', argument_chunks=['{"a"', ": 1}"])
    script = ScriptedResponse(thinking="hmm, tool", chunk_size=4, tool_calls=[call])
    key = provider.script(script)
    events, final = _stream(
        client,
        model="m",
        input="go",
        include=["reasoning.encrypted_content"],
        extra_headers={SCRIPT: key},
    )
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    thinking = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert thinking == ["hmm,", " too", "l"]
    assert events[7].text == "hmm, tool" and events[8].part.text == "hmm, tool"
    assert events[9].item.encrypted_content == script.thinking_signature()
    added = events[10]
    assert (added.output_index, added.item.arguments, added.item.name) == (1, "", "f")
    args = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert args == ['{"a"', ": 1}"]
    assert events[13].arguments == '{"a": 1}' and events[13].item_id == added.item.id
    assert [o.type for o in final.output] == ["reasoning", "function_call"]
    assert final.output[1].call_id == script.tool_call_id(0, "openai")


def test_stream_refusal_events(provider, client):
    key = provider.script(ScriptedResponse(refusal="No way.", chunk_size=4))
    events, final = _stream(client, model="m", input="x", extra_headers={SCRIPT: key})
    types = [e.type for e in events]
    assert types[3:8] == [
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
    ]
    assert [e.delta for e in events if e.type == "response.refusal.delta"] == ["No w", "ay."]
    assert events[6].refusal == "No way."
    assert final.output[0].content[0].refusal == "No way."


def test_sse_wire_framing(provider):
    """Each event is ``event: <type>`` + ``data: <json>``, on ``/responses`` as well."""
    key = provider.script(ScriptedResponse(text="hi"))
    with httpx.stream(
        "POST",
        f"{provider.url}/responses",
        json={"model": "m", "input": "x", "stream": True},
        headers={SCRIPT: key},
        timeout=5,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    blocks = [b for b in raw.split("\n\n") if b]
    first_line, data_line = blocks[0].split("\n")
    assert first_line == "event: response.created"
    assert json.loads(data_line.removeprefix("data: "))["type"] == "response.created"
    kinds = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    payloads = [json.loads(b.split("\n")[1].removeprefix("data: ")) for b in blocks]
    assert kinds == [p["type"] for p in payloads]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert _mine(provider, key)[0].path == "/responses"


# -- selection, tool round trip, state ------------------------------------------------------
def test_prompt_is_the_last_user_message():
    items = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                {"type": "input_text", "text": "second"},
            ],
        },
    ]
    assert _responses.last_user_prompt(items) == ("second", False)
    assert _responses.last_user_prompt("plain") == ("plain", False)
    tool_end = [*items, {"type": "function_call_output", "call_id": "c", "output": "sunny"}]
    assert _responses.last_user_prompt(tool_end) == ("second", True)
    image_only = [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]
    assert _responses.last_user_prompt(image_only) == ("", False)
    assert _responses.last_user_prompt(None) == ("", False)


def test_case_and_echo_match_the_last_user_message():
    with (
        LocalProvider() as p,
        openai.OpenAI(base_url=p.openai_base, api_key="sk-local", max_retries=0) as c,
    ):
        p.add_case("known prompt", "case answer")
        resp = c.responses.create(
            model="m",
            instructions="system words",
            input=[
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": [{"type": "input_text", "text": "known prompt"}]},
            ],
        )
        assert resp.output_text == "case answer"
        # input words (instructions + every message) are the default input_tokens
        assert resp.usage.input_tokens == 6
        resp = c.responses.create(model="m", input="something else")
        assert resp.output_text == "Local echo: something else"
        assert [(r.source, r.prompt) for r in p.requests] == [
            ("case", "known prompt"),
            ("echo", "something else"),
        ]
        assert resp.usage.input_tokens == 2


def test_tool_round_trip():
    with (
        LocalProvider() as p,
        openai.OpenAI(base_url=p.openai_base, api_key="sk-local", max_retries=0) as c,
    ):
        p.add_case("weather?", {"tool_calls": [{"name": "get_weather", "arguments": {"c": "x"}}]})
        first = c.responses.create(model="m", input="weather?")
        [call] = first.output
        assert call.type == "function_call" and call.name == "get_weather"
        second = c.responses.create(
            model="m",
            input=[
                {"role": "user", "content": "weather?"},
                *[o.model_dump(exclude_none=True) for o in first.output],
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
            ],
        )
        assert second.output_text == "Local echo: tool result received."
        assert (p.requests[-1].source, p.requests[-1].prompt) == ("tool_result", "weather?")


def test_previous_response_id_continues_the_conversation():
    with (
        LocalProvider() as p,
        openai.OpenAI(base_url=p.openai_base, api_key="sk-local", max_retries=0) as c,
    ):
        p.add_case("weather?", {"tool_calls": [{"name": "get_weather", "arguments": {}}]})
        first = c.responses.create(model="m", input="weather?")
        call = first.output[0]
        second = c.responses.create(
            model="m",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        )
        assert second.previous_response_id == first.id
        assert second.output_text == "Local echo: tool result received."
        # the user message came from the kept conversation, not this request's input
        assert (p.requests[-1].source, p.requests[-1].prompt) == ("tool_result", "weather?")
        # chained again: the second response's conversation was kept too
        # (it ends on the assistant's message, so the user's prompt matches its case again)
        third = c.responses.create(model="m", previous_response_id=second.id, input=[])
        assert (p.requests[-1].source, p.requests[-1].prompt) == ("case", "weather?")
        assert [o.type for o in third.output] == ["function_call"]


def test_unknown_previous_response_id_is_400(provider, client):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="m", input="hi", previous_response_id="resp_nope")
    err = info.value
    assert err.status_code == 400
    assert err.code == "previous_response_not_found"
    assert err.param == "previous_response_id"
    assert err.body["message"] == "Previous response with id 'resp_nope' not found."
    assert err.body["type"] == "invalid_request_error"
    assert provider.requests[-1].status == 400


def test_store_false_is_not_kept(provider, client):
    resp = client.responses.create(model="m", input="forget me", store=False)
    assert resp.store is False
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.responses.create(model="m", input="again", previous_response_id=resp.id)
    kept = client.responses.create(model="m", input="keep me", stream=True)
    kept_id = next(iter(kept)).response.id
    kept.close()
    again = client.responses.create(model="m", input="", previous_response_id=kept_id)
    assert again.output_text == "Local echo: keep me"


def test_store_keeps_the_last_responses_only():
    store = _responses.ResponseStore(limit=2)
    for i in range(3):
        store.put(f"resp_{i}", [{"role": "user", "content": str(i)}])
    assert len(store) == 2
    assert store.get("resp_0") is None
    assert store.get("resp_2") == [{"role": "user", "content": "2"}]
    with pytest.raises(_responses.PreviousResponseNotFound):
        _responses.conversation({"previous_response_id": "resp_0"}, store)
    assert _responses.conversation({"previous_response_id": "resp_1", "input": "x"}, store) == [
        {"role": "user", "content": "1"},
        {"role": "user", "content": "x"},
    ]


def test_unknown_request_fields_are_accepted_and_recorded(provider, client):
    key = provider.script("fine")
    resp = client.responses.create(
        model="m",
        input=[
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {"role": "user", "content": "hi"},
        ],
        extra_body={"future_knob": {"level": 3}, "prompt_cache_key": "k1"},
        extra_headers={SCRIPT: key},
    )
    assert resp.output_text == "fine"
    assert resp.prompt_cache_key == "k1"
    [record] = _mine(provider, key)
    assert record.body["future_knob"] == {"level": 3}
    assert record.body["input"][0]["encrypted_content"] == "opaque"
    assert record.prompt == "hi"


# -- faults ---------------------------------------------------------------------------------
TEXT = ScriptedResponse(text="one two three four five six", chunk_size=4)


@pytest.mark.parametrize("stream", [True, False])
def test_http_429_is_rate_limit_error(provider, client, stream):
    key = provider.script(TEXT)
    with pytest.raises(openai.RateLimitError) as info:
        client.responses.create(
            model="m", input="x", stream=stream, extra_headers={SCRIPT: key, FAULT: "http_429"}
        )
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.request_id == f"req_local{_mine(provider, key)[0].index}"
    assert len(_mine(provider, key)) == 1


def test_http_500_is_internal_server_error(provider, client):
    key = provider.script(TEXT)
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(
            model="m", input="x", extra_headers={SCRIPT: key, FAULT: "http_500"}
        )
    assert info.value.status_code == 500
    assert [r.fault for r in _mine(provider, key)] == ["http_500"]


def _deltas_until_error(client, key, fault):
    """The text deltas received before the stream failed, and the error (its type is
    what each fault test asserts)."""
    got: list[str] = []
    try:
        with client.responses.stream(
            model="m", input="x", extra_headers={SCRIPT: key, FAULT: fault}
        ) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    got.append(event.delta)
    except Exception as exc:
        return got, exc
    raise AssertionError(f"the stream survived the fault {fault!r}")


def test_drop_mid_stream(provider, client):
    got, error = _deltas_until_error(client, provider.script(TEXT), "drop;after=2")
    assert got == ["one ", "two "]
    assert isinstance(error, openai.APIConnectionError), repr(error)


def test_malformed_mid_stream(provider, client):
    got, error = _deltas_until_error(client, provider.script(TEXT), "malformed;after=2")
    assert got == ["one ", "two "]
    assert isinstance(error, json.JSONDecodeError), repr(error)


def test_stall_times_out(provider):
    with openai.OpenAI(
        base_url=provider.openai_base, api_key="sk-local", max_retries=0, timeout=1
    ) as c:
        got, error = _deltas_until_error(c, provider.script(TEXT), "stall;after=1;seconds=5")
    assert got == ["one "]
    assert isinstance(error, openai.APITimeoutError), repr(error)


@pytest.mark.parametrize("fault", ["drop", "malformed"])
def test_non_streaming_body_faults(provider, client, fault):
    key = provider.script(TEXT)
    expected = openai.APIConnectionError if fault == "drop" else json.JSONDecodeError
    with pytest.raises(expected):
        client.responses.create(model="m", input="x", extra_headers={SCRIPT: key, FAULT: fault})
    assert len(_mine(provider, key)) == 1


@pytest.mark.parametrize("stream", [True, False])
def test_empty_answer(provider, client, stream):
    key = provider.script(TEXT)
    headers = {SCRIPT: key, FAULT: "empty"}
    if stream:
        events, resp = _stream(client, model="m", input="x", extra_headers=headers)
        assert [e.type for e in events] == [
            "response.created",
            "response.in_progress",
            "response.completed",
        ]
    else:
        resp = client.responses.create(model="m", input="x", extra_headers=headers)
    assert resp.output == [] and resp.output_text == ""
    assert resp.status == "completed" and resp.usage.output_tokens == 0


def test_fault_in_script(provider, client):
    key = provider.script(
        ScriptedResponse(text="abcdef", chunk_size=1, fault="drop", fault_after=3)
    )
    with pytest.raises(openai.APIConnectionError):
        _stream(client, model="m", input="x", extra_headers={SCRIPT: key})
    assert [r.fault for r in _mine(provider, key)] == ["drop"]


def test_tool_call_head_counts_as_content_for_faults(provider, client):
    """``after`` counts a function call's ``output_item.added`` (it carries the name) as
    the other protocols count a tool call's head."""
    script = ScriptedResponse(
        tool_calls=[ScriptedToolCall(name="f", arguments="{}", argument_chunks=["{", "}"])]
    )
    key = provider.script(script)
    seen: list[str] = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.responses.stream(
            model="m", input="x", extra_headers={SCRIPT: key, FAULT: "drop;after=2"}
        ) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert seen[-2:] == ["response.output_item.added", "response.function_call_arguments.delta"]
