"""The policy's view of a Responses request, what goes back upstream when the policy
changes it (only what it changed), the chat translation, and which upstream serves it."""

from __future__ import annotations

import copy

import pytest

from luthien_lab.gateway import UpstreamSettings
from luthien_lab.gateway._errors import GatewayError
from luthien_lab.gateway._responses_chat import chat_request
from luthien_lab.gateway._responses_request import native_body, native_view
from luthien_lab.gateway._responses_upstream import ResponsesNativeClient
from luthien_lab.gateway._upstream import build_upstream
from luthien_lab.gateway._wire import WireContext
from luthien_lab.request import Request

REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"}
BODY = {
    "model": "gpt-4o",
    "instructions": "Be terse.",
    "input": [
        {"role": "developer", "content": "Rules."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "file_id": "file_1"},
        ]},
        REASONING,
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "ls", "arguments": "{}"},
        {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "cat", "arguments": '{"f": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a b"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "x"}]},
        {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "c3", "output": "ok"},
        {"type": "item_reference", "id": "ref_1"},
        {"role": "user", "content": "now?"},
    ],
    "tools": [
        {"type": "function", "name": "ls", "parameters": {"type": "object"}, "strict": True},
        {"type": "custom", "name": "apply_patch"},
    ],
    "max_output_tokens": 100,
    "reasoning": {"effort": "low"},
    "include": ["reasoning.encrypted_content"],
    "future_field": [1],
}  # fmt: skip


def bound(body=BODY):
    """The policy's request for ``body``, bound to it as the dialect binds it."""
    view, extra = native_view(body, "openai/gpt-4o")
    request = Request(**view)
    snapshot = request.model_dump()
    extra.update(view_messages=snapshot["messages"], prefix="openai")
    request._wire = WireContext("responses", body, {}, snapshot, extra=extra)
    return request


def sent(request):
    return native_body(request._wire, request.model_dump(exclude_none=False), "openai")


def test_the_view():
    request = bound()
    messages = request.messages
    assert messages[0] == {"role": "system", "content": "Be terse."}
    assert messages[1] == {"role": "developer", "content": "Rules."}
    assert messages[2]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "file", "file": {"file_id": "file_1"}},
    ]
    assistant = messages[3]  # reasoning, message and both calls: one assistant message
    assert assistant["thinking_blocks"] == [REASONING]
    assert assistant["content"] == [{"type": "text", "text": "Checking.", "annotations": []}]
    assert assistant["id"] == "msg_1"
    assert [c["function"] for c in assistant["tool_calls"]] == [
        {"name": "ls", "arguments": "{}"},
        {"name": "cat", "arguments": '{"f": 1}'},
    ]
    assert (
        assistant["tool_calls"][0]["id"] == "c1" and assistant["tool_calls"][0]["item_id"] == "fc_1"
    )
    assert messages[4] == {"role": "tool", "tool_call_id": "c1", "content": "a b"}
    assert messages[5]["content"] == [{"type": "text", "text": "x"}]
    assert messages[6]["tool_calls"][0]["native_type"] == "custom_tool_call"
    assert messages[6]["tool_calls"][0]["function"] == {
        "name": "apply_patch",
        "arguments": "*** Begin",
    }
    assert messages[7]["native_type"] == "custom_tool_call_output"
    assert messages[8] == {"role": "user", "content": [{"type": "item_reference", "id": "ref_1"}]}
    assert messages[9] == {"role": "user", "content": "now?"}
    assert request.tools[0] == {
        "type": "function",
        "function": {"name": "ls", "parameters": {"type": "object"}, "strict": True},
    }
    assert request.tools[1] == {"type": "custom", "name": "apply_patch"}
    extras = request.model_dump()
    assert (extras["max_output_tokens"], extras["reasoning"], extras["future_field"]) == (
        100,
        {"effort": "low"},
        [1],
    )
    assert request.model == "openai/gpt-4o"


def test_nothing_changed_is_the_clients_body():
    request = bound()
    assert sent(request) == BODY
    assert sent(bound({"model": "openai/gpt-4o", "input": "hi"})) == {
        "model": "gpt-4o",
        "input": "hi",
    }


