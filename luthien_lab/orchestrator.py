"""``PolicyOrchestrator``: request -> policy.on_request -> client -> assembler -> hooks -> egress.

Streaming runs two coroutines: a producer task that reads the provider (the upstream
reader), feeds the assembler and fires the hooks (the dispatch loop, :class:`_Dispatch`),
and the consumer (the caller's ``async for``) that receives each egress chunk the
moment a hook puts it. There is no polling and no per-chunk timer: the consumer
waits on one future that the egress queue resolves, and a single watchdog timer per
stream, re-armed only when it fires, enforces both ``chunk_timeout`` while the
producer waits on the provider and ``hook_timeout`` while a hook awaits something.

Hooks are timed step by step (:func:`time.perf_counter_ns` around each stretch a
hook runs without yielding to the event loop): a step longer than
``hook_block_warning`` is logged and reported to listeners as the event
``hook_blocked_event_loop``; a hook that holds the loop past ``hook_timeout`` fails
the transaction when it returns (nothing can interrupt it before).

Every step is reported to listeners (:mod:`luthien_lab.events`). A transaction
always ends with ``transaction_finished``, exactly once, whatever happened: ok,
error, blocked or cancelled, and whichever API path began it (see
:meth:`PolicyOrchestrator.process_request`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import (
    HookTimeoutError,
    LuthienLabError,
    PolicyError,
    RequestRefused,
    UpstreamError,
    UpstreamTimeoutError,
)
from luthien_lab.events import (
    LISTENER_METHODS,
    PipelineListener,
    TransactionInfo,
    TransactionResult,
    overridden,
)
from luthien_lab.observability import ListenerObservabilityContext
from luthien_lab.policies.base import (
    BLOCKED_KEY,
    STREAMING_HOOKS,
    Policy,
    PolicyContext,
    mark_blocked,
    policy_config,
    policy_name,
)
from luthien_lab.request import Request
from luthien_lab.streaming.assembler import COMPLETE, DELTA, StreamingChunkAssembler
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.context import EgressQueue, StreamingResponseContext, is_response

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient

__all__ = [
    "BLOCKED_KEY",
    "DEFAULT_HOOK_BLOCK_WARNING",
    "DEFAULT_HOOK_TIMEOUT",
    "PolicyOrchestrator",
    "mark_blocked",
]

DEFAULT_HOOK_TIMEOUT = 60.0
"""Seconds a hook may run (default). Above the LLM judge's own 30 s judging timeout,
so that a slow judge fails the way its config says (``on_judge_error``) first."""
DEFAULT_HOOK_BLOCK_WARNING = 0.1
"""Seconds a hook may hold the event loop in one go before it is reported."""
BLOCKED_EVENT = "hook_blocked_event_loop"
"""The event (``event_emitted``) reporting a hook that held the event loop."""

_DELTA_HOOKS = {
    ContentStreamBlock: "on_content_delta",
    ToolCallStreamBlock: "on_tool_call_delta",
    ThinkingStreamBlock: "on_thinking_delta",
}
_COMPLETE_HOOKS = {
    ContentStreamBlock: "on_content_complete",
    ToolCallStreamBlock: "on_tool_call_complete",
    ThinkingStreamBlock: "on_thinking_complete",
}
_NO_LIMIT = 1 << 62  # ns: a limit no hook step reaches
_UNSET: Any = object()
_UPSTREAM, _HOOK = "upstream", "hook"  # what the watchdog fired for
_perf_ns = time.perf_counter_ns


_log = logging.getLogger("luthien_lab.orchestrator")
_reported_listener_errors: set[tuple[int, str]] = set()


def _listener_failed(emit: Any, error: Exception) -> None:
    """A listener raised: log it once per listener and event; the stream goes on."""
    owner = getattr(emit, "__self__", emit)
    key = (id(owner), getattr(emit, "__name__", "?"))
    if key not in _reported_listener_errors:
        _reported_listener_errors.add(key)
        _log.warning(
            "listener %r raised in %s and was skipped: %s: %s",
            owner,
            key[1],
            type(error).__name__,
            error,
        )


def _notify(emitters: tuple[Any, ...], *args: Any) -> None:
    for emit in emitters:
        try:
            emit(*args)
        except Exception as error:
            _listener_failed(emit, error)


def _seconds(name: str, value: Any) -> float | None:
    """``value`` checked as a limit in seconds: positive, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


