"""The re-splitter keeps fixed chunks intact and the concatenated payload exact."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luthien_lab import reconstruct_full_response
from luthien_lab.clients._scripted import to_chunk
from luthien_lab.datasets import load_recordings
from luthien_lab.evaluate import resplit
from luthien_lab.evaluate._split import Segments

from .helpers import text_recording, tool_recording

RECORDINGS = load_recordings()


def _full(chunks):
    response = reconstruct_full_response([to_chunk(c) for c in chunks])
    message = response.choices[0].message
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
    return (
        message.content,
        getattr(message, "reasoning_content", None),
        calls,
        response.choices[0].finish_reason,
        response.usage.model_dump() if getattr(response, "usage", None) else None,
    )


def _fixed(chunks):
    """Chunks that carry a role, a tool header, a finish reason or usage."""
    out = []
    for chunk in chunks:
        choice = (chunk.get("choices") or [{}])[0]
        delta = choice.get("delta") or {}
        calls = delta.get("tool_calls") or []
        if (
            chunk.get("usage")
            or choice.get("finish_reason")
            or delta.get("role")
            or any(c.get("id") or (c.get("function") or {}).get("name") for c in calls)
        ):
            out.append(
                (
                    delta.get("role"),
                    choice.get("finish_reason"),
                    [(c.get("id"), (c.get("function") or {}).get("name")) for c in calls],
                    bool(chunk.get("usage")),
                )
            )
    return out


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda r: r.id)
@pytest.mark.parametrize("how", ["chars", "halves", "whole", "recorded", 3])
def test_resplit_preserves_payload_and_fixed_chunks(recording, how):
    chunks = resplit(recording, how)
    assert _full(chunks) == _full(recording.chunk_data)
    assert _fixed(chunks) == _fixed(recording.chunk_data)


def test_one_code_point_per_chunk_splits_inside_graphemes():
    rec = text_recording("mb", "naïve e\u0301 日本 👩\u200d💻")
    text = "naïve e\u0301 日本 👩\u200d💻"
    chunks = resplit([*rec["chunks"]], "chars")
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    pieces = [p for p in pieces if p]
    assert pieces == list(text)  # "e" and the combining accent, emoji and ZWJ apart
    assert "\u0301" in pieces and "\u200d" in pieces


def test_tool_arguments_split_anywhere_and_header_kept():
    rec = tool_recording("t", "shell", '{"cmd": ', '"ls"}')
    seg = Segments(rec["chunks"])
    assert [run.key for run in seg.runs] == ["tool:0"]
    chunks = seg.chunks(seg.finest())
    args = [
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in chunks
        if c.get("choices") and c["choices"][0]["delta"].get("tool_calls")
    ]
    assert args[0] == ""  # the header chunk, intact
    assert args[1:] == list('{"cmd": "ls"}')


def test_role_chunk_payload_is_peeled():
    rec = text_recording("p", "x")
    rec["chunks"][0]["choices"][0]["delta"]["content"] = "Hel"
    seg = Segments(rec["chunks"])
    assert seg.runs[0].text == "Helx"
    assert seg.runs[0].original_cuts == (3,)


@settings(max_examples=40, deadline=None, database=None)
@given(st.data())
def test_random_splits_preserve_every_recording(data):
    recording = data.draw(st.sampled_from(RECORDINGS))
    seg = Segments(recording.chunk_data)
    split = seg.random(random.Random(data.draw(st.integers(0, 10**6))), 0.4)
    assert _full(seg.chunks(split)) == _full(recording.chunk_data)
