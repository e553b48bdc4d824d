"""A streaming transaction: two coroutines. The producer task reads the provider
(:func:`~._upstream.read_stream`) and fires the hooks (:class:`~._dispatch.Dispatch`);
the consumer (the caller's ``async for``) receives each egress chunk the moment a
hook puts it, iterating the :class:`EgressQueue` (no polling, no per-chunk timer)."""

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
from luthien_lab.orchestrator._upstream import read_stream
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
    producer: asyncio.Task[None] | None = None
    status = "ok"
    failure: BaseException | None = None
    try:
        if tx.refused is not None:
            # The refusal's chunks, and nothing after them, read as any stream's.
            put_refusal(tx, egress)
            egress.close()
            status = "blocked"
        else:
            produce = _produce(settings, client, tx, ctx, assembler, egress)
            producer = asyncio.get_running_loop().create_task(produce)
        # The queue read here rather than through an async generator of its own: one
        # step fewer for every wake-up (an upstream read, usually one event).
        drain, wait = egress.drain, egress.wait
        while True:
            batch = drain()
            if batch:
                if batched:
                    yield batch
                else:
                    for chunk in batch:
                        yield chunk
            elif egress.closed:
                break
            else:
                await wait()
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
        if status == "ok" and BLOCKED_KEY in tx.scratchpad:
            status = "blocked"
        tx.finish(status, failure, ingress=assembler.state.raw_chunks, egress=egress.sent)


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


async def _produce(
    settings: HookSettings,
    client: LLMClient,
    tx: Transaction,
    ctx: StreamingResponseContext,
    assembler: StreamingChunkAssembler,
    egress: EgressQueue,
) -> None:
    """The producer task: the upstream reader feeding the dispatch loop, then the
    end of the stream's hooks; the egress closes whatever happens."""
    dispatch = Dispatch(settings, tx, ctx, assembler, egress)
    try:
        count = await read_stream(
            client.stream(ctx.final_request), tx, dispatch, settings.chunk_timeout
        )
        await dispatch.after_stream(count)
    finally:
        dispatch.stop()
        egress.close()
