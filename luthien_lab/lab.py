"""The one-call entry point of the notebook workbench.

    from luthien_lab import lab

    result = lab.run("Say hi", policy=UppercasePolicy)   # works in a notebook cell
    result                                                # streams, timeline, diff
    result.text, result.raw_text, result.tool_calls, result.trace

    result = await lab.run_async("Say hi", policy=MyPolicy())
    lab.runner()                                          # the live prompt runner widget
    lab.browse(store, status="blocked", search="rm -rf")  # recorded transactions
    lab.watch(store)                                      # ... as the gateway records them

Errors from the provider or the policy do not raise: the result shows them
(``result.status``, ``result.error``; ``result.raise_for_status()`` re-raises).

How ``run`` works inside Jupyter: the kernel's event loop is already running in the
cell's thread, so ``asyncio.run`` is impossible there and re-entering the loop
(nest_asyncio) breaks libraries that rely on asyncio's rules. Instead ``run`` hands
the coroutine to one dedicated background thread running its own event loop, and
blocks the calling thread until it finishes. The same loop serves every ``run``
call, so clients that cache connections per loop (litellm) keep working across calls.
Interrupting the kernel (KeyboardInterrupt) cancels the run.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from typing import Any

from luthien_lab.widgets._result import RunResult
from luthien_lab.widgets._run import DEFAULT_MODEL, execute

__all__ = [
    "DEFAULT_MODEL",
    "RunResult",
    "browse",
    "run",
    "run_async",
    "runner",
    "shutdown",
    "watch",
]


async def run_async(
    prompt: str,
    policy: Any = None,
    model: str = DEFAULT_MODEL,
    stream: bool = True,
    client: Any = None,
    system: str | None = None,
    tools: Any = None,
    store: Any = "default",
) -> RunResult:
    """Run ``prompt`` through ``policy`` (an instance or a Policy subclass; default
    NoOpPolicy) on ``client`` (default :class:`~luthien_lab.LiteLLMClient`: the local
    provider offline) and return the traced result.

    ``tools``: a list (or JSON text) of OpenAI tool specs. ``store``: ``"default"``
    records to the default DuckDB store, a path or ``Store`` records there, ``None``
    records nothing.
    """
    return await execute(
        prompt,
        policy=policy,
        model=model,
        stream=stream,
        client=client,
        system=system,
        tools=tools,
        store=store,
    )


class _LoopThread:
    """One event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="luthien-lab-run", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Any) -> Any:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError(
                "lab.run() was called from inside a lab run (a policy or listener?); "
                "use `await lab.run_async(...)` there instead"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except (KeyboardInterrupt, concurrent.futures.CancelledError):
            future.cancel()
            raise

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


_lock = threading.Lock()
_loop_thread: _LoopThread | None = None


def _background() -> _LoopThread:
    global _loop_thread
    with _lock:
        if _loop_thread is None:
            _loop_thread = _LoopThread()
        return _loop_thread


def shutdown() -> None:
    """Stop the background loop ``run`` uses (the next ``run`` starts a new one)."""
    global _loop_thread
    with _lock:
        current, _loop_thread = _loop_thread, None
    if current is not None:
        current.stop()


atexit.register(shutdown)


def run(
    prompt: str,
    policy: Any = None,
    model: str = DEFAULT_MODEL,
    stream: bool = True,
    client: Any = None,
    system: str | None = None,
    tools: Any = None,
    store: Any = "default",
) -> RunResult:
    """The blocking twin of :func:`run_async`; works in a Jupyter cell (whose event
    loop is already running) and in plain Python alike."""
    return _background().run(
        run_async(
            prompt,
            policy=policy,
            model=model,
            stream=stream,
            client=client,
            system=system,
            tools=tools,
            store=store,
        )
    )


def runner(**kw: Any) -> Any:
    """A :class:`~luthien_lab.widgets.PromptRunner` (see its arguments)."""
    from luthien_lab.widgets import PromptRunner

    return PromptRunner(**kw)


def browse(store: Any = None, *, page_size: int = 20, **filters: Any) -> Any:
    """A :class:`~luthien_lab.widgets.TransactionBrowser` over ``store`` (a Store or
    a path; default the default store, read-only): the recorded transactions a page at
    a time, filtered (``since``/``until``: ``"7d"``, a datetime...; ``status``,
    ``model``, ``policy``, ``tag``, ``api``, ``where`` (SQL), ``search`` (text in
    requests and responses), ``shadows``, ``ids``); selecting one shows its raw vs
    transformed streams, hook timeline and diff, and live vs shadow outputs."""
    from luthien_lab.widgets import TransactionBrowser

    return TransactionBrowser(store, page_size=page_size, **filters)


def watch(store: Any = None, *, interval: float = 1.0, **filters: Any) -> Any:
    """A :class:`~luthien_lab.widgets.TransactionWatch`: the browser, showing new
    transactions as another process (the gateway) records them to ``store``; it polls
    every ``interval`` seconds without holding the file. ``.stop()`` ends it."""
    from luthien_lab.widgets import TransactionWatch

    return TransactionWatch(store, interval=interval, **filters)
