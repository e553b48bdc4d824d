"""``ShadowRunner``: one shadow policy on a thread of its own, with its own event loop
and its own orchestrator, fed by the live transactions (:mod:`._feed`).

A thread per shadow, not a task on the live loop: a hook that blocks synchronously
(``time.sleep``, a slow regex) holds only this thread's loop, and a hook that never
returns holds only this shadow's runs. The orchestrator applies the hook timeout as
for a live policy; the live transaction never waits for any of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from luthien_lab.events import (
    LISTENER_METHODS,
    PipelineListener,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
    overridden,
)
from luthien_lab.orchestrator import (
    DEFAULT_HOOK_BLOCK_WARNING,
    DEFAULT_HOOK_TIMEOUT,
    PolicyOrchestrator,
)
from luthien_lab.policies.base import policy_config, policy_name
from luthien_lab.shadows._feed import INCOMPLETE, FeedClient, ShadowRun, private_request

if TYPE_CHECKING:
    from luthien_lab.policies.base import Policy
    from luthien_lab.request import Request

__all__ = ["ShadowRunner"]

_log = logging.getLogger("luthien_lab.shadows")

MAX_PENDING_RUNS = 1024
"""Runs a shadow may have unfinished before it skips live transactions (a shadow stuck
for good would otherwise hold every request it was given)."""


class _Outlet(PipelineListener):
    """The shadow orchestrator's only listener. It tags each shadow transaction
    (``shadow_of``, ``shadow``, ``shadow_dropped``, ``api``), reports a run that missed
    part of the answer as ``incomplete``, and forwards every event to the runner's
    listeners (the recorder), until :meth:`detach`: a shadow stuck at shutdown has its
    runs recorded as cancelled from outside, and what it reports later is dropped."""

    def __init__(self, runner: ShadowRunner, listeners: Iterable[PipelineListener]) -> None:
        self.runner = runner
        self.listeners = tuple(listeners)
        self.detached = False
        self.emit = {
            method: tuple(getattr(x, method) for x in self.listeners if overridden(x, method))
            for method in LISTENER_METHODS
        }

    def _send(self, method: str, *args: Any) -> None:
        if self.detached:
            return
        for emit in self.emit[method]:
            try:
                emit(*args)
            except Exception as error:  # one listener's failure is not the shadow's
                _log.warning("shadow listener %r raised in %s: %s", emit, method, error)

    def transaction_started(self, info: TransactionInfo) -> None:
        run = self.runner.runs.get(info.transaction_id)
        if run is not None:
            run.started = True
            info.tags.update(_tags(run))
            self.runner.infos[run.transaction_id] = info
        self._send("transaction_started", info)

    def transaction_finished(self, event: TransactionFinished) -> None:
        transaction_id, result = event.transaction_id, event.result
        run = self.runner.runs.get(transaction_id)
        if run is not None:
            with self.runner.lock:
                if run.finished:
                    return
                run.finished = True
            info = self.runner.infos.pop(transaction_id, None)
            if info is not None:
                info.tags["shadow_dropped"] = run.dropped
            if result.error_type == "ShadowIncompleteError":
                result = _with_status(result, INCOMPLETE)
        self._send("transaction_finished", TransactionFinished(transaction_id, result))

    def cancel(self, run: ShadowRun, reason: str) -> None:
        """Record ``run`` as cancelled from outside the shadow's thread (at shutdown)."""
        with self.runner.lock:
            if run.finished:
                return
            run.finished = True
        was_detached, self.detached = self.detached, False
        try:
            info = self.runner.infos.pop(run.transaction_id, None)
            if not run.started or info is None:
                info = self.runner.info_for(run)
                self._send("transaction_started", info)
            info.tags["shadow_dropped"] = run.dropped
            result = TransactionResult(
                "cancelled", time.perf_counter_ns(), error=reason, error_type="ShadowCancelled"
            )
            self._send("transaction_finished", TransactionFinished(run.transaction_id, result))
        finally:
            self.detached = was_detached


def _forwarder(method: str) -> Any:
    # One record per call, like the listener methods it stands for (a ``*args``
    # signature would be taken for a legacy listener and get positional fields).
    def forward(self: _Outlet, event: Any) -> None:
        self._send(method, event)

    forward.__name__ = method
    return forward


for _method in LISTENER_METHODS:
    if _method not in ("transaction_started", "transaction_finished"):
        setattr(_Outlet, _method, _forwarder(_method))


def _tags(run: ShadowRun) -> dict[str, Any]:
    tags: dict[str, Any] = {"shadow_of": run.live_id, "shadow": run.name, "shadow_dropped": 0}
    if run.api is not None:
        tags["api"] = run.api
    return tags


def _with_status(result: TransactionResult, status: str) -> TransactionResult:
    original, final = result.prebuilt_responses()
    return TransactionResult(
        status,
        result.end_ns,
        error=result.error,
        error_type=result.error_type,
        original_response=original,
        final_response=final,
        ingress_chunks=result.ingress_chunks,
        egress_chunks=result.egress_chunks,
    )


