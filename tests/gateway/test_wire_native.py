"""``WireContext.native_for``: an ingress chunk is re-sent as its native event only while
the policy has changed nothing in it; any change, in place included, makes it rebuilt."""

from __future__ import annotations

import json

import pytest

from luthien_lab.gateway._wire import WireContext
from luthien_lab.streaming.lite import Chunk, Delta

EVENT = {
    "id": "c",
    "object": "chat.completion.chunk",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
}


def _registered() -> tuple[WireContext, Chunk, bytes]:
    wire = WireContext("chat", {}, {}, None)
    event = json.loads(json.dumps(EVENT))
    raw = b"data: " + json.dumps(EVENT).encode() + b"\n\n"
    chunk = Chunk.adopt(event)
    wire.register(chunk, event, raw)
    return wire, chunk, raw


def _set_content(chunk):
    chunk.choices[0].delta.content = "changed"


def _set_finish(chunk):
    chunk.choices[0].finish_reason = "stop"


def _new_delta(chunk):
    chunk.choices[0].delta = Delta(content="other")


def _emptied(chunk):
    chunk.choices.clear()


def _replaced_choice(chunk):
    chunk.choices[0] = Chunk.from_dict(json.loads(json.dumps(EVENT))).choices[0]


def _new_field(chunk):
    chunk.choices[0].delta.refusal = "no"


def _new_choices(chunk):
    chunk.choices = list(chunk.choices)


def test_an_untouched_chunk_is_its_native_event():
    wire, chunk, raw = _registered()
    native = wire.native_for(chunk)
    assert native is not None and native.raw == raw
    assert wire.native_for(Chunk.from_dict(EVENT)) is None, "an equal copy is not the chunk"


@pytest.mark.parametrize(
    "change",
    [_set_content, _set_finish, _new_delta, _emptied, _replaced_choice, _new_field, _new_choices],
)
def test_a_chunk_changed_in_place_is_rebuilt(change):
    wire, chunk, _raw = _registered()
    change(chunk)
    assert wire.native_for(chunk) is None
