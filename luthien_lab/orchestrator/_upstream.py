"""The upstream reader: the provider's stream (or full response) read under
``chunk_timeout``, its failures mapped to :class:`UpstreamError`, its stream closed
whatever happens. What each chunk causes is the dispatch loop's (:mod:`._dispatch`)."""

from __future__ import annotations

import asyncio
import sys
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

__all__ = ["UpstreamReader", "complete"]

_perf_ns = time.perf_counter_ns
# The task running on a loop, read per step (per chunk). Before 3.12
# asyncio.current_task is Python code (a call of get_running_loop, then a lookup in
# the dict the C tasks keep): the step looks it up there itself, with the loop it
# noted. From 3.12 on current_task is C, and later versions keep no such dict.
_task_of: Any = (
    asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
    if sys.version_info < (3, 12)
    else asyncio.current_task
)


class UpstreamReader:
    """The provider's stream, read one step at a time by the task that drives the
    transaction (the consumer's own, so that a chunk reaches it without a hop between
    tasks): :meth:`step` waits for the next read under ``chunk_timeout`` (a chunk, or
    a :class:`ChunkBatches` group: its chunks arrived together) and hands each chunk
    to ``dispatch``; after the last, the end-of-stream hooks run and the egress
    closes. The stream is closed on the way out, however that is (:meth:`close`).

    The silence limit is timed from the read's own start, never from the last chunk,
    so a consumer that takes its time between steps does not count against it."""

    __slots__ = (
        "_next",
        "batched",
        "count",
        "dispatch",
        "done",
        "egress",
        "iterator",
        "loop",
        "stray",
        "timed",
        "timeout",
        "tx",
    )

    def __init__(
        self, stream: AsyncIterator[Any], tx: Transaction, dispatch: Dispatch,
        chunk_timeout: float | None,
    ) -> None:  # fmt: skip
        self.iterator: AsyncIterator[Any] | None
        if isinstance(stream, ChunkBatches):
            self.batched, self.iterator = True, stream.batches()
        else:
            self.batched, self.iterator = False, stream.__aiter__()
        self._next = self.iterator.__anext__
        self.tx = tx
        self.loop = asyncio.get_running_loop()
        self.dispatch = dispatch
        self.egress = dispatch.egress
        self.timeout = chunk_timeout
        watch = dispatch.watch
        self.timed = watch if watch is not None and chunk_timeout is not None else None
        self.count = 0
        """How many chunks were read so far."""
        self.done = False
        """True once the stream has ended and its end-of-stream hooks have run."""
        self.stray = False
        """True once a chunk was put while the reader waited for the provider: by a
        task of the policy's own, as no hook was running."""

    async def step(self) -> None:
        """Read, and fire the hooks the chunks cause, until the hooks have put
        something (going back to the consumer with nothing to hand it is a waste), the
        stream has ended (its end-of-stream hooks run then) or a hook has waited or a
        chunk was put from elsewhere (``dispatch.waited``, :attr:`stray`)."""
        dispatch = self.dispatch
        task = _task_of(self.loop)
        if dispatch.task is not task:  # a consumer may go on from another task
            dispatch.run_by(task)
        egress = self.egress
        timed = self.timed
        hooks_of = dispatch.chunk
        batched = self.batched
        while True:
            put_before = egress.count
            if timed is not None:
                timed.waiting_since = _perf_ns()
            try:
                item = await self._next()
            except StopAsyncIteration:
                await self._end()
                return
            except asyncio.CancelledError:
                self._silence()
                raise
            except LuthienLabError:
                raise
            except Exception as error:
                self._silence()
                raise upstream_error(error, self.tx) from error
            finally:
                if timed is not None:
                    timed.waiting_since = None
            dispatch.mark = _perf_ns()
            if egress.count != put_before:
                self.stray = True
            index = self.count
            if batched:
                for chunk in item:
                    rest = hooks_of(index, chunk)
                    if rest is not None:
                        await rest
                    index += 1
                self.count = index
            else:  # one chunk: no tuple to loop over, per chunk
                rest = hooks_of(index, item)
                if rest is not None:
                    await rest
                self.count = index + 1
            if egress.count != put_before or dispatch.waited or self.stray:
                return

    async def run(self) -> None:
        """Every step to the end (a producer task's whole work)."""
        try:
            while not self.done:
                await self.step()
        finally:
            await self.close()

    async def _end(self) -> None:
        await self._close_stream()
        await self.dispatch.after_stream(self.count)
        self.done = True
        await self.close()

    def _silence(self) -> None:
        """Raise the provider's silence (the watchdog cancelled the read), if it was."""
        watch = self.dispatch.watch
        if watch is not None and watch.fired == UPSTREAM:
            raise _silent(self.tx, self.dispatch.task, self.timeout) from None

    async def _close_stream(self) -> None:
        iterator, self.iterator = self.iterator, None
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()

    async def close(self) -> None:
        """Stop the watchdog, close the egress and the provider's stream (again: nothing)."""
        self.dispatch.stop()
        self.egress.close()
        await self._close_stream()


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
