"""The recorder builds a stream's full response from the chunk columns it extracted;
it must be the same JSON that rebuilding from the chunks gives."""

from __future__ import annotations

import json

import pytest

from luthien_lab import ScriptedLLMClient, reconstruct_full_response
from luthien_lab.store._chunk_rows import chunk_columns
from luthien_lab.store._redact import Redactor
from luthien_lab.store._responses import response_from_columns
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk, tool_call_delta


def from_columns(chunks, positions=None):
    return response_from_columns(chunk_columns(chunks), chunks, positions)


def rebuilt(chunks):
    return json.loads(Redactor().dumps(reconstruct_full_response(chunks)))


SYNTHETIC = {
    "text": [
        create_chunk(None, role="assistant", content=""),
        create_chunk(None, content="Hel"),
        create_chunk(None, content="lo"),
        create_chunk(None, finish_reason="stop"),
        create_usage_chunk({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ],
    "thinking_then_tools": [
        create_chunk(None, role="assistant", reasoning_content="let me "),
        create_chunk(None, reasoning_content="think"),
        create_chunk(None, content="Checking."),
        create_chunk(
            None,
            tool_calls=[
                tool_call_delta(0, id="a", name="f", arguments='{"x"'),
                tool_call_delta(1, id="b", name="g", arguments="{}"),
            ],
        ),
        create_chunk(None, tool_calls=[tool_call_delta(0, arguments=": 1}")]),
        create_chunk(None, finish_reason="tool_calls"),
    ],
    "no_text": [
        create_chunk(None, role="assistant", content=""),
        create_chunk(None, finish_reason="length"),
    ],
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_rows_give_the_same_response_as_the_chunks(name):
    chunks = SYNTHETIC[name]
    built = from_columns(chunks)
    assert built is not None
    assert built == rebuilt(chunks)


def test_recorded_streams_agree(recorded):
    _name, raw = recorded
    chunks = ScriptedLLMClient(raw)._chunks
    built = from_columns(chunks)
    assert built is not None
    assert built == rebuilt(chunks)


def test_a_chunk_the_rows_cannot_hold_falls_back():
    chunks = [
        create_chunk(None, role="assistant", content="hi", refusal="no"),
        create_chunk(None, finish_reason="stop"),
    ]
    assert from_columns(chunks) is None


def test_chosen_rows_make_their_own_response():
    text, tools = SYNTHETIC["text"], SYNTHETIC["thinking_then_tools"]
    chunks = text + tools
    positions = list(range(len(text), len(chunks)))
    assert from_columns(chunks, positions) == rebuilt(tools)
    assert from_columns(chunks, range(len(text))) == rebuilt(text)


def test_no_rows_make_no_response():
    assert from_columns([]) is None
    assert from_columns(SYNTHETIC["text"], []) is None
