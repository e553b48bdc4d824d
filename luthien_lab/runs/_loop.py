"""The background event loop blocking calls run on (``lab.run``, the prompt runner
from plain Python).

Inside Jupyter the kernel's event loop is already running in the cell's thread, so
``asyncio.run`` is impossible there and re-entering the loop (nest_asyncio) breaks
libraries that rely on asyncio's rules. Instead a coroutine is handed to one
dedicated background thread running its own event loop, and the calling thread
blocks until it finishes. The same loop serves every call, so clients that cache
connections per loop (litellm) keep working across calls. Interrupting the kernel
(KeyboardInterrupt) cancels the run.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from typing import Any

__all__ = ["LoopThread", "background_loop", "shutdown"]


class LoopThread:
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
_loop_thread: LoopThread | None = None


def background_loop() -> LoopThread:
    """The process-wide background loop (started on first use)."""
    global _loop_thread
    with _lock:
        if _loop_thread is None:
            _loop_thread = LoopThread()
        return _loop_thread


def shutdown() -> None:
    """Stop the background loop ``run`` uses (the next ``run`` starts a new one)."""
    global _loop_thread
    with _lock:
        current, _loop_thread = _loop_thread, None
    if current is not None:
        current.stop()


atexit.register(shutdown)