class ShadowRunner:
    """Runs one shadow ``policy`` (called ``name``) over the live transactions it is
    given (:meth:`open`), on its own thread, started on the first run.

    - ``listeners``: where its transactions are reported (the gateway's recorder);
    - ``capacity``: how many upstream items one run may hold unread before the rest
      are dropped (and counted);
    - ``hook_timeout`` / ``hook_block_warning``: as for :class:`PolicyOrchestrator`.
    """

    def __init__(
        self,
        name: str,
        policy: Policy,
        *,
        listeners: Iterable[PipelineListener] = (),
        capacity: int = 4096,
        hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT,
        hook_block_warning: float | None = DEFAULT_HOOK_BLOCK_WARNING,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"shadow buffer must be a positive number of chunks, got {capacity!r}")
        self.name = name
        self.policy = policy
        self.capacity = capacity
        self.outlet = _Outlet(self, listeners)
        self.orchestrator = PolicyOrchestrator(
            policy,
            FeedClient(),
            listeners=[self.outlet],
            chunk_timeout=None,  # the live transaction times its upstream out, and ends the feed
            hook_timeout=hook_timeout,
            hook_block_warning=hook_block_warning,
        )
        self.runs: dict[str, ShadowRun] = {}  # not finished yet, by shadow transaction id
        self.infos: dict[str, TransactionInfo] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.skipped = 0  # live transactions not shadowed: too many runs unfinished
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<ShadowRunner {self.name!r} {type(self.policy).__name__} runs={len(self.runs)}>"

    def _start_thread(self) -> asyncio.AbstractEventLoop:
        loop = self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self._main, args=(loop,), name=f"luthien-lab-shadow-{self.name}", daemon=True
        )
        self.thread.start()
        return loop

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # ----- the live side -----

    def open(
        self, live_id: str, request: Request, *, streaming: bool, api: str | None, provider: str
    ) -> ShadowRun | None:
        """A run for live transaction ``live_id`` (None once closed); the caller feeds
        it. Called on the live thread: cheap, never blocks."""
        if self.closed:
            return None
        if len(self.runs) >= MAX_PENDING_RUNS:
            self.skipped += 1
            if self.skipped == 1:
                _log.warning(
                    "shadow %s has %d runs unfinished (stuck?); it skips live transactions "
                    "until it catches up",
                    self.name,
                    len(self.runs),
                )
            return None
        loop = self.loop or self._start_thread()
        run = ShadowRun(
            uuid.uuid4().hex,
            live_id,
            request,
            name=self.name,
            streaming=streaming,
            api=api,
            provider=provider,
            capacity=self.capacity,
            loop=loop,
        )
        self.runs[run.transaction_id] = run
        loop.call_soon_threadsafe(self._begin, run)
        return run

    # ----- the shadow's thread -----

    def _begin(self, run: ShadowRun) -> None:
        assert self.loop is not None
        run.task = self.loop.create_task(self._run(run))

    async def _run(self, run: ShadowRun) -> None:
        FeedClient.bind(run)  # this task's context: what the feed client reads
        tid = run.transaction_id
        orchestrator = self.orchestrator
        try:
            assert run.request is not None
            request = private_request(run.request)
            run.request = None  # the live request is the live transaction's
            if run.streaming:
                chunks = orchestrator.process_streaming_response(request, tid)
                async with contextlib.aclosing(chunks):  # type: ignore[type-var]
                    async for _chunk in chunks:
                        pass  # sent nowhere: the recorder keeps it
            else:
                await orchestrator.process_full_response(request, tid)
        except asyncio.CancelledError:
            self._cancelled(run, "the shadow run was cancelled (shutdown)")
            raise
        except Exception as error:  # recorded by the orchestrator with its status
            _log.debug("shadow %s failed on %s: %s", self.name, run.live_id, error)
            if not run.started:
                self.outlet.cancel(run, f"the shadow could not start: {error}")
        try:
            await run.drain()
        finally:
            self.runs.pop(tid, None)

    def _cancelled(self, run: ShadowRun, reason: str) -> None:
        if not run.finished:
            self.outlet.cancel(run, reason)
        self.runs.pop(run.transaction_id, None)

    def info_for(self, run: ShadowRun) -> TransactionInfo:
        """The shadow transaction's info, for a run that never began."""
        info = TransactionInfo(
            transaction_id=run.transaction_id,
            model=run.model,
            provider=run.provider,
            policy_class=policy_name(self.policy),
            policy_config=policy_config(self.policy),
            streaming=run.streaming,
            start_ns=time.perf_counter_ns(),
        )
        info.tags.update(_tags(run))
        return info

    # ----- shutdown -----

    def begin_close(self, grace: float) -> concurrent.futures.Future[None] | None:
        """Stop taking runs; let the open ones finish for up to ``grace`` seconds, then
        cancel them. Returns what :meth:`end_close` waits for."""
        self.closed = True
        if self.loop is None or self.loop.is_closed():
            return None
        return asyncio.run_coroutine_threadsafe(self._finish_all(grace), self.loop)

    async def _finish_all(self, grace: float) -> None:
        await asyncio.sleep(0)  # runs opened just before: their tasks start now
        tasks = [run.task for run in list(self.runs.values()) if run.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for run in list(self.runs.values()):
            self._cancelled(run, "the shadow run did not finish before shutdown")

    def end_close(self, future: concurrent.futures.Future[None] | None, timeout: float) -> None:
        """Wait for :meth:`begin_close`'s work; a shadow whose thread does not answer
        (a hook blocking it) has its unfinished runs recorded as cancelled here and
        its thread left behind (a daemon: it never holds up the exit)."""
        if future is not None:
            try:
                future.result(timeout=max(timeout, 0.0))
            except concurrent.futures.TimeoutError:
                future.cancel()
                _log.warning(
                    "shadow %s did not stop (a hook blocks its thread); its unfinished runs "
                    "are recorded as cancelled",
                    self.name,
                )
                for run in list(self.runs.values()):
                    self.outlet.cancel(run, "the shadow's thread was blocked at shutdown")
                self.outlet.detached = True
                return
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(timeout=2.0)
