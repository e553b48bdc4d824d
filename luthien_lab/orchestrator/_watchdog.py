"""``Watchdog``: the one timer per stream that enforces ``chunk_timeout`` (the
provider's silence) and ``hook_timeout`` (a hook that yielded to the event loop)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from luthien_lab.orchestrator._timing import NO_LIMIT
from luthien_lab.streaming.context import EgressQueue

__all__ = ["HOOK", "UPSTREAM", "Watchdog"]

UPSTREAM, HOOK = "upstream", "hook"  # what the watchdog fired for


class Watchdog:
    """One timer per stream for two limits: how long the provider may stay silent
    (``waiting_since``, ``timeout``: chunk_timeout) and how long a hook that yielded
    to the event loop may run (``hook_since``, ``hook_timeout``). It fires at the
    earliest moment either could be overdue and re-arms itself only then, so the hot
    path pays two attribute writes per chunk, and nothing per hook that does not
    yield. When it fires it cancels the task reading the stream (the consumer's, or
    the producer's once there is one) and says why in ``fired``; it fires only while
    that task waits for the provider or for a hook, never while the consumer works.
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
        now = time.perf_counter_ns()
        due = NO_LIMIT
        for since, limit, what in (
            (self.waiting_since, self.timeout, UPSTREAM),
            (self.hook_since, self.hook_timeout, HOOK),
        ):
            if limit is None:
                continue
            if since is not None and now - since >= limit:
                self.fired = what
                if what == HOOK:
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
