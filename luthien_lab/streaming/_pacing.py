"""Paced replay: sending recorded items again at their recorded time offsets.

The one clock for every replay of a recording (``Recording.replay``, evaluation's
replay client, the local provider): each item waits until ``start + offset`` on the
event loop's clock, so time spent between items (a policy, a slow consumer) is not
added on top of the recorded gaps, and rounding never accumulates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TypeVar

__all__ = ["PACINGS", "Pacer", "check_pacing", "paced"]

PACINGS = ("fast", "original")
T = TypeVar("T")


def check_pacing(pacing: str) -> str:
    """``pacing`` if it is ``"fast"`` (no waiting) or ``"original"`` (the recorded
    offsets), else a ValueError naming it."""
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be 'fast' or 'original', not {pacing!r}")
    return pacing


class Pacer:
    """The recorded offsets (seconds since the start), measured from when the pacer
    is made; ``None`` or no offsets: never waits."""

    def __init__(self, offsets: Sequence[float] | None) -> None:
        self.offsets = list(offsets or ())
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    def covers(self, index: int) -> bool:
        """Whether item ``index`` has a recorded offset."""
        return index < len(self.offsets)

    def delay(self, index: int) -> float:
        """Seconds to wait now before sending item ``index`` (0 when it is due or has
        no offset)."""
        if not self.covers(index):
            return 0.0
        return max(0.0, self._start + self.offsets[index] - self._loop.time())

    async def wait(self, index: int) -> None:
        """Wait until item ``index`` is due."""
        delay = self.delay(index)
        if delay > 0:
            await asyncio.sleep(delay)


async def paced(items: Iterable[T], offsets: Sequence[float] | None) -> AsyncIterator[T]:
    """``items`` again, each when its offset is due (``offsets=None``: at once)."""
    pacer = Pacer(offsets)
    for index, item in enumerate(items):
        await pacer.wait(index)
        yield item
