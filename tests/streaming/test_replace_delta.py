"""replace_delta: a rewritten chunk is a new object that keeps every field of the
original (ids, usage, other choices, tool calls, unknown fields...), for litellm's
chunks and the lite ones, and the original is never changed, whatever is done to the
copy afterwards."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from luthien_lab.clients._scripted import to_chunk
from luthien_lab.streaming import lite
from luthien_lab.streaming.chunks import create_chunk, create_text_chunk, replace_delta

RICH: dict[str, Any] = {
    "id": "chatcmpl-1",
    "created": 1700000000,
    "model": "m",
    "object": "chat.completion.chunk",
    "system_fingerprint": "fp_1",
    "service_tier": "default",
    "x_unknown": {"nested": [1, 2]},
    "choices": [
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": "hello",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
                "x_delta": "kept",
            },
            "finish_reason": "stop",
            "logprobs": None,
            "x_choice": 7,
        },
        {"index": 1, "delta": {"content": "other"}, "finish_reason": None},
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}

FAMILIES = {"litellm": to_chunk, "lite": lite.Chunk.from_dict}

CHANGES = [
    {"content": "X"},
    {"content": ""},
    {"content": None, "role": None},
    {"reasoning_content": "thought"},  # a field the delta did not have
    {"content": "X", "x_delta": "changed", "tool_calls": None},
]


@pytest.fixture(params=list(FAMILIES))
def rich(request: pytest.FixtureRequest) -> Any:
    chunk = FAMILIES[request.param](copy.deepcopy(RICH))
    assert lite.is_lite(chunk) == (request.param == "lite")
    return chunk


def slow_replace(chunk: Any, **fields: Any) -> Any:
    """What replace_delta promises, the slow way: a deep copy with the fields set."""
    reference = chunk.model_copy(deep=True)
    delta = reference.choices[0].delta
    for name, value in fields.items():
        setattr(delta, name, value)
    return reference


def snapshot(chunk: Any) -> tuple[Any, str, Any]:
    return (
        chunk.model_dump(),
        chunk.model_dump_json(),
        [(c, c.delta, dict(c.delta.__dict__)) for c in chunk.choices],
    )


@pytest.mark.parametrize("fields", CHANGES, ids=lambda f: ",".join(f))
def test_rewritten_chunk_keeps_every_field_and_dumps_as_a_deep_copy_would(rich, fields):
    before = snapshot(rich)
    new = replace_delta(rich, **fields)
    reference = slow_replace(rich, **fields)
    assert new.model_dump() == reference.model_dump()
    assert new.model_dump_json() == reference.model_dump_json()
    assert new.model_dump(exclude_none=True) == reference.model_dump(exclude_none=True)
    # Spelled out too: only the first choice's delta differs from the original.
    expected = rich.model_dump()
    expected["choices"][0]["delta"].update(fields)
    got = new.model_dump()
    assert got == expected
    assert list(got) == list(expected), "field order kept"
    for name in ("id", "model", "created", "system_fingerprint", "usage", "service_tier"):
        assert getattr(new, name) == getattr(rich, name) is not None
    assert json.loads(new.model_dump_json())["x_unknown"] == {"nested": [1, 2]}
    assert new.choices[0].finish_reason == "stop"
    # New objects down to the changed delta; the rest shared, as a shallow copy would.
    assert type(new) is type(rich)
    assert new is not rich and new.choices is not rich.choices
    assert new.choices[0] is not rich.choices[0]
    assert new.choices[0].delta is not rich.choices[0].delta
    assert type(new.choices[0].delta) is type(rich.choices[0].delta)
    assert new.choices[1] is rich.choices[1]
    assert snapshot(rich) == before, "the original is left as it was"


def test_changing_the_copy_never_reaches_the_original(rich):
    before = snapshot(rich)
    private = dict(getattr(rich, "__pydantic_private__", None) or {})
    new = replace_delta(rich, content="X")
    new.id = "other"
    new.model = "other"
    new.x_added = 1
    new.choices[0].finish_reason = "length"
    new.choices[0].x_choice = 8
    delta = new.choices[0].delta
    delta.content = "Y"
    delta.x_delta = "changed"
    delta.refusal = "no"
    new.choices.append(new.choices[1])
    if not lite.is_lite(new):
        new._hidden_params = {"set": "on the copy"}
    again = replace_delta(new, content="Z")  # a rewrite of a rewrite
    again.choices[0].delta.content = "W"
    assert snapshot(rich) == before
    assert dict(getattr(rich, "__pydantic_private__", None) or {}) == private
    assert new.choices[0].delta.content == "Y"
    assert json.loads(new.model_dump_json())["x_added"] == 1


def test_a_litellm_rewrite_is_a_valid_pydantic_object():
    chunk = to_chunk(copy.deepcopy(RICH))
    new = replace_delta(chunk, content="X")
    assert new.__pydantic_fields_set__ == chunk.__pydantic_fields_set__
    assert new.__pydantic_private__ == chunk.__pydantic_private__
    assert new.__pydantic_private__ is not chunk.__pydantic_private__
    assert new.__pydantic_extra__ is not chunk.__pydantic_extra__
    assert new.model_copy(deep=True).model_dump() == new.model_dump()
    rebuilt = type(new).model_validate(new.model_dump())
    assert rebuilt.choices[0].delta.content == "X"
    assert rebuilt.model_dump() == new.model_dump()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_built_chunks_rewrite_like_received_ones(family):
    """The pipeline's own chunks (``create_chunk``) and a stream's plain text chunks."""
    template = FAMILIES[family](copy.deepcopy(RICH))
    for chunk in (
        create_text_chunk(" fox", template),
        create_chunk(template, content="a", role="assistant", usage={"total_tokens": 3}),
    ):
        before = snapshot(chunk)
        new = replace_delta(chunk, content=" cat")
        assert new.model_dump_json() == slow_replace(chunk, content=" cat").model_dump_json()
        assert new.choices[0].delta.content == " cat"
        assert snapshot(chunk) == before


def test_a_lite_chunk_holding_litellm_objects_is_still_copied_right():
    """Mixed families take the generic path (model_copy), with the same result."""
    inner = to_chunk(copy.deepcopy(RICH))
    chunk = lite.Chunk.from_dict({**RICH, "choices": list(inner.choices)})
    before = chunk.model_dump()
    new = replace_delta(chunk, content="X")
    assert new.choices[0].delta.content == "X"
    assert new.choices[0] is not chunk.choices[0]
    assert chunk.model_dump() == before
    assert chunk.choices[0].delta.content == "hello"
