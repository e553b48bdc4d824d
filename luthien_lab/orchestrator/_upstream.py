"""The upstream reader: the provider's stream (or full response) read under
``chunk_timeout``, its failures mapped to :class:`UpstreamError`, its stream closed
whatever happens. What each chunk causes is the dispatch loop's (:mod:`._dispatch`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.clients._base import ChunkBatches
from luthien_lab.errors import LuthienLabError, UpstreamError, UpstreamTimeoutError
from luthien_lab.orchestrator._watchdog import UPSTREAM

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.orchestrator._dispatch import Dispatch
    from luthien_lab.orchestrator._transaction import Transaction

__all__ = ["complete", "read_stream"]

_perf_ns = time.perf_counter_ns


async def read_stream(
    stream: AsyncIterator[Any], tx: Transaction, dispatch: Dispatch, chunk_timeout: float | None
) -> int:
    """Hand each chunk of ``stream`` to ``dispatch``, each waited for under the
    watchdog's ``chunk_timeout`` (a :class:`ChunkBatches` group by group: its chunks
    arrived together); returns how many there were. The stream is closed on the way
    out, however that is."""
    iterator: AsyncIterator[Any]
    if isinstance(stream, ChunkBatches):
        batched, iterator = True, stream.batches()
    else:
        batched, iterator = False, stream.__aiter__()
    watch = dispatch.watch
    timed = watch if watch is not None and chunk_timeout is not None else None
    hooks_of = dispatch.chunk
    index = 0
    try:
        while True:
            if timed is not None:
                timed.waiting_since = dispatch.mark  # the last read: just now
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return index
            except asyncio.CancelledError:
                if watch is not None and watch.fired == UPSTREAM:
                    raise _silent(tx, dispatch.task, chunk_timeout) from None
                raise
            except LuthienLabError:
                raise
            except Exception as error:
                raise upstream_error(error, tx) from error
            dispatch.mark = _perf_ns()
            if timed is not None:
                timed.waiting_since = None
            for chunk in item if batched else (item,):
                rest = hooks_of(index, chunk)
                if rest is not None:
                    await rest
                index += 1
    finally:
        if timed is not None:
            timed.waiting_since = None
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


async def complete(client: LLMClient, tx: Transaction, chunk_timeout: float | None) -> Any:
    """The provider's full response to ``tx.final``, within ``chunk_timeout``."""
    try:
        call = client.complete(tx.final)
        if chunk_timeout is not None:
            return await asyncio.wait_for(call, chunk_timeout)
        return await call
    except TimeoutError as error:
        raise _timeout(tx, f"did not answer within {chunk_timeout:g} s") from error
    except LuthienLabError:
        raise
    except Exception as error:
        raise upstream_error(error, tx) from error


def _silent(tx: Transaction, task: Any, chunk_timeout: float | None) -> UpstreamTimeoutError:
    if task is not None:
        task.uncancel()  # the watchdog's cancel, turned into this error
    return _timeout(tx, f"sent nothing for {chunk_timeout:g} s")


def _timeout(tx: Transaction, what: str) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"the provider {what} (raise chunk_timeout= if the model is just slow)",
        provider=tx.info.provider,
        model=tx.info.model,
        transaction_id=tx.tid,
    )


def upstream_error(error: Exception, tx: Transaction) -> UpstreamError:
    status = getattr(error, "status_code", None)
    return UpstreamError(
        f"the provider failed: {type(error).__name__}: {error}",
        provider=tx.info.provider,
        model=tx.info.model,
        transaction_id=tx.tid,
        status_code=status if isinstance(status, int) else None,
    )
