"""EgressQueue owns its iteration: the consumer iterates it (``async for``) and gets
every chunk put, in order, the moment it is put, until the queue is closed."""

from __future__ import annotations

import asyncio

import pytest

from luthien_lab.streaming.chunks import create_text_chunk
from luthien_lab.streaming.context import EgressQueue


async def test_the_consumer_gets_each_chunk_as_it_is_put_then_ends_when_closed():
    queue = EgressQueue()
    got: list[str] = []

    async def consume() -> None:
        async for chunk in queue:
            got.append(chunk.choices[0].delta.content)

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    for text in ("a", "b"):
        await queue.put(create_text_chunk(text))
        await asyncio.sleep(0)  # one turn of the loop: the consumer has it already
        assert got[-1] == text
    queue.put_nowait(create_text_chunk("c"))
    queue.put_nowait(create_text_chunk("d"))
    queue.close()
    await consumer
    assert got == ["a", "b", "c", "d"], "chunks put before close are all delivered"
    assert queue.sent and len(queue.sent) == 4 and queue.qsize() == 0


async def test_a_closed_queue_refuses_chunks_and_an_empty_closed_one_ends_at_once():
    queue = EgressQueue()
    queue.close("the stream has failed")
    with pytest.raises(RuntimeError, match="the stream has failed"):
        queue.put_nowait(create_text_chunk("late"))
    assert [chunk async for chunk in queue] == []


async def test_drain_returns_what_is_ready_in_order_and_wait_ends_on_a_put_or_the_close():
    queue = EgressQueue()
    assert queue.drain() == []
    first, second = create_text_chunk("a"), create_text_chunk("b")
    queue.put_nowait(first)
    queue.put_nowait(second)
    batch = queue.drain()
    assert len(batch) == 2 and batch[0] is first and batch[1] is second
    assert queue.empty()
    assert queue.drain() == [] and queue.sent == [first, second]

    waiter = queue.wait()
    assert not waiter.done()
    third = create_text_chunk("c")
    queue.put_nowait(third)
    assert waiter.done() and queue.drain() == [third]

    waiter = queue.wait()
    queue.close()
    assert waiter.done() and queue.closed and queue.drain() == []


async def test_a_cancelled_wait_does_not_break_later_puts():
    queue = EgressQueue()
    waiter = queue.wait()
    waiter.cancel()
    chunk = create_text_chunk("x")
    queue.put_nowait(chunk)  # the cancelled future is done: put must not set it
    assert queue.drain() == [chunk]
    await asyncio.sleep(0)
