"""``streaming.lazy``: a chunk made of its upstream event reads as the chunk
``Chunk.adopt`` makes of it; while nothing has looked inside it, it is the event as it
came (``original`` gives its raw bytes), and after a look, until something changes it."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from luthien_lab.store._chunk_rows import chunk_columns, chunk_row
from luthien_lab.streaming.chunks import replace_delta
from luthien_lab.streaming.fields import read_chunk, read_text_only, read_usage
from luthien_lab.streaming.lazy import LazyChunk, lazy, original, wake
from luthien_lab.streaming.lite import Chunk
from tests.gateway.test_wire_native import (
    _emptied,
    _new_delta,
    _new_field,
    _replaced_choice,
    _set_content,
    _set_finish,
)
from tests.streaming.test_lite_adopt import EVENTS


def _made(event: dict) -> tuple[Chunk, bytes]:
    raw = b"data: " + json.dumps(event).encode() + b"\n\n"
    return lazy(copy.deepcopy(event), raw), raw


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event["id"])
def test_it_reads_as_the_adopted_chunk_and_is_one_once_looked_into(event):
    chunk, raw = _made(event)
    adopted = Chunk.adopt(copy.deepcopy(event))
    assert type(chunk) is LazyChunk and original(chunk) == raw
    assert chunk.id == event["id"] and type(chunk) is LazyChunk, "a plain field: no look inside"
    assert chunk.choices == adopted.choices
    assert type(chunk) is Chunk, "the first look made it the adopted chunk, in place"
    assert chunk == adopted and adopted == chunk
    assert chunk.model_dump() == adopted.model_dump() == event
    assert original(chunk) == raw, "looked into, not changed"


@pytest.mark.parametrize(
    "look",
    [
        lambda c: c == Chunk.from_dict(EVENTS[0]),
        lambda c: Chunk.from_dict(EVENTS[0]) == c,
        repr,
        lambda c: c.model_dump(),
        lambda c: c.model_dump_json(),
        lambda c: c.__dict__,
        lambda c: vars(c),
        lambda c: c.get("choices"),
        lambda c: list(c),
        lambda c: c["usage"],
        read_chunk,
    ],
)
def test_any_look_inside_wakes_it_and_reads_the_event(look):
    chunk, raw = _made(EVENTS[0])
    look(chunk)
    assert type(chunk) is Chunk
    assert chunk == Chunk.from_dict(EVENTS[0])
    assert original(chunk) == raw


def test_the_field_readers_read_it_without_waking_it():
    text, raw = _made(EVENTS[0])
    assert read_text_only(text) == ("hé", None) == read_text_only(Chunk.from_dict(EVENTS[0]))
    assert read_usage(text) is None
    assert type(text) is LazyChunk and original(text) == raw
    for event in EVENTS:  # each shape: the reading of the adopted chunk
        chunk, _raw = _made(event)
        assert read_text_only(chunk) == read_text_only(Chunk.adopt(copy.deepcopy(event)))
    trailer, _raw = _made(EVENTS[2])  # usage: read as its object, which takes a look
    assert read_usage(trailer).prompt_tokens == 3 and type(trailer) is Chunk


def _through_the_dict(chunk):
    chunk.__dict__["choices"][0].__dict__["delta"].__dict__["content"] = "changed"


def _a_chunk_field(chunk):
    chunk.model = "other"


def _deleted(chunk):
    del chunk.choices[0].delta.content


def _tool_call_arguments(chunk):
    chunk.choices[0].delta.tool_calls[0].function.arguments = "{}"


@pytest.mark.parametrize(
    "change",
    [
        _set_content,
        _set_finish,
        _new_delta,
        _emptied,
        _replaced_choice,
        _new_field,
        _through_the_dict,
        _deleted,
    ],
)
def test_a_change_made_in_place_makes_it_rebuilt(change):
    chunk, _raw = _made(EVENTS[0])
    change(chunk)
    assert original(chunk) is None


def test_a_change_of_a_tool_call_in_place_makes_it_rebuilt():
    chunk, raw = _made(EVENTS[5])
    assert chunk.choices[0].delta.tool_calls[0].function.arguments == "{"
    assert original(chunk) == raw
    _tool_call_arguments(chunk)
    assert original(chunk) is None


def test_setting_a_field_on_it_wakes_it_first():
    chunk, _raw = _made(EVENTS[0])
    _a_chunk_field(chunk)
    assert type(chunk) is Chunk and chunk.model == "other"
    assert chunk.choices[0].delta.content == "hé"


def _replaced(chunk):
    return replace_delta(chunk, content="x")


@pytest.mark.parametrize(
    "copier",
    [
        copy.copy,
        copy.deepcopy,
        lambda c: pickle.loads(pickle.dumps(c)),
        lambda c: c.model_copy(),
        lambda c: c.model_copy(deep=True),
        _replaced,
    ],
)
@pytest.mark.parametrize("looked", [False, True])
def test_a_copy_is_a_plain_chunk_and_never_the_event(copier, looked):
    chunk, raw = _made(EVENTS[0])
    if looked:
        wake(chunk)
    made = copier(chunk)
    assert type(made) is Chunk and made is not chunk
    assert original(made) is None
    assert original(chunk) == raw, "copying changed nothing in the original"
    expected = Chunk.from_dict(EVENTS[0])
    if copier is _replaced:
        expected.choices[0].delta.content = "x"
    assert made == expected


def test_chunks_made_otherwise_have_no_original():
    assert original(Chunk.from_dict(EVENTS[0])) is None
    assert original(Chunk.adopt(copy.deepcopy(EVENTS[0]))) is None
    assert original({"choices": []}) is None


def test_the_recorder_reads_its_event_without_waking_it():
    # Every shape, and a stream of them: the columns the recorder stores are those of
    # the adopted chunks.
    lazies = [_made(event)[0] for event in EVENTS]
    adopted = [Chunk.adopt(copy.deepcopy(event)) for event in EVENTS]
    assert chunk_columns(lazies) == chunk_columns(adopted)
    for chunk, made in zip(lazies, adopted, strict=True):
        assert chunk_row(chunk) == chunk_row(made)
    rare = [i for i, chunk in enumerate(lazies) if type(chunk) is not LazyChunk]
    # Only a chunk with a field no column holds is kept whole (its JSON), which looks.
    assert rare == [i for i, row in enumerate(map(chunk_row, adopted)) if row[-1] is not None]
