"""Running one prompt through a policy, traced (and recorded): the engine behind
``luthien_lab.lab.run_async`` and the prompt runner widget."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from luthien_lab._ids import new_id
from luthien_lab.errors import ConfigError
from luthien_lab.policies._loading import resolve_policy
from luthien_lab.runs._result import RunResult
from luthien_lab.runs._trace import TraceListener, TransactionTrace

__all__ = ["DEFAULT_MODEL", "RunHandle", "build_request", "execute", "resolve_policy"]

DEFAULT_MODEL = "gpt-4o-mini"
SHADOW_WAIT = 60.0
"""Seconds a run waits for its shadows after the live answer (then what is unfinished
is recorded ``cancelled``): the default hook timeout."""


class RunHandle:
    """Lets the caller stop a run: :meth:`stop` cancels the task running it. The
    orchestrator's iterator is closed on the way out, which cancels the provider
    stream, and the transaction ends with status ``cancelled``."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.stop_requested = False

    def stop(self) -> None:
        self.stop_requested = True
        if self.task is not None and not self.task.done():
            self.task.get_loop().call_soon_threadsafe(self.task.cancel)


def build_request(
    prompt: str,
    *,
    model: str,
    stream: bool,
    system: str | None = None,
    tools: Any = None,
) -> Any:
    """The chat request for a prompt; ``tools`` is a list or JSON text of tool specs."""
    from luthien_lab.request import Request

    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    fields: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if isinstance(tools, str):
        if tools.strip():
            try:
                tools = json.loads(tools)
            except ValueError as error:
                raise ConfigError(
                    f"tools is not valid JSON ({error}); give a JSON list of OpenAI tool "
                    'specs, e.g. [{"type": "function", "function": {"name": "f", '
                    '"parameters": {"type": "object"}}}]'
                ) from None
        else:
            tools = None
    if tools:
        if isinstance(tools, dict):
            tools = [tools]
        if not isinstance(tools, list):
            raise ConfigError(f"tools must be a list of tool specs, got {type(tools).__name__}")
        fields["tools"] = tools
    return Request(**fields)


async def execute(
    prompt: str,
    *,
    policy: Any = None,
    model: str = DEFAULT_MODEL,
    stream: bool = True,
    client: Any = None,
    system: str | None = None,
    tools: Any = None,
    store: Any = None,
    on_update: Callable[[TransactionTrace], None] | None = None,
    handle: RunHandle | None = None,
    chunk_timeout: float | None = 60.0,
    shadow: Any = None,
) -> RunResult:
    """Run ``prompt`` through ``policy`` and return the traced :class:`RunResult`.

    Provider and policy errors do not raise: the result carries them (``status``,
    ``error``, ``exception``). A stop through ``handle`` ends with status
    ``cancelled``; any other cancellation propagates. ``shadow``: shadow policies
    run on the same provider answer (``result.shadows[name]``; see
    :mod:`luthien_lab.shadows`).
    """
    from luthien_lab.orchestrator import PolicyOrchestrator

    policy = resolve_policy(policy)
    request = build_request(prompt, model=model, stream=stream, system=system, tools=tools)
    if client is None:
        from luthien_lab.clients import LiteLLMClient

        client = LiteLLMClient()
    transaction_id = new_id()
    # Each run has its own listener, following only its own transaction id, so that
    # concurrent runs sharing nothing can never mix their output.
    listener = TraceListener(transaction_id, on_update)
    from luthien_lab.store import recorder_for

    # The result keeps reading the store (its views), so the recorder leaves it open.
    recorder = recorder_for(store, keep_open=True)
    listeners = [recorder, listener] if recorder is not None else [listener]
    shadows = None
    tracers: dict[str, TraceListener] = {}
    if shadow is not None:
        from luthien_lab.shadows import Shadows, name_shadows

        named = name_shadows(shadow)
        tracers = {name: TraceListener() for name in named}
        shadows = Shadows(
            named,
            listeners=[recorder] if recorder is not None else [],
            shadow_listeners={name: [tracer] for name, tracer in tracers.items()},
        )
        listeners.append(shadows)
    orchestrator = PolicyOrchestrator(
        policy, client, listeners=listeners, chunk_timeout=chunk_timeout
    )
    if handle is not None:
        handle.task = asyncio.current_task()
    exception: BaseException | None = None
    try:
        if stream:
            iterator: Any = orchestrator.process_streaming_response(request, transaction_id)
            async with contextlib.aclosing(iterator) as chunks:
                async for _chunk in chunks:
                    pass
        else:
            await orchestrator.process_full_response(request, transaction_id)
    except asyncio.CancelledError as error:
        if handle is None or not handle.stop_requested:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        exception = error
    except Exception as error:
        exception = error
    finally:
        if shadows is not None:  # before the recorder closes: they record to it
            await asyncio.shield(asyncio.to_thread(shadows.close, SHADOW_WAIT))
        if recorder is not None:
            # Written by the recorder's thread; wait so that the store has the run.
            await asyncio.shield(asyncio.to_thread(recorder.close))
    trace = listener.trace
    if trace.status is None:  # the orchestrator always finishes; belt and braces
        trace.status = "cancelled" if isinstance(exception, asyncio.CancelledError) else "error"
        trace.error = str(exception) if exception else None
    result_store = recorder.store if recorder is not None else None
    result = RunResult(trace, exception=exception, store=result_store)
    # The shadows that ran (a live run that never reached the provider gave them none).
    result.shadows = {
        name: RunResult(tracer.trace, store=result_store)
        for name, tracer in tracers.items()
        if tracer.traces
    }
    return result
