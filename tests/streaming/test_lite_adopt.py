"""``lite.Chunk.adopt``: the chunk ``from_dict`` builds, made of the parsed event's own
dicts (the gateway's per-event builder)."""

from __future__ import annotations

import copy

import pytest

from luthien_lab.streaming.lite import Chunk, Delta, StreamChoice, ToolCallDelta, Usage

EVENTS = [
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hé"}, "finish_reason": None}],
        "unknown_field": {"kept": [1, 2]},
    },
    {
        "id": "c2",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "t", "function": {"name": "f", "arguments": "{"}}
                    ]
                },
            },
            {"index": 1, "delta": {"content": "x"}, "finish_reason": "stop"},
        ],
    },
    {"id": "c3", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    {"id": "c4", "choices": [{"index": 0, "delta": None, "finish_reason": "stop"}]},
    # One choice (the shape adopt builds without the general walk), with and without
    # what sends it the general way: tool calls, usage.
    {"id": "c5", "choices": [{"index": 0, "delta": {"content": "x"}}], "usage": None},
    {
        "id": "c6",
        "choices": [
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}
        ],
    },
    {
        "id": "c7",
        "choices": [{"index": 0, "delta": {"content": "y"}}],
        "usage": {"prompt_tokens": 1},
    },
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event["id"])
def test_adopt_builds_what_from_dict_builds(event):
    built = Chunk.from_dict(copy.deepcopy(event))
    adopted = Chunk.adopt(copy.deepcopy(event))
    assert adopted == built
    assert adopted.model_dump() == built.model_dump() == event
    for mine, theirs in zip(adopted.choices, built.choices, strict=True):
        assert type(mine) is type(theirs) is StreamChoice
        assert type(mine.delta) is type(theirs.delta)
    if event["id"] in ("c2", "c6"):
        assert type(adopted.choices[0].delta) is Delta
        call = adopted.choices[0].delta.tool_calls[0]
        assert type(call) is ToolCallDelta and call.function.arguments == "{"
    if event["id"] in ("c3", "c7"):
        assert type(adopted.usage) is Usage and adopted.usage.prompt_tokens in (1, 3)


def test_adopt_takes_the_dicts_over_and_from_dict_leaves_its_input_alone():
    event = copy.deepcopy(EVENTS[0])
    choice, delta = event["choices"][0], event["choices"][0]["delta"]
    chunk = Chunk.adopt(event)
    assert chunk.__dict__ is event
    assert chunk.choices[0].__dict__ is choice and chunk.choices[0].delta.__dict__ is delta

    kept = copy.deepcopy(EVENTS[0])
    Chunk.from_dict(kept)
    assert kept == EVENTS[0] and type(kept["choices"][0]) is dict


def test_optional_fields_read_as_none_and_unknown_ones_fail_as_before():
    chunk = Chunk.from_dict({"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]})
    choice = chunk.choices[0]
    assert (chunk.usage, chunk.model, choice.finish_reason, choice.delta.tool_calls) == (
        None,
        None,
        None,
        None,
    )
    assert "usage" not in chunk.model_dump(), "a field read as None is not added"
    with pytest.raises(AttributeError, match="'Chunk' object has no attribute 'nope'"):
        _ = chunk.nope
    choice.delta.tool_calls = []
    assert choice.delta.tool_calls == [] and Delta().tool_calls is None
