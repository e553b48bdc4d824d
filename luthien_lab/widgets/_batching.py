"""``Throttle``: coalesce many "something changed" pokes into at most one redraw per interval.

A stream can deliver thousands of chunks a second; every widget value change is a
websocket message and a browser re-layout. The runner pokes the throttle on every
event and the page is redrawn at most ``1 / interval`` times a second, always with
the latest state, and once more at the end (:meth:`flush`), so nothing is lost.

The clock and the timer are injected, so that the batching is tested with a fake
clock and no event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Throttle"]


class Throttle:
    """Calls ``redraw()`` at most once per ``interval`` seconds, coalescing pokes.

    - ``clock()``: seconds, monotonic (default :func:`time.monotonic`).
    - ``call_later(delay, fn)``: schedules ``fn`` after ``delay`` seconds and returns
      a handle with ``cancel()``; default: the running asyncio loop's ``call_later``.

    A poke when the last redraw is at least ``interval`` old redraws at once (the
    first chunk shows immediately); otherwise one trailing redraw is scheduled for
    when the interval ends, and further pokes until then only mark the state dirty.
    """

    def __init__(
        self,
        redraw: Callable[[], None],
        interval: float = 0.05,
        *,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive seconds, got {interval!r}")
        self.redraw = redraw
        self.interval = interval
        self.clock = clock
        self._call_later = call_later
        self._last: float | None = None
        self._handle: Any = None
        self.dirty = False
        self.pokes = 0
        self.redraws = 0

    def __repr__(self) -> str:
        return f"<Throttle every {self.interval:g}s pokes={self.pokes} redraws={self.redraws}>"

    def _schedule(self, delay: float) -> Any:
        if self._call_later is not None:
            return self._call_later(delay, self._fire)
        import asyncio

        return asyncio.get_running_loop().call_later(delay, self._fire)

    def poke(self) -> None:
        """Something changed: redraw now if allowed, else make sure one is scheduled."""
        self.pokes += 1
        self.dirty = True
        if self._handle is not None:
            return
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            self._run(now)
        else:
            self._handle = self._schedule(self._last + self.interval - now)

    def _fire(self) -> None:
        self._handle = None
        if self.dirty:
            self._run(self.clock())

    def _run(self, now: float) -> None:
        self._last = now
        self.dirty = False
        self.redraws += 1
        self.redraw()

    def flush(self) -> None:
        """Redraw now if anything is pending, and cancel the scheduled redraw."""
        self.cancel()
        if self.dirty:
            self._run(self.clock())

    def cancel(self) -> None:
        """Drop the scheduled redraw (pending changes stay dirty)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
