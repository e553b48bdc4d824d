"""``ScriptedLLMClient``: the test double shipped in the library."""

from __future__ import annotations

import asyncio
import json

import pytest

from luthien_lab import ScriptedLLMClient
from luthien_lab.clients import chunks_from_response
from luthien_lab.request import Request
from luthien_lab.streaming import reconstruct_full_response
from luthien_lab.streaming.chunks import create_chunk
from tests.support import REQUEST, stream_summary, summary, text_stream, tool_chunk

RESPONSE = {
    "id": "resp-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Checking the weather",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
                    },
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}
EXPECTED = {
    "text": "Checking the weather",
    "tool_calls": [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})],
    "finish_reason": "tool_calls",
}


def request(text: str) -> Request:
    return Request(model="m", messages=[{"role": "user", "content": text}])


async def collect(client: ScriptedLLMClient, req: Request = REQUEST) -> list:
    return [chunk async for chunk in client.stream(req)]


def test_it_needs_something_to_play():
    with pytest.raises(ValueError, match=r"chunks=, response= or script="):
        ScriptedLLMClient()


async def test_chunks_play_in_order_on_every_call():
    client = ScriptedLLMClient(text_stream("a", "b", "c"))
    first, second = await collect(client), await collect(client, request("again"))
    assert (
        stream_summary(first)
        == stream_summary(second)
        == {
            "text": "abc",
            "tool_calls": [],
            "finish_reason": "stop",
        }
    )
    assert [r.last_user_message for r in client.requests] == ["hello", "again"]


async def test_chunks_may_be_dicts_or_json_text():
    dumped = [chunk.model_dump() for chunk in text_stream("x", "y")]
    as_dicts = await collect(ScriptedLLMClient(dumped))
    as_json = await collect(ScriptedLLMClient([json.dumps(d) for d in dumped]))
    assert [c.choices[0].delta.content for c in as_dicts] == ["", "x", "y", None]
    assert [c.model_dump() for c in as_json] == [c.model_dump() for c in as_dicts]


async def test_complete_adds_the_chunks_up():
    chunks = [*text_stream("Let me ", "check", finish="tool_calls")[:-1]]
    chunks += [
        tool_chunk(0, id="call_1", name="get_weather", args='{"city": '),
        tool_chunk(0, args='"Oslo"}'),
    ]
    chunks.append(create_chunk(None, finish_reason="tool_calls"))
    client = ScriptedLLMClient(chunks)
    assert summary(await client.complete(REQUEST)) == {
        "text": "Let me check",
        "tool_calls": [("get_weather", {"city": "Oslo"})],
        "finish_reason": "tool_calls",
    }
    assert summary(await client.complete(REQUEST)) == stream_summary(await collect(client))


async def test_a_response_is_returned_as_a_copy_and_streamed_as_chunks():
    client = ScriptedLLMClient(response=RESPONSE)
    first = await client.complete(REQUEST)
    assert summary(first) == EXPECTED
    first.choices[0].message.content = "changed by a policy"
    assert summary(await client.complete(REQUEST)) == EXPECTED

    chunks = await collect(client)
    assert stream_summary(chunks) == EXPECTED
    # role, the text in one chunk, one chunk per tool call, finish (with the usage)
    assert len(chunks) == 5
    assert chunks[-1].usage.total_tokens == 7


def test_chunks_from_response_splits_the_text():
    response = reconstruct_full_response(text_stream("abcdefg"))
    chunks = chunks_from_response(response, text_chunk_size=3)
    texts = [c.choices[0].delta.content for c in chunks]
    assert texts == ["", "abc", "def", "g", None]
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_script_answers_per_request():
    def script(req: Request):
        text = req.last_user_message
        if text == "tools":
            return RESPONSE
        return text_stream(*text.split())

    client = ScriptedLLMClient(script=script)
    assert stream_summary(await collect(client, request("one two"))) == {
        "text": "onetwo",
        "tool_calls": [],
        "finish_reason": "stop",
    }
    assert stream_summary(await collect(client, request("tools"))) == EXPECTED
    assert summary(await client.complete(request("tools"))) == EXPECTED
    assert summary(await client.complete(request("x y")))["text"] == "xy"
    assert [r.last_user_message for r in client.requests] == ["one two", "tools", "tools", "x y"]


async def test_fail_after_raises_after_that_many_chunks():
    error = ConnectionResetError("upstream went away")
    client = ScriptedLLMClient(text_stream("a", "b", "c"), fail_after=2, error=error)
    got = []
    with pytest.raises(ConnectionResetError) as raised:
        async for chunk in client.stream(REQUEST):
            got.append(chunk)
    assert raised.value is error
    assert len(got) == 2
    assert client.open_streams == 0
    with pytest.raises(ConnectionResetError):
        await client.complete(REQUEST)


async def test_fail_after_the_last_chunk_raises_at_the_end():
    client = ScriptedLLMClient(text_stream("a"), fail_after=99)
    got = []
    with pytest.raises(RuntimeError, match="scripted failure"):
        async for chunk in client.stream(REQUEST):
            got.append(chunk)
    assert len(got) == 3


async def test_stall_after_goes_silent_and_counts_as_open():
    client = ScriptedLLMClient(text_stream("a", "b"), stall_after=2)
    stream = client.stream(REQUEST)
    taken = [await anext(stream), await anext(stream)]
    assert [c.choices[0].delta.content for c in taken] == ["", "a"]
    waiting = asyncio.ensure_future(anext(stream))
    for _ in range(20):  # many turns of the loop: a stalled stream never yields
        await asyncio.sleep(0)
    assert not waiting.done()
    assert client.open_streams == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await stream.aclose()
    assert client.open_streams == 0


async def test_open_streams_counts_streams_not_yet_closed():
    client = ScriptedLLMClient(text_stream("a", "b"))
    one, two = client.stream(REQUEST), client.stream(REQUEST)
    await anext(one)
    await anext(two)
    assert client.open_streams == 2
    await one.aclose()
    assert client.open_streams == 1
    assert len([c async for c in two]) == 3
    assert client.open_streams == 0


async def test_delay_sleeps_before_each_chunk(monkeypatch):
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(seconds: float, *args):
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    await collect(ScriptedLLMClient(text_stream("a", "b"), delay=0.25))
    assert sleeps == [0.25] * 4
    sleeps.clear()
    await collect(ScriptedLLMClient(text_stream("a", "b")))
    assert sleeps == [0] * 4  # no delay: only a turn of the loop per chunk


def test_provider_names_the_client():
    assert ScriptedLLMClient(text_stream("a")).provider_for(REQUEST) == "scripted"
    assert ScriptedLLMClient(text_stream("a"), provider="fake").provider_for(REQUEST) == "fake"