class _Transaction:
    """One transaction's bookkeeping between process_request and the response."""

    __slots__ = (
        "final",
        "finalizer",
        "finished",
        "handle",
        "handle_key",
        "info",
        "obs",
        "original",
        "refused",
        "scratchpad",
    )

    def __init__(self, info: TransactionInfo, obs: ListenerObservabilityContext, original: Request):
        self.info = info
        self.obs = obs
        self.original = original
        self.final: Request = original
        self.refused: RequestRefused | None = None
        self.scratchpad: dict[str, Any] = {}
        self.finished = False
        # While parked by process_request: the Request handed back to the caller
        # (weakly: the caller's reference is what keeps the transaction open when no
        # transaction_id was given), its id() and the finalizer that ends the
        # transaction if the caller drops it.
        self.handle: weakref.ref[Request] | None = None
        self.handle_key = 0
        self.finalizer: weakref.finalize[Any, Any] | None = None


@types.coroutine
def _drive(coro: Any, waiting: Any, longest: int) -> Generator[Any, Any, tuple[Any, int]]:
    """Run a hook coroutine that has already run its first step and yielded
    ``waiting`` to its end: what it waits on goes up to the task, what the task sends
    (or throws: cancellation) goes down to it. Each step is timed; returns the hook's
    value and its longest step, in ns: how long it held the event loop in one go."""
    perf = time.perf_counter_ns
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as thrown:
            start = perf()
            try:
                waiting = coro.throw(thrown)
            except StopIteration as stop:
                return stop.value, max(longest, perf() - start)
        else:
            start = perf()
            try:
                waiting = coro.send(sent)
            except StopIteration as stop:
                return stop.value, max(longest, perf() - start)
        longest = max(longest, perf() - start)


async def _timed(coro: Any) -> tuple[Any, int]:
    """Await ``coro`` (a hook call), timing each step: (its value, its longest step in ns)."""
    start = time.perf_counter_ns()
    try:
        waiting = coro.send(None)
    except StopIteration as stop:
        return stop.value, time.perf_counter_ns() - start
    return await _drive(coro, waiting, time.perf_counter_ns() - start)


class _Watchdog:
    """One timer per stream for two limits: how long the provider may stay silent
    (``waiting_since``, ``timeout``: chunk_timeout) and how long a hook that yielded
    to the event loop may run (``hook_since``, ``hook_timeout``). It fires at the
    earliest moment either could be overdue and re-arms itself only then, so the hot
    path pays two attribute writes per chunk, and nothing per hook that does not
    yield. When it fires it cancels the producer task and says why in ``fired``.
    Times are :func:`time.perf_counter_ns`, the clock the hooks are timed with."""

    __slots__ = (
        "egress",
        "fired",
        "handle",
        "hook_since",
        "hook_timeout",
        "loop",
        "task",
        "timeout",
        "waiting_since",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
        hook_timeout: float | None,
        task: Any,
        egress: EgressQueue,
    ) -> None:
        self.loop = loop
        self.egress = egress
        self.timeout = None if timeout is None else int(timeout * 1e9)
        self.hook_timeout = None if hook_timeout is None else int(hook_timeout * 1e9)
        self.task = task
        self.fired: str | None = None
        self.waiting_since: int | None = None
        self.hook_since: int | None = None
        first = min(t for t in (timeout, hook_timeout) if t is not None)
        self.handle = loop.call_later(first, self._check)

    def _check(self) -> None:
        now = _perf_ns()
        due = _NO_LIMIT
        for since, limit, what in (
            (self.waiting_since, self.timeout, _UPSTREAM),
            (self.hook_since, self.hook_timeout, _HOOK),
        ):
            if limit is None:
                continue
            if since is not None and now - since >= limit:
                self.fired = what
                if what == _HOOK:
                    # Whatever the hook still sends (if it ignores its cancellation)
                    # belongs to a transaction that has failed: the client gets none of it.
                    self.egress.close("the hook ran past its hook_timeout")
                self.task.cancel()
                return
            # What is not running yet cannot be overdue before a whole limit from now.
            due = min(due, (since if since is not None else now) + limit)
        self.handle = self.loop.call_later((due - now) / 1e9, self._check)

    def stop(self) -> None:
        self.handle.cancel()


