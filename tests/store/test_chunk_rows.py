"""``chunk_columns`` (the writer thread's fast path) must give exactly what
``chunk_row`` (the reference, one chunk at a time) gives, on every shape of chunk."""

from __future__ import annotations

import json

import pytest
from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

from luthien_lab import ScriptedLLMClient
from luthien_lab.datasets import load_recordings
from luthien_lab.store._chunk_rows import CHUNK_COLUMNS, chunk_columns, chunk_row
from luthien_lab.streaming.chunks import create_chunk, create_usage_chunk, tool_call_delta

RAW = CHUNK_COLUMNS.index("raw_json")


def by_rows(chunks):
    rows = [chunk_row(chunk) for chunk in chunks]
    return [[row[at] for row in rows] for at in range(len(CHUNK_COLUMNS))]


def odd_chunks():
    """One of each shape the fast path must either read right or hand over."""
    plain = create_chunk(None, role="assistant", content="hi")
    with_logprobs = create_chunk(None, content="x")
    with_logprobs.choices[0].logprobs = {"content": []}
    with_extra = create_chunk(None, content="y")
    with_extra.citations = ["https://example.org"]  # an unknown chunk-level field
    fingerprinted = create_chunk(None, content="z")
    fingerprinted.system_fingerprint = "fp_1"
    thinking = create_chunk(None, reasoning_content="hmm")
    thinking.choices[0].delta.thinking_blocks = [{"type": "thinking", "thinking": "hmm"}]
    psf = create_chunk(None, content="p")
    psf.choices[0].delta.provider_specific_fields = {"k": 1}  # a declared delta field
    two_choices = create_chunk(None, content="a")
    two_choices.choices.append(
        StreamingChoices(index=1, delta=Delta(content="b"), finish_reason=None)
    )
    no_choices = ModelResponseStream(choices=[])
    float_created = create_chunk(None, content="f")
    float_created.created = 1700000000.0
    return [
        plain,
        create_chunk(None, content="Hel"),
        create_chunk(None, refusal="no"),
        with_logprobs,
        with_extra,
        fingerprinted,
        thinking,
        psf,
        two_choices,
        no_choices,
        float_created,
        create_chunk(None, tool_calls=[tool_call_delta(0, id="a", name="f", arguments="{")]),
        create_chunk(
            None,
            tool_calls=[
                tool_call_delta(0, id="a", name="f", arguments="{}"),
                tool_call_delta(1, id="b", name="g", arguments="{}"),
            ],
        ),
        create_chunk(None, finish_reason="stop"),
        create_usage_chunk({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        {"id": "d", "choices": [{"index": 0, "delta": {"content": "dict"}}]},
        object(),
    ]


def test_odd_chunks_agree():
    chunks = odd_chunks()
    assert chunk_columns(chunks) == by_rows(chunks)


def test_odd_chunks_agree_one_at_a_time():
    # Whole-stream decisions (which keys to look at) must not depend on the neighbours.
    for chunk in odd_chunks():
        assert chunk_columns([chunk]) == by_rows([chunk])


def test_unusual_fields_are_kept_whole_and_usual_ones_are_not():
    chunks = odd_chunks()
    raw = chunk_columns(chunks)[RAW]
    assert raw[0] is None and raw[1] is None  # plain text
    for at in (2, 3, 4, 6, 7, 8):  # refusal, logprobs, citations, thinking, psf, 2 choices
        assert raw[at] is not None, at
    assert "https://example.org" in raw[4]
    assert json.loads(raw[7])["choices"][0]["delta"]["provider_specific_fields"] == {"k": 1}


def test_empty_stream():
    assert chunk_columns([]) == [[] for _ in CHUNK_COLUMNS]


def test_recorded_streams_agree(recorded):
    _name, raw = recorded
    chunks = ScriptedLLMClient(raw)._chunks
    assert chunk_columns(chunks) == by_rows(chunks)


def test_bundled_recordings_agree():
    recordings = load_recordings()
    assert recordings
    for recording in recordings:
        chunks = ScriptedLLMClient(recording.chunk_data)._chunks
        assert chunk_columns(chunks) == by_rows(chunks), recording.id


@pytest.mark.parametrize("size", [1, 2047, 2048, 2049, 5000])
def test_long_streams_agree(size):
    odd = odd_chunks()
    chunks = [
        odd[i % len(odd)] if i % 97 == 0 else create_chunk(None, content=f"t{i}")
        for i in range(size)
    ]
    assert chunk_columns(chunks) == by_rows(chunks)


def test_plain_litellm_chunks_take_the_columnar_path(monkeypatch):
    from luthien_lab.store import _chunk_rows

    handed_over = []
    monkeypatch.setattr(
        _chunk_rows, "chunk_row", lambda chunk: handed_over.append(chunk) or chunk_row(chunk)
    )
    usage = create_usage_chunk({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    chunks = [create_chunk(None, role="assistant", content="")]
    chunks += [create_chunk(None, content=f"w{i} ") for i in range(50)]
    chunks += [create_chunk(None, tool_calls=[tool_call_delta(0, id="a", name="f")])]
    chunks += [create_chunk(None, finish_reason="stop"), usage]
    columns = _chunk_rows.chunk_columns(chunks)
    assert handed_over == [usage]
    assert columns == by_rows(chunks)