def test_only_the_changed_messages_are_rebuilt():
    request = bound()
    request.messages[3]["content"] = "Checking, carefully."
    del request.messages[5]  # the second tool output
    request.messages.append({"role": "user", "content": [{"type": "text", "text": "and?"}]})
    body = sent(request)
    items = body["input"]
    assert items[:2] == BODY["input"][:2]
    # the assistant run: its reasoning as it was, the text rebuilt, the calls as they were
    assert items[2] is REASONING or items[2] == REASONING
    assert items[3] == {
        "type": "message", "role": "assistant", "content": "Checking, carefully.",
        "id": "msg_1", "status": "completed",
    }  # fmt: skip
    assert items[4:6] == BODY["input"][4:6]
    assert items[6] == BODY["input"][6]
    assert items[7:11] == BODY["input"][8:12]
    assert items[11] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "and?"}],
    }
    assert {k: v for k, v in body.items() if k != "input"} == {
        k: v for k, v in BODY.items() if k != "input"
    }


def test_instructions_and_parts_back():
    request = bound()
    request.messages[0]["content"] = "Be kind."
    request.messages[2]["content"][0]["text"] = "LOOK"
    assert sent(request)["instructions"] == "Be kind."
    assert sent(request)["input"][1]["content"] == [
        {"type": "input_text", "text": "LOOK"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        {"type": "input_file", "file_id": "file_1"},
    ]
    del request.messages[0]
    assert "instructions" not in sent(request)
    plain = bound({"model": "gpt-4o", "input": "hi"})
    plain.messages.insert(0, {"role": "system", "content": "Added."})
    assert sent(plain)["input"] == [
        {"type": "message", "role": "system", "content": "Added."},
        {"role": "user", "content": "hi"},
    ]
    assert "instructions" not in sent(plain)


def test_tools_and_parameters_under_their_chat_names():
    request = bound()
    request.tools = [
        request.tools[1],
        {"type": "function", "function": {"name": "grep", "parameters": {"type": "object"}}},
    ]
    request.max_tokens = 10
    request.reasoning_effort = "high"
    request.response_format = {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}
    body = sent(request)
    assert body["tools"] == [
        {"type": "custom", "name": "apply_patch"},
        {"type": "function", "name": "grep", "parameters": {"type": "object"}},
    ]
    assert body["max_output_tokens"] == 10 and "max_tokens" not in body
    assert body["reasoning"] == {"effort": "high"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "n", "schema": {}}}


def test_a_bad_message_from_the_policy_is_refused():
    request = bound()
    request.messages.append({"role": "robot", "content": "x"})
    with pytest.raises(GatewayError) as caught:
        sent(request)
    assert caught.value.status == 400 and "robot" in caught.value.message


def test_the_chat_translation():
    body = copy.deepcopy(BODY)
    del body["future_field"]
    body["metadata"] = {"a": "b"}
    body["store"] = False
    out = chat_request(body, "openai/gpt-4o", "openai")
    assert out["model"] == "openai/gpt-4o"
    assert out["messages"][0] == {"role": "system", "content": "Be terse."}
    assert out["max_tokens"] == 100 and out["reasoning_effort"] == "low"
    assert "metadata" not in out and "store" not in out
    assert all("reasoning_content" not in m and "thinking_blocks" not in m for m in out["messages"])
    assert [t["function"]["name"] for t in out["tools"]] == ["ls", "apply_patch"]
    with pytest.raises(GatewayError) as caught:
        chat_request(BODY, "openai/gpt-4o", "openai")
    assert caught.value.param == "future_field"
    for field, value in (
        ("previous_response_id", "resp_1"),
        ("conversation", "conv_1"),
        ("background", True),
    ):
        with pytest.raises(GatewayError) as caught:
            chat_request({"model": "m", "input": "hi", field: value}, "openai/m", "openai")
        assert (caught.value.status, caught.value.param) == (400, field)
    with pytest.raises(GatewayError) as caught:
        chat_request({"model": "m", "input": []}, "openai/m", "openai")
    assert caught.value.param == "input"


@pytest.mark.parametrize(
    ("settings", "native", "base"),
    [
        ({}, True, None),
        ({"api_base": "http://127.0.0.1:9/v1"}, False, None),
        (
            {"api_base": "http://127.0.0.1:9/v1", "responses_api": "native"},
            True,
            "http://127.0.0.1:9/v1",
        ),
        ({"responses_api": "chat"}, False, None),
    ],
)
def test_which_upstream_serves_responses(settings, native, base):
    _client, natives = build_upstream(UpstreamSettings(**settings), "")
    client = natives.get("responses")
    assert isinstance(client, ResponsesNativeClient) == native
    if native:
        assert client.api_base == base


def test_a_system_message_before_the_instructions_is_kept():
    request = bound()
    request.messages.insert(0, {"role": "system", "content": "Policy rules first."})
    body = sent(request)
    assert body["instructions"] == "Be terse."
    assert body["input"][0] == {
        "type": "message",
        "role": "system",
        "content": "Policy rules first.",
    }
    assert body["input"][1:] == BODY["input"]