class _Dispatch:
    """One stream's dispatch loop: the hooks each ingress chunk causes, in the
    documented order (see ``policies/base.py``), each timed step by step.

    :meth:`fire` runs a hook's first step synchronously: a hook that returns without
    yielding to the event loop (nearly every call) costs one coroutine, one clock
    read and a few comparisons; only one that yields goes through :meth:`_resume`,
    timed per step and watched by the stream's :class:`_Watchdog`.
    """

    __slots__ = (
        "assembler",
        "block_ns",
        "ctx",
        "egress",
        "emit_hook",
        "emit_received",
        "feed",
        "hooks",
        "limit_ns",
        "mark",
        "orchestrator",
        "policy",
        "state",
        "task",
        "tid",
        "timeout",
        "timeout_ns",
        "tx",
        "watch",
    )

    def __init__(
        self,
        orchestrator: PolicyOrchestrator,
        tx: _Transaction,
        ctx: StreamingResponseContext,
        assembler: StreamingChunkAssembler,
        egress: EgressQueue,
    ) -> None:
        self.orchestrator = orchestrator
        self.tx = tx
        self.tid = tx.info.transaction_id
        self.policy = tx.info.policy_class
        self.hooks = orchestrator._hooks
        self.ctx = ctx
        self.assembler = assembler
        self.feed = assembler.feed
        self.state = assembler.state
        self.egress = egress
        self.emit_hook = orchestrator._emit_hook_fired
        self.emit_received = orchestrator._emit_chunk_received
        self.timeout = timeout = orchestrator.effective_hook_timeout
        warning = orchestrator.hook_block_warning
        self.timeout_ns = _NO_LIMIT if timeout is None else int(timeout * 1e9)
        self.block_ns = _NO_LIMIT if warning is None else int(warning * 1e9)
        self.limit_ns = min(self.timeout_ns, self.block_ns)
        # When the producer last read the clock: the start of the next hook (see fire).
        self.mark = _perf_ns()
        self.task = asyncio.current_task()
        chunk_timeout = orchestrator.chunk_timeout
        self.watch = (
            _Watchdog(asyncio.get_running_loop(), chunk_timeout, timeout, self.task, egress)
            if chunk_timeout is not None or timeout is not None
            else None
        )

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()

    def chunk(self, index: int, chunk: Any) -> Any:
        """Ingress chunk number ``index``: feed it, then fire its hooks in order.
        None when every hook returned without yielding (nearly always: no coroutine
        per chunk), else the awaitable that fires the rest."""
        events = self.feed(chunk)
        if self.emit_received:
            _notify(self.emit_received, self.tid, index, chunk, self.mark)
        hooks = self.hooks
        if "on_chunk_received" in hooks:
            rest = self.fire("on_chunk_received", index, None)
            if rest is not None:
                return self._then(rest, index, events, 0)
        # The loop of _events, inlined: this runs per chunk.
        state = self.state
        for position, (kind, block) in enumerate(events):
            if kind == DELTA:
                state.current_block = block
                name = _DELTA_HOOKS[type(block)]
            elif kind == COMPLETE:
                state.just_completed = block
                name = _COMPLETE_HOOKS[type(block)]
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
        state = self.state
        for position in range(first, len(events)):
            kind, block = events[position]
            if kind == DELTA:
                state.current_block = block
                name = _DELTA_HOOKS[type(block)]
            elif kind == COMPLETE:
                state.just_completed = block
                name = _COMPLETE_HOOKS[type(block)]
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
        hooks = self.hooks
        for _kind, block in self.assembler.finish():
            self.assembler.state.just_completed = block
            name = _COMPLETE_HOOKS[type(block)]
            if name in hooks:
                rest = self.fire(name, index, block)
                if rest is not None:
                    await rest
        if "on_stream_complete" in hooks:
            rest = self.fire("on_stream_complete", index, None)
            if rest is not None:
                await rest
        error = self.egress.error
        if error is not None:  # put from outside any hook (a task the policy started)
            raise PolicyError("egress_queue.put", self.tid, error, self.policy) from error

    def fire(self, name: str, index: int, block: Any) -> Any:
        """Run hook ``name`` up to its first yield; None when it returned, else the
        awaitable that runs the rest of it.

        One clock read per hook: a hook's time runs from the producer's previous read
        (``mark``: the chunk's arrival, or the end of the hook before), which adds the
        pipeline's own microseconds to it, nothing that matters against a limit of a
        tenth of a second. Listeners get a read of its own start."""
        egress = self.egress
        before = egress.count
        start = _perf_ns() if self.emit_hook else self.mark
        coro = _UNSET
        try:
            coro = self.hooks[name](self.ctx)
            waiting = coro.send(None)
        except StopIteration:
            end = self.mark = _perf_ns()
            if end - start < self.limit_ns and egress.error is None:
                if self.emit_hook:
                    _notify(
                        self.emit_hook,
                        self.tid,
                        name,
                        index,
                        block,
                        start,
                        end,
                        before,
                        egress.count,
                    )
                return None
            self._returned(name, index, block, start, end, end - start, before)
            return None
        except (asyncio.CancelledError, LuthienLabError):
            raise
        except Exception as error:
            cause = _not_a_coroutine(name, coro) or error
            raise PolicyError(name, self.tid, cause, self.policy) from error
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
            _value, longest = await _drive(coro, waiting, first)
        except BaseException as error:
            if watch is not None and watch.fired == _HOOK:
                # Whatever it raised, its cancellation or an error from a late put.
                raise self._timed_out(name)  # noqa: B904 (its cause is a TimeoutError)
            if isinstance(error, Exception) and not isinstance(error, LuthienLabError):
                raise PolicyError(name, self.tid, error, self.policy) from error
            raise
        finally:
            if watch is not None:
                watch.hook_since = None
        if watch is not None and watch.fired == _HOOK:  # it swallowed the cancellation
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
            self.orchestrator._hook_blocked(self.tx, name, longest)
        if end - start > self.timeout_ns:
            # It held the event loop past its limit: the watchdog could not run.
            assert self.timeout is not None
            raise HookTimeoutError(name, self.tid, self.timeout, self.policy)
        error = self.egress.error
        if error is not None:  # refused a chunk, and the hook caught the TypeError
            raise PolicyError(name, self.tid, error, self.policy) from error
        if self.emit_hook:
            _notify(
                self.emit_hook, self.tid, name, index, block, start, end, before, self.egress.count
            )


