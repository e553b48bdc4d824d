"""Hook timing: the limits hooks run under, and the driver that times a hook step by
step (:func:`time.perf_counter_ns` around each stretch it runs without yielding to
the event loop: how long it held the loop in one go)."""

from __future__ import annotations

import time
import types
from collections.abc import Generator
from typing import Any

__all__ = [
    "BLOCKED_EVENT",
    "DEFAULT_HOOK_BLOCK_WARNING",
    "DEFAULT_HOOK_TIMEOUT",
    "NO_LIMIT",
    "UNSET",
    "drive",
    "not_a_coroutine",
    "seconds",
    "timed",
]

DEFAULT_HOOK_TIMEOUT = 60.0
"""Seconds a hook may run (default). Above the LLM judge's own 30 s judging timeout,
so that a slow judge fails the way its config says (``on_judge_error``) first."""
DEFAULT_HOOK_BLOCK_WARNING = 0.1
"""Seconds a hook may hold the event loop in one go before it is reported."""
BLOCKED_EVENT = "hook_blocked_event_loop"
"""The event (``event_emitted``) reporting a hook that held the event loop."""

NO_LIMIT = 1 << 62  # ns: a limit no hook step reaches
UNSET: Any = object()


def seconds(name: str, value: Any) -> float | None:
    """``value`` checked as a limit in seconds: positive, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def not_a_coroutine(name: str, result: Any) -> TypeError | None:
    """The error to report when hook ``name`` returned ``result`` instead of a
    coroutine (a plain ``def``); None when it is one (or was never returned)."""
    if result is UNSET or (hasattr(result, "send") and hasattr(result, "throw")):
        return None
    return TypeError(
        f"{name} must be an async def: it returned {type(result).__name__}, not a coroutine"
    )


@types.coroutine
def drive(coro: Any, waiting: Any, longest: int) -> Generator[Any, Any, tuple[Any, int]]:
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


async def timed(coro: Any) -> tuple[Any, int]:
    """Await ``coro`` (a hook call), timing each step: (its value, its longest step in ns)."""
    start = time.perf_counter_ns()
    try:
        waiting = coro.send(None)
    except StopIteration as stop:
        return stop.value, time.perf_counter_ns() - start
    return await drive(coro, waiting, time.perf_counter_ns() - start)
