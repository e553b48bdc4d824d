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
import inspect
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from luthien_lab import events as _events
from luthien_lab._ids import new_id
from luthien_lab.events import (
    PipelineListener,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
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


class _Tagger(PipelineListener):
    """The shadow orchestrator's first listener: it tags each shadow transaction
    (``shadow_of``, ``shadow``, ``shadow_dropped``, ``api``) before the others (the
    recorder) see it, and turns a run that missed part of the answer into status
    ``incomplete``."""

    def __init__(self, runner: ShadowRunner) -> None:
        self.runner = runner

    def transaction_started(self, info: TransactionInfo) -> None:
        run = self.runner.runs.get(info.transaction_id)
        if run is not None:
            run.started = True
            info.tags.update(_tags(run))
            self.runner.infos[run.transaction_id] = info

    def transaction_finished(self, event: TransactionFinished) -> None:
        transaction_id, result = event.transaction_id, event.result
        run = self.runner.runs.get(transaction_id)
        if run is None:
            return
        with self.runner.lock:
            run.finished = True
        info = self.runner.infos.pop(transaction_id, None)
        if info is not None:
            info.tags["shadow_dropped"] = run.dropped
        if result.error_type == "ShadowIncompleteError":
            result.status = INCOMPLETE  # before the listeners after this one see it


def _tags(run: ShadowRun) -> dict[str, Any]:
    tags: dict[str, Any] = {"shadow_of": run.live_id, "shadow": run.name, "shadow_dropped": 0}
    if run.api is not None:
        tags["api"] = run.api
    return tags


def _report_finished(listener: PipelineListener, transaction_id: str, result: Any) -> None:
    """``listener.transaction_finished`` called from outside the orchestrator, in the
    form the listener takes: the fields, or one event record where events have one."""
    method: Any = listener.transaction_finished
    record = getattr(_events, "TransactionFinished", None)
    try:
        positional = len(inspect.signature(method).parameters) > 1
    except (TypeError, ValueError):
        positional = True
    if record is None or positional:
        method(transaction_id, result)
    else:
        method(record(transaction_id, result))


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
        self.listeners = tuple(listeners)
        self.orchestrator = PolicyOrchestrator(
            policy,
            FeedClient(),
            listeners=[_Tagger(self), *self.listeners],
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
        it, and kicks it to start. Called on the live thread: cheap, never blocks."""
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
            new_id(),
            live_id,
            request,
            name=self.name,
            streaming=streaming,
            api=api,
            provider=provider,
            capacity=self.capacity,
            loop=loop,
            on_begin=self._begin,
        )
        self.runs[run.transaction_id] = run
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
                self.cancel(run, f"the shadow could not start: {error}")
        try:
            await run.drain()
        finally:
            self.runs.pop(tid, None)

    def _cancelled(self, run: ShadowRun, reason: str) -> None:
        if not run.finished:
            self.cancel(run, reason)
        self.runs.pop(run.transaction_id, None)

    def cancel(self, run: ShadowRun, reason: str) -> None:
        """Record ``run`` as cancelled, from outside its orchestrator (a run that never
        began, or one whose thread is blocked at shutdown)."""
        with self.lock:
            if run.finished:
                return
            run.finished = True
        info = self.infos.pop(run.transaction_id, None)
        begun = run.started and info is not None
        if info is None:
            info = self.info_for(run)
        info.tags["shadow_dropped"] = run.dropped
        result = TransactionResult(
            "cancelled", time.perf_counter_ns(), error=reason, error_type="ShadowCancelled"
        )
        for listener in self.listeners:
            try:
                if not begun:
                    listener.transaction_started(info)
                _report_finished(listener, run.transaction_id, result)
            except Exception as error:  # one listener's failure is not the others'
                _log.warning("shadow listener %r raised: %s", listener, error)

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
        await asyncio.sleep(0)  # runs kicked just before: their tasks start now
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
                # What it reports if it ever wakes up goes nowhere.
                for listener in self.listeners:
                    with contextlib.suppress(ValueError):
                        self.orchestrator.remove_listener(listener)
                for run in list(self.runs.values()):
                    self.cancel(run, "the shadow's thread was blocked at shutdown")
                return
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(timeout=2.0)