class PolicyOrchestrator:
    """Runs one policy over requests and responses. Safe to share between
    concurrent transactions: per-transaction state lives in contexts.

    - ``chunk_timeout``: seconds the provider may stay silent mid-stream (and the
      timeout of a non-streaming call) before :class:`UpstreamTimeoutError`.
    - ``hook_timeout``: seconds a hook call may run before the transaction fails with
      :class:`~luthien_lab.errors.HookTimeoutError` (None: no limit). A policy that
      declares its own ``hook_timeout`` (class or instance attribute) overrides it.
    - ``hook_block_warning``: a hook that holds the event loop longer than this in
      one go (seconds; None: never) is logged and reported to listeners as the event
      ``hook_blocked_event_loop`` (``hook``, ``policy``, ``blocked_ms``).
    - ``listeners``: :class:`~luthien_lab.events.PipelineListener` objects.
    """

    # Bound listener methods per event, rebuilt by _rebind() (see events.LISTENER_METHODS).
    _emit_transaction_started: tuple[Callable[..., None], ...]
    _emit_request_processed: tuple[Callable[..., None], ...]
    _emit_chunk_received: tuple[Callable[..., None], ...]
    _emit_hook_fired: tuple[Callable[..., None], ...]
    _emit_chunk_sent: tuple[Callable[..., None], ...]
    _emit_response_received: tuple[Callable[..., None], ...]
    _emit_response_sent: tuple[Callable[..., None], ...]
    _emit_event_emitted: tuple[Callable[..., None], ...]
    _emit_metric_recorded: tuple[Callable[..., None], ...]
    _emit_transaction_finished: tuple[Callable[..., None], ...]

    def __init__(
        self,
        policy: Policy,
        llm_client: LLMClient,
        *,
        listeners: Iterable[PipelineListener] = (),
        chunk_timeout: float | None = 60.0,
        hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT,
        hook_block_warning: float | None = DEFAULT_HOOK_BLOCK_WARNING,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a luthien_lab.Policy instance, got {policy!r}; "
                "subclass Policy or SimplePolicy and pass an instance"
            )
        if chunk_timeout is not None and chunk_timeout <= 0:
            raise ValueError(f"chunk_timeout must be positive or None, got {chunk_timeout!r}")
        own = getattr(policy, "hook_timeout", _UNSET)
        self._policy_hook_timeout = (
            _UNSET if own is _UNSET else _seconds(f"{policy_name(policy)}.hook_timeout", own)
        )
        self.policy = policy
        self.llm_client = llm_client
        self.chunk_timeout = chunk_timeout
        self.hook_timeout = hook_timeout
        self.hook_block_warning = hook_block_warning
        self._listeners: list[PipelineListener] = []
        self._pending: dict[str, _Transaction] = {}
        self._by_handle: dict[int, str] = {}  # id() of process_request's result -> its tx
        self._hooks = {
            name: getattr(policy, name)
            for name in STREAMING_HOOKS
            if getattr(type(policy), name) is not getattr(Policy, name)
        }
        self._rebind()
        for listener in listeners:
            self.add_listener(listener)

    # ----- settings -----

    @property
    def hook_timeout(self) -> float | None:
        """The default limit of a hook call, in seconds (see the class doc)."""
        return self._hook_timeout

    @hook_timeout.setter
    def hook_timeout(self, value: float | None) -> None:
        self._hook_timeout = _seconds("hook_timeout", value)

    @property
    def hook_block_warning(self) -> float | None:
        return self._hook_block_warning

    @hook_block_warning.setter
    def hook_block_warning(self, value: float | None) -> None:
        self._hook_block_warning = _seconds("hook_block_warning", value)

    @property
    def effective_hook_timeout(self) -> float | None:
        """The limit the policy's hooks run under: its own ``hook_timeout`` when it
        declares one, else the orchestrator's."""
        own = self._policy_hook_timeout
        return self._hook_timeout if own is _UNSET else own

    # ----- listeners -----

    @property
    def listeners(self) -> tuple[PipelineListener, ...]:
        return tuple(self._listeners)

    def add_listener(self, listener: PipelineListener) -> None:
        if not isinstance(listener, PipelineListener):
            raise TypeError(
                f"listener must be a PipelineListener, got {listener!r}; "
                "wrap a function with luthien_lab.CallbackListener(fn)"
            )
        self._listeners.append(listener)
        self._rebind()

    def remove_listener(self, listener: PipelineListener) -> None:
        self._listeners.remove(listener)
        self._rebind()

    def _rebind(self) -> None:
        # Bound methods of listeners that override each event: an event nobody
        # listens to costs one empty-tuple check.
        for method in LISTENER_METHODS:
            bound = tuple(
                getattr(listener, method)
                for listener in self._listeners
                if overridden(listener, method)
            )
            setattr(self, f"_emit_{method}", bound)

    # ----- hooks outside the stream -----

    async def _call_hook(self, tx: _Transaction, name: str, coro: Any) -> Any:
        """Await ``on_request`` or ``process_full_response`` (once per transaction, so
        one timer each is fine here) under the hook timeout, timed step by step."""
        timeout = self.effective_hook_timeout
        start = time.perf_counter_ns()
        wrong = _not_a_coroutine(name, coro)
        if wrong is not None:
            raise wrong
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                value, longest = await _timed(coro)
        except TimeoutError:
            if scope.expired():
                assert timeout is not None
                raise HookTimeoutError(  # noqa: B904 (its cause is a TimeoutError)
                    name, tx.info.transaction_id, timeout, tx.info.policy_class
                )
            raise
        warning = self._hook_block_warning
        if warning is not None and longest >= warning * 1e9:
            self._hook_blocked(tx, name, longest)
        if timeout is not None and time.perf_counter_ns() - start > timeout * 1e9:
            # It held the event loop past its limit: the timer could not fire.
            raise HookTimeoutError(name, tx.info.transaction_id, timeout, tx.info.policy_class)
        return value

    def _hook_blocked(self, tx: _Transaction, hook: str, blocked_ns: int) -> None:
        """A hook held the event loop for ``blocked_ns`` in one go: every other
        stream the process serves waited that long. Logged and reported."""
        tid = tx.info.transaction_id
        policy = tx.info.policy_class
        threshold = self._hook_block_warning
        _log.warning(
            "policy hook %s.%s held the event loop for %.0f ms in one go (transaction %s; "
            "hook_block_warning %g ms): everything else this process serves waited. "
            "Await I/O instead of blocking on it; run blocking or CPU-heavy work with "
            "asyncio.to_thread",
            policy,
            hook,
            blocked_ns / 1e6,
            tid,
            (threshold or 0) * 1000,
        )
        data = {
            "hook": hook,
            "policy": policy,
            "blocked_ms": round(blocked_ns / 1e6, 3),
            "threshold_ms": None if threshold is None else round(threshold * 1000, 3),
        }
        _notify(self._emit_event_emitted, tid, BLOCKED_EVENT, data, time.perf_counter_ns())

    # ----- request -----

    def _begin(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> _Transaction:
        request = _as_request(request)
        transaction_id = transaction_id or uuid.uuid4().hex
        info = TransactionInfo(
            transaction_id=transaction_id,
            model=request.model,
            provider=self.llm_client.provider_for(request),
            policy_class=policy_name(self.policy),
            policy_config=policy_config(self.policy),
            streaming=streaming,
            start_ns=time.perf_counter_ns(),
        )
        tx = _Transaction(
            info, ListenerObservabilityContext(transaction_id, self._listeners), request
        )
        _notify(self._emit_transaction_started, info)
        return tx

    async def _run_on_request(self, tx: _Transaction) -> None:
        tid = tx.info.transaction_id
        overrides = type(self.policy).on_request is not Policy.on_request
        start = time.perf_counter_ns()
        try:
            if overrides:
                context = PolicyContext(
                    transaction_id=tid,
                    request=tx.original,
                    scratchpad=tx.scratchpad,
                    observability=tx.obs,
                )
                call = self.policy.on_request(tx.original, context)
                final = await self._call_hook(tx, "on_request", call)
            else:
                final = tx.original
        except RequestRefused as refusal:
            tx.refused = refusal
            final = tx.original
        except PolicyError:
            raise
        except Exception as error:
            self._report_hook(tx, "on_request", -1, None, start, 0, 0)
            raise PolicyError("on_request", tid, error, policy_name(self.policy)) from error
        if not isinstance(final, Request):
            raise PolicyError(
                "on_request",
                tid,
                TypeError(f"on_request must return a Request, got {type(final).__name__}"),
                policy_name(self.policy),
            )
        if final is not tx.original and final._wire is None:
            # A policy that built a new Request keeps the transaction's wire context.
            final._wire = tx.original._wire
        tx.final = final
        if overrides:
            self._report_hook(tx, "on_request", -1, None, start, 0, 0)
        _notify(self._emit_request_processed, tid, tx.original, final)

    def _report_hook(
        self, tx: _Transaction, hook: str, index: int, block: Any, start: int, e0: int, e1: int
    ) -> None:
        end = time.perf_counter_ns()
        _notify(
            self._emit_hook_fired, tx.info.transaction_id, hook, index, block, start, end, e0, e1
        )

    async def process_request(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Request:
        """Start a transaction and apply ``on_request``; returns the request to send.

        Continue the transaction with ``process_streaming_response`` or
        ``process_full_response``, passing the request returned here (a new object
        per call: the transaction is found by its identity) or the same
        ``transaction_id`` (then whatever request is passed, a dict included, is
        the one sent). A refusal (``RequestRefused``) is returned then as a refusal
        response, not raised here.

        Every transaction begun here ends exactly once (``transaction_finished``):
        when continued; here, if ``on_request`` fails or is cancelled; as
        ``cancelled`` when, with no ``transaction_id`` given, the returned request is
        dropped (garbage-collected) without being continued; or with
        :meth:`cancel_pending`, which is how a caller that gave a ``transaction_id``
        (and so holds a handle of its own) abandons one.
        """
        if transaction_id is not None and transaction_id in self._pending:
            raise ValueError(
                f"transaction {transaction_id!r} is already pending (process_request ran for "
                "it): continue it with process_streaming_response/process_full_response, "
                "or end it with cancel_pending()"
            )
        streaming = bool(request.get("stream") if isinstance(request, dict) else request.stream)
        tx = self._begin(request, transaction_id, streaming)
        try:
            await self._run_on_request(tx)
        except BaseException as error:
            self._finish(tx, _status_of(error), error)
            raise
        return self._park(tx, weak=transaction_id is None)

    def _park(self, tx: _Transaction, *, weak: bool) -> Request:
        """Keep ``tx`` until a ``process_*_response`` call continues it; returns the
        handle: a copy of the request to send, so that its identity names this
        transaction alone (listeners may hold the policy's own object)."""
        handle = tx.final.model_copy()
        tid = tx.info.transaction_id
        tx.handle = weakref.ref(handle)
        tx.handle_key = id(handle)
        self._pending[tid] = tx
        self._by_handle[tx.handle_key] = tid
        if weak:
            # The caller's reference is the only handle: when it goes, nothing can
            # continue the transaction any more, so it ends here.
            finalizer = weakref.finalize(handle, self._abandon, tid)
            finalizer.atexit = False
            tx.finalizer = finalizer
        return handle

    def _unpark(self, tx: _Transaction) -> None:
        tid = tx.info.transaction_id
        self._pending.pop(tid, None)
        if self._by_handle.get(tx.handle_key) == tid:
            del self._by_handle[tx.handle_key]
        if tx.finalizer is not None:
            tx.finalizer.detach()
            tx.finalizer = None

    def _abandon(self, transaction_id: str) -> None:
        """process_request's result was garbage-collected, never continued."""
        tx = self._pending.get(transaction_id)
        if tx is not None:
            self._unpark(tx)
            reason = (
                "abandoned: the request process_request returned was dropped without "
                "process_streaming_response/process_full_response"
            )
            self._finish(tx, "cancelled", asyncio.CancelledError(reason))

    def cancel_pending(self, transaction_id: str | None = None) -> int:
        """End transactions begun by :meth:`process_request` and not continued (one,
        or every one) as ``cancelled``; returns how many ended."""
        ids = [transaction_id] if transaction_id is not None else list(self._pending)
        ended = 0
        for tid in ids:
            tx = self._pending.get(tid)
            if tx is not None:
                self._unpark(tx)
                reason = "cancelled while pending: cancel_pending() after process_request"
                self._finish(tx, "cancelled", asyncio.CancelledError(reason))
                ended += 1
        return ended

    def _take_pending(
        self, request: Request | dict[str, Any], transaction_id: str | None
    ) -> _Transaction | None:
        """The pending transaction this call continues (by id, else by the identity
        of process_request's result), taken out of the pending set; or None."""
        if transaction_id is not None:
            tx = self._pending.get(transaction_id)
        else:
            tid = self._by_handle.get(id(request))
            tx = self._pending.get(tid) if tid is not None else None
            if tx is not None and (tx.handle is None or tx.handle() is not request):
                tx = None  # a new object at the address of a dead handle
        if tx is None:
            return None
        self._unpark(tx)
        try:
            final = _as_request(request)
        except BaseException as error:
            self._finish(tx, "error", error)
            raise
        if final._wire is None:
            final._wire = tx.final._wire
        tx.final = final
        return tx

    async def _start(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> _Transaction:
        tx = self._take_pending(request, transaction_id)
        if tx is not None:
            tx.info.streaming = streaming
            return tx
        tx = self._begin(request, transaction_id, streaming)
        try:
            await self._run_on_request(tx)
        except BaseException as error:
            self._finish(tx, _status_of(error), error)
            raise
        return tx

    # ----- streaming -----

    async def process_streaming_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> AsyncIterator[Any]:
        """Stream the policy's egress chunks for ``request``.

        Runs ``on_request`` first unless ``process_request`` already did for this
        transaction (see there). Close the iterator early (``aclose()``, or leave an
        ``async with contextlib.aclosing(...)`` block) to cancel the provider stream.
        """
        tx = await self._start(request, transaction_id, streaming=True)
        ctx = self._stream_context(tx)
        assembler = ctx.ingress_assembler
        egress = ctx.egress_queue
        assert assembler is not None
        loop = asyncio.get_running_loop()
        producer: asyncio.Task[None] | None = None
        status = "ok"
        failure: BaseException | None = None
        try:
            if tx.refused is not None:
                _put_refusal(tx, egress)
                for chunk in egress.drain():
                    yield chunk
                status = "blocked"
                return
            producer = loop.create_task(self._produce(tx, ctx, assembler, egress))
            buffer = egress._buffer
            while True:
                while buffer:
                    yield buffer.popleft()
                if egress._closed:
                    break
                waiter = loop.create_future()
                egress._waiter = waiter
                try:
                    await waiter
                finally:
                    egress._waiter = None
            await producer  # re-raises the producer's error, if any
        except BaseException as error:
            failure = error
            status = _status_of(error)
            raise
        finally:
            if producer is not None and not producer.done():
                producer.cancel()
                # The producer was cancelled on purpose; what it raises now is moot.
                with contextlib.suppress(BaseException):
                    await producer
            if status == "ok" and BLOCKED_KEY in ctx.scratchpad:
                status = "blocked"
            self._finish(tx, status, failure, assembler, egress, refusal=tx.refused)

    def _stream_context(self, tx: _Transaction) -> StreamingResponseContext:
        """What the hooks of ``tx``'s stream see: a new assembler and egress queue."""
        tid = tx.info.transaction_id
        emit_sent = self._emit_chunk_sent
        on_put = None
        if emit_sent:

            def on_put(index: int, chunk: Any, t_ns: int) -> None:
                _notify(emit_sent, tid, index, chunk, t_ns)

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
        self,
        tx: _Transaction,
        ctx: StreamingResponseContext,
        assembler: StreamingChunkAssembler,
        egress: EgressQueue,
    ) -> None:
        """The producer task, the upstream reader: each chunk from the provider,
        waited for under the watchdog's ``chunk_timeout``, handed to the dispatch loop
        (:class:`_Dispatch`), which fires its hooks."""
        dispatch = _Dispatch(self, tx, ctx, assembler, egress)
        watch = dispatch.watch
        timed = watch if watch is not None and self.chunk_timeout is not None else None
        hooks_of = dispatch.chunk
        index = 0
        try:
            iterator = self.llm_client.stream(ctx.final_request).__aiter__()
            try:
                while True:
                    if timed is not None:
                        timed.waiting_since = dispatch.mark  # the last read: just now
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if watch is not None and watch.fired == _UPSTREAM:
                            raise self._silent(tx, dispatch.task) from None
                        raise
                    except LuthienLabError:
                        raise
                    except Exception as error:
                        raise _upstream_error(error, tx) from error
                    dispatch.mark = _perf_ns()
                    if timed is not None:
                        timed.waiting_since = None
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
            await dispatch.after_stream(index)
        finally:
            dispatch.stop()
            egress.close()

    def _silent(self, tx: _Transaction, task: Any) -> UpstreamTimeoutError:
        if task is not None:
            task.uncancel()  # the watchdog's cancel, turned into this error
        return UpstreamTimeoutError(
            f"the provider sent nothing for {self.chunk_timeout:g} s "
            "(raise chunk_timeout= if the model is just slow)",
            provider=tx.info.provider,
            model=tx.info.model,
            transaction_id=tx.info.transaction_id,
        )

    # ----- non-streaming -----

    async def process_full_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Any:
        """The policy's full response (a litellm ``ModelResponse``) for ``request``."""
        tx = await self._start(request, transaction_id, streaming=False)
        tid = tx.info.transaction_id
        original = final = None
        try:
            if tx.refused is not None:
                final = _refusal_response(tx.final.model, tx.refused)
            else:
                original = await self._complete_upstream(tx)
                _notify(self._emit_response_received, tid, original, time.perf_counter_ns())
                final = await self._run_full_response(tx, original)
            _notify(self._emit_response_sent, tid, final, time.perf_counter_ns())
        except BaseException as error:
            self._finish(tx, _status_of(error), error, original_response=original)
            raise
        blocked = tx.refused is not None or BLOCKED_KEY in tx.scratchpad
        self._finish(
            tx,
            "blocked" if blocked else "ok",
            None,
            refusal=tx.refused,
            original_response=original,
            final_response=final,
        )
        return final

    async def _complete_upstream(self, tx: _Transaction) -> Any:
        try:
            call = self.llm_client.complete(tx.final)
            if self.chunk_timeout is not None:
                return await asyncio.wait_for(call, self.chunk_timeout)
            return await call
        except TimeoutError as error:
            raise UpstreamTimeoutError(
                f"the provider did not answer within {self.chunk_timeout:g} s "
                "(raise chunk_timeout= if the model is just slow)",
                provider=tx.info.provider,
                model=tx.info.model,
                transaction_id=tx.info.transaction_id,
            ) from error
        except LuthienLabError:
            raise
        except Exception as error:
            raise _upstream_error(error, tx) from error

    async def _run_full_response(self, tx: _Transaction, original: Any) -> Any:
        if type(self.policy).process_full_response is Policy.process_full_response:
            return original
        tid = tx.info.transaction_id
        name = "process_full_response"
        context = PolicyContext(
            transaction_id=tid, request=tx.final, scratchpad=tx.scratchpad, observability=tx.obs
        )
        start = time.perf_counter_ns()
        try:
            call = self.policy.process_full_response(original, context)
            final = await self._call_hook(tx, name, call)
        except (asyncio.CancelledError, LuthienLabError):
            raise
        except Exception as error:
            raise PolicyError(name, tid, error, tx.info.policy_class) from error
        if final is not original and not is_response(final):
            raise PolicyError(
                name,
                tid,
                TypeError(
                    "process_full_response must return a response (a litellm ModelResponse), "
                    f"got {type(final).__name__}"
                ),
                tx.info.policy_class,
            )
        self._report_hook(tx, name, -1, None, start, 0, 0)
        return final

    # ----- the end of every transaction -----

    def _finish(
        self,
        tx: _Transaction,
        status: str,
        error: BaseException | None,
        assembler: StreamingChunkAssembler | None = None,
        egress: EgressQueue | None = None,
        *,
        refusal: RequestRefused | None = None,
        original_response: Any = None,
        final_response: Any = None,
    ) -> None:
        if tx.finished:  # a transaction ends once, whichever path ends it
            return
        tx.finished = True
        emitters = self._emit_transaction_finished
        if not emitters:
            return
        message = str(error) if error is not None else (refusal.reason if refusal else None)
        result = TransactionResult(
            status=status,
            end_ns=time.perf_counter_ns(),
            error=message,
            error_type=type(error).__name__ if error is not None else None,
            original_response=original_response,
            final_response=final_response,
            ingress_chunks=assembler.state.raw_chunks if assembler is not None else None,
            egress_chunks=egress.sent if egress is not None else None,
        )
        _notify(emitters, tx.info.transaction_id, result)


def _not_a_coroutine(name: str, result: Any) -> TypeError | None:
    """The error to report when hook ``name`` returned ``result`` instead of a
    coroutine (a plain ``def``); None when it is one (or was never returned)."""
    if result is _UNSET or (hasattr(result, "send") and hasattr(result, "throw")):
        return None
    return TypeError(
        f"{name} must be an async def: it returned {type(result).__name__}, not a coroutine"
    )


def _as_request(request: Any) -> Request:
    if isinstance(request, Request):
        return request
    if isinstance(request, dict):
        return Request(**request)
    raise TypeError(
        "request must be a luthien_lab.Request or a dict in OpenAI chat format, "
        f"got {type(request).__name__}"
    )


def _put_refusal(tx: _Transaction, egress: EgressQueue) -> None:
    """The refusal of ``on_request`` as a two-chunk stream: its text, then stop."""
    from luthien_lab.streaming.chunks import create_chunk

    assert tx.refused is not None
    header = SimpleNamespace(
        id=f"chatcmpl-{tx.info.transaction_id}", model=tx.final.model, created=int(time.time())
    )
    egress.put_nowait(create_chunk(header, role="assistant", content=tx.refused.message))
    egress.put_nowait(create_chunk(header, finish_reason="stop"))


def _status_of(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        return "cancelled"
    return "error"


def _upstream_error(error: Exception, tx: _Transaction) -> UpstreamError:
    status = getattr(error, "status_code", None)
    return UpstreamError(
        f"the provider failed: {type(error).__name__}: {error}",
        provider=tx.info.provider,
        model=tx.info.model,
        transaction_id=tx.info.transaction_id,
        status_code=status if isinstance(status, int) else None,
    )


def _refusal_response(model: str, refusal: RequestRefused) -> Any:
    from litellm.types.utils import Choices, Message, ModelResponse

    message = Message(role="assistant", content=refusal.message)
    message.refusal = refusal.message
    return ModelResponse(
        model=model, choices=[Choices(index=0, message=message, finish_reason="stop")]
    )
