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

from typing import Any

from luthien_lab.runs import DEFAULT_MODEL, RunResult, execute, shutdown
from luthien_lab.runs import background_loop as _background

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
    shadow: Any = None,
) -> RunResult:
    """Run ``prompt`` through ``policy`` (an instance or a Policy subclass; default
    NoOpPolicy) on ``client`` (default :class:`~luthien_lab.LiteLLMClient`: the local
    provider offline) and return the traced result.

    ``tools``: a list (or JSON text) of OpenAI tool specs. ``store``: ``"default"``
    records to the default DuckDB store, a path or ``Store`` records there, ``None``
    records nothing. ``shadow``: shadow policies (a list, or ``{name: policy}``) run
    on the same provider answer, never shown as the answer: ``result.shadows[name]``
    (recorded too, linked to the live transaction).
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
        shadow=shadow,
    )


def run(
    prompt: str,
    policy: Any = None,
    model: str = DEFAULT_MODEL,
    stream: bool = True,
    client: Any = None,
    system: str | None = None,
    tools: Any = None,
    store: Any = "default",
    shadow: Any = None,
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
            shadow=shadow,
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
