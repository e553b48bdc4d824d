"""``run_sync``: the one way luthien-lab's synchronous twins run their coroutine.

``asyncio.run`` refuses to start inside a running event loop, and a Jupyter cell
always has one. There the coroutine runs on a fresh loop in a worker thread and the
caller waits for it. (``lab.run`` keeps a long-lived loop instead, so that litellm's
per-loop connection pools survive between calls; see :mod:`luthien_lab.lab`.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(make: Callable[[], Awaitable[T]], *, thread_name: str = "luthien-lab-sync") -> T:
    """Run the coroutine ``make()`` returns to completion from synchronous code.

    ``make`` is a factory, so the coroutine is created on the loop that runs it and
    never left un-awaited.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, name=thread_name, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
