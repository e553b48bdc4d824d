"""``Dispatch``: one stream's dispatch loop, the hooks each ingress chunk causes.

The per-chunk hot path is :meth:`Dispatch.chunk` (and :meth:`Dispatch.fire`, which it
calls per hook): keep per-chunk work there, and only there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from luthien_lab._listeners import notify
from luthien_lab.errors import HookTimeoutError, LuthienLabError, PolicyError
from luthien_lab.events import ChunkEvent
from luthien_lab.orchestrator._timing import NO_LIMIT, UNSET, drive, not_a_coroutine
from luthien_lab.orchestrator._watchdog import HOOK, Watchdog
from luthien_lab.streaming.assembler import (
    COMPLETE,
    COMPLETE_HOOKS,
    DELTA,
    DELTA_HOOKS,
    StreamingChunkAssembler,
)

if TYPE_CHECKING:
    from luthien_lab.orchestrator._transaction import Transaction
    from luthien_lab.streaming.context import EgressQueue, StreamingResponseContext

__all__ = ["Dispatch", "HookSettings"]

_perf_ns = time.perf_counter_ns
_BLOCK_HOOKS = frozenset((*DELTA_HOOKS.values(), *COMPLETE_HOOKS.values(), "on_finish_reason"))


class HookSettings:
    """What a transaction's hooks run with: the policy's hooks, ``hook_timeout``,
    ``hook_block_warning`` and ``chunk_timeout`` (seconds, None: no limit);
    ``own_task``: a stream is read by a task of its own from the start (its policy's
    hooks have been seen to wait), and ``learn`` is called when one is seen to."""

    __slots__ = ("block_warning", "chunk_timeout", "hooks", "learn", "own_task", "timeout")

    def __init__(
        self,
        hooks: dict[str, Any],
        timeout: float | None,
        block_warning: float | None,
        chunk_timeout: float | None,
        own_task: bool = False,
        learn: Callable[[], None] | None = None,
    ) -> None:
        self.hooks = hooks
        self.timeout = timeout
        self.block_warning = block_warning
        self.chunk_timeout = chunk_timeout
        self.own_task = own_task
        self.learn = learn


class Dispatch:
    """One stream's dispatch loop: the hooks each ingress chunk causes, in the
    documented order (see ``policies/base.py``), each timed step by step.

    :meth:`fire` runs a hook's first step synchronously: a hook that returns without
    yielding to the event loop (nearly every call) costs one coroutine, one clock
    read and a few comparisons; only one that yields goes through :meth:`_resume`,
    timed per step and watched by the stream's :class:`Watchdog`.
    """

    __slots__ = (
        "assembler",
        "block_hooks",
        "block_ns",
        "block_warning",
        "ctx",
        "egress",
        "emit_hook",
        "emit_received",
        "feed",
        "hooks",
        "limit_ns",
        "mark",
        "point_to",
        "policy",
        "state",
        "task",
        "tid",
        "timeout",
        "timeout_ns",
        "tx",
        "waited",
        "watch",
    )

    def __init__(
        self,
        settings: HookSettings,
        tx: Transaction,
        ctx: StreamingResponseContext,
        assembler: StreamingChunkAssembler,
        egress: EgressQueue,
    ) -> None:
        self.tx = tx
        self.tid = tx.tid
        self.policy = tx.info.policy_class
        self.hooks = settings.hooks
        # Whether the policy has any hook of a block event: most (a passthrough, a
        # rewrite of the text as it comes) have none, and skip their loop per chunk.
        self.block_hooks = not _BLOCK_HOOKS.isdisjoint(settings.hooks)
        self.ctx = ctx
        self.assembler = assembler
        self.feed = assembler.feed
        self.point_to = assembler.point_to
        self.state = assembler.state
        self.egress = egress
        self.emit_hook = tx.emit.hook_fired
        self.emit_received = tx.emit.chunk_received
        self.timeout = timeout = settings.timeout
        self.block_warning = warning = settings.block_warning
        self.timeout_ns = NO_LIMIT if timeout is None else int(timeout * 1e9)
        self.block_ns = NO_LIMIT if warning is None else int(warning * 1e9)
        self.limit_ns = min(self.timeout_ns, self.block_ns)
        # When the reader last read the clock: the start of the next hook (see fire).
        self.mark = _perf_ns()
        self.task = asyncio.current_task()
        self.waited = False
        """True once a hook yielded to the event loop (see :meth:`fire`)."""
        chunk_timeout = settings.chunk_timeout
        self.watch = (
            Watchdog(asyncio.get_running_loop(), chunk_timeout, timeout, self.task, egress)
            if chunk_timeout is not None or timeout is not None
            else None
        )

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()

    def run_by(self, task: Any) -> None:
        """``task`` reads the stream now: the one the watchdog cancels."""
        self.task = task
        if self.watch is not None:
            self.watch.task = task

    def chunk(self, index: int, chunk: Any) -> Any:
        """Ingress chunk number ``index``: feed it, then fire its hooks in order.
        None when every hook returned without yielding (nearly always: no coroutine
        per chunk), else the awaitable that fires the rest."""
        events = self.feed(chunk)
        if self.emit_received:
            notify(self.emit_received, ChunkEvent(self.tid, index, chunk, self.mark))
        hooks = self.hooks
        if "on_chunk_received" in hooks:
            rest = self.fire("on_chunk_received", index, None)
            if rest is not None:
                return self._then(rest, index, events, 0)
        if not self.block_hooks:
            return None
        # The loop of _events, inlined: this runs per chunk. After feed the state
        # already names the chunk's last block of each kind: the assembler is asked to
        # point elsewhere only for a chunk with several events.
        state = self.state
        for position, (kind, block) in enumerate(events):
            if kind == DELTA:
                if state.current_block is not block:
                    self.point_to(kind, block)
                name = DELTA_HOOKS[type(block)]
            elif kind == COMPLETE:
                if state.just_completed is not block:
                    self.point_to(kind, block)
                name = COMPLETE_HOOKS[type(block)]
            else:
                name = "on_finish_reason"
            if name in hooks:
                rest = self.fire(name, index, block)
                if rest is not None:
                    return self._then(rest, index, events, position + 1)
        return None

    def _events(self, index: int, events: list[Any], first: int) -> Any:
        """The hooks of ``events[first:]``, as :meth:`chunk` says."""
        hooks = self.hooks
        for position in range(first, len(events)):
            kind, block = events[position]
            self.point_to(kind, block)
            if kind == DELTA:
                name = DELTA_HOOKS[type(block)]
            elif kind == COMPLETE:
                name = COMPLETE_HOOKS[type(block)]
            else:
                name = "on_finish_reason"
            if name in hooks:
                rest = self.fire(name, index, block)
                if rest is not None:
                    return self._then(rest, index, events, position + 1)
        return None

    async def _then(self, rest: Any, index: int, events: list[Any], position: int) -> None:
        """A hook yielded: await the rest of it, then fire the remaining events' hooks."""
        await rest
        more = self._events(index, events, position)
        if more is not None:
            await more

    async def after_stream(self, index: int) -> None:
        """The provider is done: completions of blocks still open, on_stream_complete."""
        self.mark = _perf_ns()
        more = self._events(index, self.assembler.finish(), 0)
        if more is not None:
            await more
        if "on_stream_complete" in self.hooks:
            rest = self.fire("on_stream_complete", index, None)
            if rest is not None:
                await rest
        error = self.egress.error
        if error is not None:  # put from outside any hook (a task the policy started)
            raise PolicyError("egress_queue.put", self.tid, error, self.policy) from error

    def fire(self, name: str, index: int, block: Any) -> Any:
        """Run hook ``name`` up to its first yield; None when it returned, else the
        awaitable that runs the rest of it.

        One clock read per hook: a hook's time runs from the reader's previous read
        (``mark``: the chunk's arrival, or the end of the hook before), which adds the
        pipeline's own microseconds to it, nothing that matters against a limit of a
        tenth of a second. Listeners get a read of its own start."""
        egress = self.egress
        before = egress.count
        start = _perf_ns() if self.emit_hook else self.mark
        coro = UNSET
        try:
            coro = self.hooks[name](self.ctx)
            waiting = coro.send(None)
        except StopIteration:
            end = self.mark = _perf_ns()
            if end - start < self.limit_ns and egress.error is None:
                if self.emit_hook:
                    self.tx.report_hook(name, index, block, start, end, before, egress.count)
                return None
            self._returned(name, index, block, start, end, end - start, before)
            return None
        except (asyncio.CancelledError, LuthienLabError):
            raise
        except Exception as error:
            cause = not_a_coroutine(name, coro) or error
            raise PolicyError(name, self.tid, cause, self.policy) from error
        self.waited = True
        return self._resume(coro, waiting, name, index, block, start, _perf_ns() - start, before)

    async def _resume(
        self, coro: Any, waiting: Any, name: str, index: int, block: Any, start: int, first: int,
        before: int,
    ) -> None:  # fmt: skip
        """The rest of a hook that yielded to the event loop, under the watchdog."""
        watch = self.watch
        if watch is not None:
            watch.hook_since = start
        try:
            _value, longest = await drive(coro, waiting, first)
        except BaseException as error:
            if watch is not None and watch.fired == HOOK:
                # Whatever it raised, its cancellation or an error from a late put.
                raise self._timed_out(name)  # noqa: B904 (its cause is a TimeoutError)
            if isinstance(error, Exception) and not isinstance(error, LuthienLabError):
                raise PolicyError(name, self.tid, error, self.policy) from error
            raise
        finally:
            if watch is not None:
                watch.hook_since = None
        if watch is not None and watch.fired == HOOK:  # it swallowed the cancellation
            raise self._timed_out(name)
        end = self.mark = _perf_ns()
        self._returned(name, index, block, start, end, longest, before)

    def _timed_out(self, name: str) -> HookTimeoutError:
        if self.task is not None:
            self.task.uncancel()  # the watchdog's cancel, turned into this error
        assert self.timeout is not None
        return HookTimeoutError(name, self.tid, self.timeout, self.policy)

    def _returned(
        self, name: str, index: int, block: Any, start: int, end: int, longest: int, before: int
    ) -> None:
        """The checks after a hook that was slow, yielded, or had a chunk refused."""
        if longest >= self.block_ns:
            self.tx.hook_blocked(name, longest, self.block_warning)
        if end - start > self.timeout_ns:
            # It held the event loop past its limit: the watchdog could not run.
            assert self.timeout is not None
            raise HookTimeoutError(name, self.tid, self.timeout, self.policy)
        error = self.egress.error
        if error is not None:  # refused a chunk, and the hook caught the TypeError
            raise PolicyError(name, self.tid, error, self.policy) from error
        if self.emit_hook:
            self.tx.report_hook(name, index, block, start, end, before, self.egress.count)
