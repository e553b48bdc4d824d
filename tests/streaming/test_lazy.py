"""``streaming.lazy``: a chunk made of its upstream event reads as the chunk
``Chunk.adopt`` makes of it; while nothing has looked inside it, it is the event as it
came (``original`` gives its raw bytes), and after a look, until something changes it."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from luthien_lab import PolicyOrchestrator, StringReplacePolicy
from luthien_lab.store._chunk_rows import chunk_columns, chunk_row
from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.chunks import replace_delta
from luthien_lab.streaming.fields import (
    is_lazy_trailer,
    read_chunk,
    read_delta,
    read_plain_event,
    read_text_only,
    read_usage,
)
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
from tests.support import REQUEST
from tests.test_stream_batches import GroupedClient


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


# ----- chunks read without waking them: read_plain_event and its readers ------------


def _text(content: str) -> dict:
    return {"id": "x", "choices": [{"index": 0, "delta": {"content": content}}]}


ROLE = {
    "id": "r",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
}
REASONING = {"id": "t", "choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]}
FINISH = {"id": "f", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
SIGNED = {
    "id": "s",
    "choices": [
        {"index": 0, "delta": {"thinking_blocks": [{"type": "thinking", "signature": "g"}]}}
    ],
}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ROLE, (None, None, "")),
        (REASONING, (None, "hm", None)),
        (FINISH, ("stop", None, None)),
        (EVENTS[0], (None, None, "hé")),
        (EVENTS[3], ("stop", None, None)),  # delta None
        (EVENTS[1], None),  # two choices
        (EVENTS[2], None),  # no choice: the usage trailer
        (EVENTS[5], None),  # tool calls
        (EVENTS[6], None),  # usage beside the text
        (SIGNED, None),  # a thinking signature
    ],
)
def test_read_plain_event_reads_a_lazy_chunk_without_waking_it(event, expected):
    chunk, raw = _made(event)
    assert read_plain_event(chunk) == expected
    assert type(chunk) is LazyChunk and original(chunk) == raw
    adopted = Chunk.adopt(copy.deepcopy(event))
    if expected is not None:  # what read_chunk and read_delta read in the adopted chunk
        _usage, delta, finish = read_chunk(adopted)
        reasoning, content, _calls = read_delta(delta) if delta is not None else (None,) * 3
        assert (finish, reasoning, content) == expected
    assert read_plain_event(adopted) is None, "only lazy chunks: others have objects"


STREAM = [ROLE, REASONING, REASONING, _text("Hel"), _text("lo"), FINISH, EVENTS[2]]


def _blocks(state) -> list:
    return [(b.kind, b.id, b.content, b.chunk_indices, b.is_complete) for b in state.blocks]


def test_the_assembler_wakes_only_the_chunks_it_needs_objects_of():
    chunks = [_made(event)[0] for event in STREAM]
    adopted = [Chunk.adopt(copy.deepcopy(event)) for event in STREAM]
    lazily, plainly = StreamingChunkAssembler(), StreamingChunkAssembler()
    for chunk, twin in zip(chunks, adopted, strict=True):
        mine, theirs = lazily.feed(chunk), plainly.feed(twin)
        assert [(kind, block and block.id) for kind, block in mine] == [
            (kind, block and block.id) for kind, block in theirs
        ]
    assert _blocks(lazily.state) == _blocks(plainly.state)
    assert lazily.state.finish_reason == "stop"
    # Not one woken, the usage trailer included: its usage is read when asked for.
    assert [type(chunk) for chunk in chunks] == [LazyChunk] * 7
    assert lazily.state.usage == plainly.state.usage and lazily.state.usage.prompt_tokens == 3
    # Asked for, the trailer is woken: the state holds the chunk's own usage object.
    assert type(chunks[-1]) is Chunk and lazily.state.usage is chunks[-1].usage


@pytest.mark.parametrize("replacements", [{"xyz": "abc"}, {"Hello": "Howdy"}])
async def test_string_replacement_passes_on_what_it_leaves_alone_unwoken(replacements):
    chunks = [_made(event)[0] for event in STREAM]
    policy = StringReplacePolicy(replacements=replacements)
    orchestrator = PolicyOrchestrator(policy, GroupedClient([chunks[:4], chunks[4:]]))
    stream = orchestrator.process_streaming_batches(REQUEST.model_copy(update={"stream": True}))
    out = [chunk async for batch in stream for chunk in batch]
    text = "".join(read_text_only(chunk)[0] for chunk in out if read_text_only(chunk))
    assert text == ("Hello" if "xyz" in replacements else "Howdy")
    # The role, the reasoning, the finish and the usage trailer go on as they came,
    # still lazy.
    for event in (ROLE, REASONING, FINISH, EVENTS[2]):
        index = STREAM.index(event)
        assert any(chunk is chunks[index] for chunk in out)
        assert type(chunks[index]) is LazyChunk and original(chunks[index]) is not None


# ----- the usage trailer, left lazy ---------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (EVENTS[2], True),  # no choices, usage: the trailer
        ({"id": "u", "usage": {"prompt_tokens": 1}}, True),  # no choices field at all
        ({"id": "e", "choices": []}, False),  # no usage either
        (EVENTS[6], False),  # usage beside the text
        (EVENTS[0], False),
        (FINISH, False),
    ],
)
def test_is_lazy_trailer_tells_a_usage_trailer_without_waking_it(event, expected):
    chunk, raw = _made(event)
    assert is_lazy_trailer(chunk) is expected
    assert type(chunk) is LazyChunk and original(chunk) == raw
    assert read_text_only(chunk) is None or not expected
    assert type(chunk) is LazyChunk, "read_text_only did not wake it either"
    assert is_lazy_trailer(Chunk.adopt(copy.deepcopy(event))) is False, "only lazy chunks"


def test_the_state_reads_a_trailers_usage_when_asked_and_a_later_one_wins():
    trailer, _raw = _made(EVENTS[2])
    state = StreamingChunkAssembler().state
    state.usage_of(trailer)
    assert type(trailer) is LazyChunk
    assert state.usage is trailer.usage and state.usage.prompt_tokens == 3
    later, _raw = _made(EVENTS[2])
    state.usage_of(later)
    state.usage = "set"  # set after it: the trailer's is not read any more
    assert state.usage == "set" and type(later) is LazyChunk


@pytest.mark.parametrize(
    "ending",
    [[FINISH, EVENTS[2]], [REASONING, FINISH], [EVENTS[2]]],
    ids=["finish", "reasoning", "trailer"],
)
async def test_string_replacement_flushes_held_text_before_the_lazy_chunk_that_ends_it(ending):
    # "Hel" is held back (it may become "Hello"); the lazy chunk that ends the text
    # goes out after it, not before.
    events = [ROLE, _text("Hel"), *ending]
    chunks = [_made(event)[0] for event in events]
    policy = StringReplacePolicy(replacements={"Hello": "Howdy"})
    orchestrator = PolicyOrchestrator(policy, GroupedClient([chunks[:2], chunks[2:]]))
    stream = orchestrator.process_streaming_batches(REQUEST.model_copy(update={"stream": True}))
    out = [chunk async for batch in stream for chunk in batch]
    texts = [read_text_only(chunk) for chunk in out]
    assert out[0] is chunks[0] and texts[1] is not None and texts[1][0] == "Hel"
    # The rest are the very chunks that came (told by identity: comparing wakes them).
    assert len(out) == len(chunks)
    assert all(a is b for a, b in zip(out[2:], chunks[2:], strict=True))
    assert all(type(chunk) is LazyChunk for chunk in chunks[2:])
