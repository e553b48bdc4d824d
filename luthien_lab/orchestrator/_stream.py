"""A streaming transaction, driven by its consumer: the caller's ``async for`` reads
the provider one step at a time (:class:`~._upstream.UpstreamReader`), the step fires
the hooks (:class:`~._dispatch.Dispatch`), and the consumer takes what they put on
the :class:`EgressQueue` before the next step. One task, so a chunk costs no hop
between tasks; the watchdog times only the reads and the hooks, never the consumer.

That holds while the hooks return without waiting. Once one waits (an LLM judge's
call) or a task the policy started puts a chunk, the rest of the stream is read by a
task of its own (the producer), and so is every later stream of the orchestrator
(``HookSettings.own_task``): the consumer then receives each chunk the moment it is
put, while a hook waits or the provider is silent too. Before that switch, what a
hook put before it waited reaches the consumer when it returns, and a chunk put by
the policy's own task, when the stream next moves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from luthien_lab._listeners import notify
from luthien_lab.events import ChunkEvent
from luthien_lab.orchestrator._dispatch import Dispatch, HookSettings
from luthien_lab.orchestrator._refusal import put_refusal
from luthien_lab.orchestrator._transaction import Transaction, status_of
from luthien_lab.orchestrator._upstream import UpstreamReader
from luthien_lab.policies.base import BLOCKED_KEY
from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.context import EgressQueue, StreamingResponseContext

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient

__all__ = ["run_stream"]


async def run_stream(
    begin: Callable[[], Awaitable[Transaction]],
    settings: HookSettings,
    client: LLMClient,
    batched: bool = False,
) -> AsyncIterator[Any]:
    """The egress chunks of the transaction ``begin()`` starts (or continues), which
    ends when this does: ok, blocked, error or cancelled (closed early). ``batched``:
    as lists of the chunks ready together, never empty (one step per list)."""
    tx = await begin()
    ctx = stream_context(tx)
    assembler = ctx.ingress_assembler
    egress: EgressQueue = ctx.egress_queue
    assert assembler is not None
    dispatch: Dispatch | None = None
    reader: UpstreamReader | None = None
    producer: asyncio.Task[None] | None = None
    failed: Exception | None = None
    status = "ok"
    failure: BaseException | None = None
    try:
        if tx.refused is not None:
            # The refusal's chunks, and nothing after them, read as any stream's.
            put_refusal(tx, egress)
            egress.close()
            status = "blocked"
        else:
            stream = client.stream(ctx.final_request)
            dispatch = Dispatch(settings, tx, ctx, assembler, egress)
            reader = UpstreamReader(stream, tx, dispatch, settings.chunk_timeout)
            if settings.own_task:
                producer = _hand_over(reader)
        # The queue's buffer read here, not through drain(): this loop turns once or
        # twice per chunk, and drain makes a list each time, an empty one every other.
        buffer, wait = egress._buffer, egress.wait
        while True:
            if buffer:
                if batched:
                    yield egress.drain()
                else:
                    # Chunks put while the consumer holds one (a task of the policy's
                    # own) go out in the same turn, after those before them.
                    while buffer:
                        yield buffer.popleft()
            elif egress._closed or failed is not None:
                break
            elif producer is not None:
                await wait()
            else:
                assert reader is not None and dispatch is not None
                try:
                    await reader.step()
                except Exception as error:
                    failed = error  # raised once what the hooks put before it is out
                    continue
                if dispatch.waited or reader.stray:
                    if settings.learn is not None:
                        settings.learn()
                    if not reader.done:
                        producer = _hand_over(reader)
        if failed is not None:
            raise failed
        if producer is not None:
            await producer  # re-raises the producer's error, if any
    except BaseException as error:
        failure = error
        status = status_of(error)
        raise
    finally:
        if producer is not None and not producer.done():
            producer.cancel()
            # The producer was cancelled on purpose; what it raises now is moot.
            with contextlib.suppress(BaseException):
                await producer
        if reader is not None:
            await reader.close()
        elif dispatch is not None:
            dispatch.stop()
        if status == "ok" and BLOCKED_KEY in tx.scratchpad:
            status = "blocked"
        tx.finish(status, failure, ingress=assembler.state.raw_chunks, egress=egress.sent)


def _hand_over(reader: UpstreamReader) -> asyncio.Task[None]:
    """The rest of the stream read by a task of its own (the producer); its first
    step makes it the task the watchdog cancels (``UpstreamReader.step``)."""
    return asyncio.get_running_loop().create_task(reader.run())


def stream_context(tx: Transaction) -> StreamingResponseContext:
    """What the hooks of ``tx``'s stream see: a new assembler and egress queue."""
    tid = tx.tid
    emit_sent = tx.emit.chunk_sent
    on_put = None
    if emit_sent:

        def on_put(index: int, chunk: Any, t_ns: int) -> None:
            notify(emit_sent, ChunkEvent(tid, index, chunk, t_ns))

    return StreamingResponseContext(
        transaction_id=tid,
        final_request=tx.final,
        ingress_assembler=StreamingChunkAssembler(),
        egress_queue=EgressQueue(on_put),
        scratchpad=tx.scratchpad,
        observability=tx.obs,
        original_request=tx.original,
    )
