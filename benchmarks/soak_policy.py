"""The policy the soak test (``soak_gateway.py``) serves: uppercase, plus faults on cue.

The user message decides:

- contains ``slow-hook``: ``on_request`` awaits 0.3 s (slow, but it yields);
- contains ``stuck-hook``: ``on_request`` awaits longer than the gateway's
  ``hook_timeout`` (the soak sets 1 s), so the transaction fails with a
  ``HookTimeoutError``;
- contains ``loop-hog``: ``on_request`` holds the event loop 150 ms (``time.sleep``;
  the gateway logs and records ``hook_blocked_event_loop``);
- is ``__soak_stats__``: emits the event ``soak_stats`` with what only the gateway
  process can see (its asyncio tasks, threads, open files and sockets, RSS), which
  the soak reads back from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from typing import Any

from luthien_lab.policies.uppercase import UppercasePolicy

__all__ = ["SoakPolicy", "process_stats"]


def process_stats() -> dict[str, Any]:
    """This process's asyncio tasks, threads, file descriptors (sockets apart), RSS."""
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = -1
    return {
        "tasks": tasks,
        "threads": threading.active_count(),
        "fds": len(fds),
        "sockets": sockets,
        "rss_mb": rss_kb / 1024,
    }


class SoakPolicy(UppercasePolicy):
    """Uppercases responses; slow, stuck or loop-hogging on cue (module docstring)."""

    async def on_request(self, request: Any, context: Any) -> Any:
        text = request.last_user_message
        if text == "__soak_stats__":
            context.observability.emit_event("soak_stats", process_stats())
        elif "stuck-hook" in text:
            await asyncio.sleep(5.0)
        elif "slow-hook" in text:
            await asyncio.sleep(0.3)
        elif "loop-hog" in text:
            time.sleep(0.15)
        return await super().on_request(request, context)
