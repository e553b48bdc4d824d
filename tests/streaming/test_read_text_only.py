"""``read_text_only`` tells the common chunk (text and nothing else) apart, for
litellm's chunks and for lightweight ones built from a provider's event, which hold
only the fields the provider sent."""

from __future__ import annotations

import pytest

from luthien_lab.streaming.fields import read_text_only
from luthien_lab.streaming.lite import Chunk


def lite(delta: dict, finish: str | None = None, **choice: object) -> Chunk:
    event = {"id": "c", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]}  # fmt: skip
    return Chunk.from_dict(event)


def litellm_chunk(delta: dict, finish: str | None = None):
    from luthien_lab.streaming.chunks import create_chunk

    return create_chunk(finish_reason=finish, **delta)


@pytest.mark.parametrize("make", [lite, litellm_chunk], ids=["lite", "litellm"])
def test_text_and_nothing_else(make):
    assert read_text_only(make({"content": "hi"})) == ("hi", None)
    assert read_text_only(make({"role": "assistant", "content": "hi"})) == ("hi", "assistant")


@pytest.mark.parametrize("make", [lite, litellm_chunk], ids=["lite", "litellm"])
def test_anything_else_is_not_text_only(make):
    assert read_text_only(make({"content": ""})) is None
    assert read_text_only(make({"role": "assistant", "content": ""})) is None
    assert read_text_only(make({"content": "bye"}, "stop")) is None
    assert read_text_only(make({"content": "x", "reasoning_content": "think"})) is None
    call = {"index": 0, "id": "t1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}  # fmt: skip
    assert read_text_only(make({"content": "x", "tool_calls": [call]})) is None


def test_a_lightweight_chunk_without_choices_or_delta():
    assert read_text_only(Chunk.from_dict({"id": "c", "choices": []})) is None
    assert read_text_only(Chunk.from_dict({"id": "c", "choices": [{"index": 0}]})) is None
    no_delta = Chunk.from_dict({"id": "c", "choices": [{"index": 0, "delta": None}]})
    assert read_text_only(no_delta) is None
